/** Login, logout, first-run admin creation and the login state (the only routes without a login). */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PASSWORD_MAX, SETUP_TOKEN_MAX, type AuthStatus, type UserReply } from '../../api/auth.ts';
import { sessionUser, setSessionCookie, userError } from '../access.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import { SESSION_COOKIE, userKey } from '../sessions.ts';
import { setupTokenHelp } from '../setupToken.ts';
import { passwordSchema, usernameSchema } from './users.ts';

/** Login body: only bounds the sizes (no hints to guessers). */
const loginBody = {
  type: 'object',
  additionalProperties: false,
  required: ['username', 'password'],
  properties: { username: { type: 'string', maxLength: 128 }, password: { type: 'string', maxLength: PASSWORD_MAX } },
};

/** First-run body: the user rules, plus the setup token (checked by the handler for a clear 403). */
const firstRunBody = {
  type: 'object',
  additionalProperties: false,
  required: ['username', 'password'],
  properties: { username: usernameSchema, password: passwordSchema, token: { type: 'string', maxLength: SETUP_TOKEN_MAX } },
};

type Credentials = { Body: { username: string; password: string } };
type FirstRun = { Body: { username: string; password: string; token?: string } };

/** The limiter's "username" for first-run token guesses (not a valid username, so no clash). */
const FIRST_RUN_KEY = 'first-run token';

/** A username as it may appear in the log: printable ASCII, at most 64 characters. */
export function logSafeUsername(name: string): string {
  const clean = name.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

function refuseRetry(reply: FastifyReply, seconds: number, status: 429 | 503, code: string, message: string, extra: Record<string, unknown> = {}): never {
  reply.header('Retry-After', String(seconds));
  throw new HttpError(status, code, message, { retryAfterSeconds: seconds, ...extra });
}

/** Why the setup token file cannot be made (e.g. the state directory is not writable), if it cannot. */
function setupTokenProblem(setupToken: WebDeps['setupToken']): string | undefined {
  try {
    setupToken.ensure();
    return undefined;
  } catch (e) {
    return `cannot write the setup token ${setupToken.path}: ${(e as Error).message}; make the state directory writable by lqosd (under systemd: re-run scripts/install-services) and reload this page`;
  }
}

export async function authRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, users, sessions, limiter, gate, setupToken } = d;
  /** Username → the hour in which its account throttling was last logged (one journal line per hour). */
  const accountWarned = new Map<string, number>();

  app.get('/api/auth/status', { config: { access: 'open' } }, async (req): Promise<AuthStatus> => {
    const state = users.state();
    const login = state === 'ready' ? sessionUser(req, users, sessions) : undefined;
    const tokenProblem = state === 'empty' ? setupTokenProblem(setupToken) : undefined;
    return {
      firstRun: state === 'empty',
      ...(state === 'empty' ? { setupTokenFile: setupToken.path } : {}),
      ...(state === 'corrupt' ? { authError: users.corruptMessage() } : {}),
      ...(tokenProblem ? { authError: tokenProblem } : {}),
      ...(login ? { user: login.user } : {}),
    };
  });

  app.post<FirstRun>('/api/auth/first-run', { config: { access: 'open' }, schema: { body: firstRunBody } }, async (req, reply) => {
    const state = users.state();
    if (state === 'corrupt') throw new HttpError(503, 'auth_unavailable', users.corruptMessage());
    if (state === 'ready') throw new HttpError(409, 'already_configured', 'an administrator already exists; log in instead');
    const wait = limiter.retryAfter(req.ip, FIRST_RUN_KEY);
    if (wait > 0) refuseRetry(reply, wait, 429, 'rate_limited', `too many wrong setup tokens; try again in ${wait} s`);
    limiter.begin(req.ip, FIRST_RUN_KEY);
    const tokenProblem = setupTokenProblem(setupToken);
    if (tokenProblem) throw new HttpError(503, 'auth_unavailable', tokenProblem);
    if (!setupToken.check(req.body.token)) {
      limiter.failed(req.ip, FIRST_RUN_KEY);
      ctx.log.warn({ ip: req.ip, failures: limiter.failures(req.ip, FIRST_RUN_KEY) }, 'web: first-run refused: wrong or missing setup token');
      const what = req.body.token ? 'wrong setup token' : 'the setup token is required';
      throw new HttpError(403, 'setup_token', `${what}: ${setupTokenHelp(setupToken.path)}`, { tokenFile: setupToken.path });
    }
    limiter.succeeded(req.ip, FIRST_RUN_KEY);
    const user = await users.createFirstAdmin(req.body.username, req.body.password).catch(userError);
    setupToken.consume();
    ctx.log.info({ username: user.username, ip: req.ip }, `web: first admin "${user.username}" created; ${setupToken.path} removed`);
    setSessionCookie(req, reply, sessions.create(user.username, users.credentialOf(user.username)).id);
    return reply.code(201).send({ user } satisfies UserReply);
  });

  app.post<Credentials>('/api/auth/login', { config: { access: 'guest' }, schema: { body: loginBody } }, async (req, reply): Promise<UserReply> => {
    const { username, password } = req.body;
    const wait = limiter.check(req.ip, username);
    if (wait.account) {
      // Guesses for this name from many addresses: only addresses it logged in from before still get through.
      const hour = Math.floor(Date.now() / 3_600_000);
      if (accountWarned.get(userKey(username)) !== hour) {
        accountWarned.set(userKey(username), hour);
        ctx.log.warn({ ip: req.ip, username: logSafeUsername(username) }, `web: logins for this user are throttled: ${limiter.limits.accountMaxFailures} or more failed logins from many addresses within ${limiter.limits.accountWindowMs / 60_000} min; addresses that logged in as this user before are not held back`);
        if (accountWarned.size > 1000) accountWarned.clear();
      }
      refuseRetry(reply, wait.seconds, 429, 'rate_limited', `too many failed logins for this user from many addresses; try again in ${wait.seconds} s, or from an address you logged in from before`, { throttled: 'user' });
    }
    if (wait.seconds > 0) refuseRetry(reply, wait.seconds, 429, 'rate_limited', `too many failed logins; try again in ${wait.seconds} s`);
    // Counted as a failure from the start, in the same tick as the check (parallel guesses cannot slip past).
    const verifying = gate.run(() => users.verify(username, password));
    if (!verifying) refuseRetry(reply, 1, 503, 'busy', 'too many logins are being checked right now; try again in a second');
    limiter.begin(req.ip, username);
    const user = await verifying;
    if (!user) {
      limiter.failed(req.ip, username);
      const failures = limiter.failures(req.ip, username);
      ctx.log.warn({ ip: req.ip, username: logSafeUsername(username), failures }, 'web: failed login');
      throw new HttpError(401, 'invalid_credentials', 'invalid username or password');
    }
    limiter.succeeded(req.ip, username);
    sessions.delete(req.cookies[SESSION_COOKIE]);
    setSessionCookie(req, reply, sessions.create(user.username, users.credentialOf(user.username)).id);
    return { user };
  });

  app.post('/api/auth/logout', { config: { access: 'guest' } }, async (req, reply) => {
    sessions.delete(req.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });
}
