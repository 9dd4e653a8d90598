/**
 * Who is calling: the session cookie's user, checked against each route's access level by one
 * onRequest hook before the body is even parsed. Route handlers read the caller with currentUser().
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PublicUser } from '../api/auth.ts';
import { HttpError } from './http.ts';
import { SESSION_COOKIE, type SessionStore } from './sessions.ts';
import { UserError, type UserStore } from './users.ts';

export interface Login {
  user: PublicUser;
  sessionId: string;
}

/** Request-scoped login (set by the access hook). */
const requestUser = new WeakMap<FastifyRequest, Login>();

/** The logged-in user of a request that passed the access hook. */
export function currentUser(req: FastifyRequest): Login {
  const u = requestUser.get(req);
  if (!u) throw new HttpError(401, 'unauthorized', 'log in first');
  return u;
}

/** The login of a request, if the access hook found one. */
export function loginOf(req: FastifyRequest): Login | undefined {
  return requestUser.get(req);
}

/**
 * The login of session `id`, or undefined. The users file may be changed behind lqosd's back
 * (`lqusers`): a session of a deleted user ends (is deleted), and so does one begun before the
 * user's password changed. The one rule for HTTP requests (sessionUser) and open websockets
 * (routes/live.ts, checked every hub tick, `touch` false so a socket does not keep a session alive).
 * While the users file is unusable there is no login (requests get 503) but no session ends either:
 * an open socket stays open then (routes/live.ts), and is checked again once the file is fixed.
 */
export function sessionLogin(id: string | undefined, users: UserStore, sessions: SessionStore, touch = true): Login | undefined {
  // An unusable users file ends no session (requests get 503 until it is fixed); a missing one does.
  if (users.state() === 'corrupt') return undefined;
  const s = sessions.get(id, touch);
  if (!s) return undefined;
  const user = users.find(s.username);
  if (!user || (s.credential !== undefined && s.credential !== users.credentialOf(s.username))) {
    sessions.delete(s.id);
    return undefined;
  }
  return { user, sessionId: s.id };
}

/** The user behind the session cookie (sessionLogin). */
export function sessionUser(req: FastifyRequest, users: UserStore, sessions: SessionStore): Login | undefined {
  return sessionLogin(req.cookies[SESSION_COOKIE], users, sessions);
}

/** Secure whenever the request came over TLS (directly, or through a trusted proxy that says https). */
export function setSessionCookie(req: FastifyRequest, reply: FastifyReply, id: string): void {
  reply.setCookie(SESSION_COOKIE, id, { httpOnly: true, sameSite: 'strict', path: '/', secure: req.protocol === 'https' });
}

/** A UserStore failure as the HTTP error it means. */
export function userError(err: unknown): never {
  if (err instanceof UserError) {
    const status = { user_exists: 409, no_such_user: 404, last_admin: 409, already_configured: 409, auth_unavailable: 503, invalid_user: 400 }[err.code];
    throw new HttpError(status, err.code, err.message);
  }
  throw err;
}

/** Enforces each route's `config.access`; routes without one (static files, /metrics) are open. */
export function installAccessControl(app: FastifyInstance, users: UserStore, sessions: SessionStore): void {
  app.addHook('onRequest', async (req, reply) => {
    const access = req.routeOptions.config?.access;
    if (access === undefined || access === 'open') return;
    const state = users.state();
    if (state === 'corrupt') {
      return reply.code(503).send({ error: 'auth_unavailable', message: users.corruptMessage() });
    }
    if (state === 'empty') {
      return reply.code(409).send({ error: 'first_run', message: 'create the first admin' });
    }
    if (access === 'guest') return;
    const login = sessionUser(req, users, sessions);
    if (!login) return reply.code(401).send({ error: 'unauthorized', message: 'log in first' });
    if (access === 'admin' && login.user.role !== 'admin') {
      return reply.code(403).send({ error: 'forbidden', message: 'this needs the admin role' });
    }
    requestUser.set(req, login);
  });
}
