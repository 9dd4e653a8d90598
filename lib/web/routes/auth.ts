/** Login, logout, first-run admin creation and the login state (the only routes without a login). */
import type { FastifyInstance } from 'fastify';
import { PASSWORD_MAX, type AuthStatus, type UserReply } from '../../api/auth.ts';
import { sessionUser, setSessionCookie, userError } from '../access.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import { SESSION_COOKIE } from '../sessions.ts';
import { passwordSchema, usernameSchema } from './users.ts';

/** Login body: first-run applies the user rules; login only bounds the sizes (no hints to guessers). */
const credentials = (strict: boolean) => ({
  type: 'object',
  additionalProperties: false,
  required: ['username', 'password'],
  properties: strict
    ? { username: usernameSchema, password: passwordSchema }
    : { username: { type: 'string', maxLength: 128 }, password: { type: 'string', maxLength: PASSWORD_MAX } },
});

type Credentials = { Body: { username: string; password: string } };

export async function authRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, users, sessions, limiter, usersFile } = d;

  app.get('/api/auth/status', { config: { access: 'open' } }, async (req): Promise<AuthStatus> => {
    const state = users.state();
    const login = state === 'ready' ? sessionUser(req, users, sessions) : undefined;
    return {
      firstRun: state === 'empty',
      ...(state === 'corrupt' ? { authError: 'the users file cannot be read' } : {}),
      ...(login ? { user: login.user } : {}),
    };
  });

  app.post<Credentials>('/api/auth/first-run', { config: { access: 'open' }, schema: { body: credentials(true) } }, async (req, reply) => {
    if (users.state() === 'corrupt') throw new HttpError(503, 'auth_unavailable', `the users file cannot be read; fix or remove ${usersFile}`);
    const user = await users.createFirstAdmin(req.body.username, req.body.password).catch(userError);
    ctx.log.info({ username: user.username }, 'web: first admin created');
    setSessionCookie(req, reply, sessions.create(user.username).id);
    return reply.code(201).send({ user } satisfies UserReply);
  });

  app.post<Credentials>('/api/auth/login', { config: { access: 'guest' }, schema: { body: credentials(false) } }, async (req, reply): Promise<UserReply> => {
    const { username, password } = req.body;
    const wait = limiter.retryAfter(req.ip, username);
    if (wait > 0) {
      reply.header('Retry-After', String(wait));
      throw new HttpError(429, 'rate_limited', `too many failed logins; try again in ${wait} s`);
    }
    limiter.begin(req.ip, username);
    const user = await users.verify(username, password);
    if (!user) {
      ctx.log.warn({ ip: req.ip }, 'web: failed login');
      throw new HttpError(401, 'invalid_credentials', 'invalid username or password');
    }
    limiter.succeeded(req.ip, username);
    sessions.delete(req.cookies[SESSION_COOKIE]);
    setSessionCookie(req, reply, sessions.create(user.username).id);
    return { user };
  });

  app.post('/api/auth/logout', { config: { access: 'guest' } }, async (req, reply) => {
    sessions.delete(req.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });
}
