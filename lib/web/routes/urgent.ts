/** Urgent issues: the list (any user), acknowledge and clear (admins). */
import type { FastifyInstance } from 'fastify';
import type { UrgentPayload } from '../../api/urgent.ts';
import { idParams, type WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import { urgentPayload } from '../payloads.ts';

export async function urgentRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;

  app.get('/api/urgent', { config: { access: 'read_only' } }, async (): Promise<UrgentPayload> => urgentPayload(ctx));

  app.post<{ Params: { id: string } }>('/api/urgent/:id/ack', { config: { access: 'admin' }, schema: { params: idParams } }, async (req) => {
    if (!ctx.urgent.acknowledge(req.params.id)) throw new HttpError(404, 'not_found', `no urgent issue ${req.params.id}`);
    return { ok: true };
  });

  app.delete<{ Params: { id: string } }>('/api/urgent/:id', { config: { access: 'admin' }, schema: { params: idParams } }, async (req) => {
    if (ctx.urgent.clear(req.params.id) === 0) throw new HttpError(404, 'not_found', `no urgent issue ${req.params.id}`);
    return { ok: true, cleared: 1 };
  });

  app.delete('/api/urgent', { config: { access: 'admin' } }, async () => ({ ok: true, cleared: ctx.urgent.clear() }));
}
