/** Web UI users (admin only; no password hash ever leaves the server). */
import type { FastifyInstance } from 'fastify';
import { PASSWORD_MAX, PASSWORD_MIN, USERNAME_RE, type Role, type UserReply, type UsersPayload } from '../../api/auth.ts';
import { currentUser, userError } from '../access.ts';
import type { WebDeps } from '../deps.ts';
import { ROLES } from '../users.ts';

export const usernameSchema = { type: 'string', pattern: USERNAME_RE.source };
export const passwordSchema = { type: 'string', minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX };
const roleSchema = { type: 'string', enum: [...ROLES] };
const nameParams = { type: 'object', required: ['name'], properties: { name: usernameSchema } };
const bodyOf = (properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties });

export async function usersRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, users, sessions } = d;
  const admin = { access: 'admin' as const };

  app.get('/api/users', { config: admin }, async (): Promise<UsersPayload> => {
    try {
      return { users: users.list() };
    } catch (err) {
      return userError(err);
    }
  });

  app.post<{ Body: { username: string; password: string; role: Role } }>(
    '/api/users',
    { config: admin, schema: { body: bodyOf({ username: usernameSchema, password: passwordSchema, role: roleSchema }) } },
    async (req, reply) => {
      const user = await users.add(req.body.username, req.body.password, req.body.role).catch(userError);
      ctx.log.info({ by: currentUser(req).user.username, username: user.username, role: user.role }, 'web: user added');
      return reply.code(201).send({ user } satisfies UserReply);
    },
  );

  app.delete<{ Params: { name: string } }>('/api/users/:name', { config: admin, schema: { params: nameParams } }, async (req) => {
    await users.remove(req.params.name).catch(userError);
    sessions.deleteUser(req.params.name);
    ctx.log.info({ by: currentUser(req).user.username, username: req.params.name }, 'web: user deleted');
    return { ok: true };
  });

  app.put<{ Params: { name: string }; Body: { password: string } }>(
    '/api/users/:name/password',
    { config: admin, schema: { params: nameParams, body: bodyOf({ password: passwordSchema }) } },
    async (req) => {
      await users.setPassword(req.params.name, req.body.password).catch(userError);
      // Other sessions of that user end; the caller's own session survives (with the new credential).
      const own = currentUser(req).sessionId;
      sessions.deleteUser(req.params.name, own);
      const kept = sessions.get(own, false);
      if (kept?.username === req.params.name) kept.credential = users.credentialOf(req.params.name);
      ctx.log.info({ by: currentUser(req).user.username, username: req.params.name }, 'web: password changed');
      return { ok: true };
    },
  );

  app.put<{ Params: { name: string }; Body: { role: Role } }>(
    '/api/users/:name/role',
    { config: admin, schema: { params: nameParams, body: bodyOf({ role: roleSchema }) } },
    async (req): Promise<UserReply> => {
      const user = await users.setRole(req.params.name, req.body.role).catch(userError);
      ctx.log.info({ by: currentUser(req).user.username, username: user.username, role: user.role }, 'web: role changed');
      return { user };
    },
  );
}
