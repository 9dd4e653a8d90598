/**
 * Live data: the websocket (`GET /api/ws`, channels pushed by ./channels.ts's hub) and the flow
 * tracking snapshot (`GET /api/flows`, 404 while flow tracking does not run).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FlowSnapshot } from '../../api/flows.ts';
import { loginOf } from '../access.ts';
import type { WsLike } from '../channels.ts';
import type { WebDeps } from '../deps.ts';

/** Cross-site websocket hijacking: a browser always sends Origin; it must be this host. */
async function sameOriginOnly(req: FastifyRequest, reply: FastifyReply) {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (!host || host.toLowerCase() !== String(req.headers.host ?? '').toLowerCase()) {
    return reply.code(403).send({ error: 'forbidden', message: 'cross-origin websocket refused' });
  }
}

export async function liveRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, hub, users, sessions } = d;

  app.get('/api/ws', { config: { access: 'read_only' }, websocket: true, onRequest: sameOriginOnly }, (socket, req) => {
    const login = loginOf(req);
    if (!login) {
      socket.close(4401, 'log in first');
      return;
    }
    hub.attach(socket as unknown as WsLike, () => {
      const s = sessions.get(login.sessionId, false);
      return s !== undefined && users.find(s.username) !== undefined;
    });
  });

  app.get('/api/flows', { config: { access: 'read_only' } }, async (_req, reply): Promise<FlowSnapshot> => {
    const snap = ctx.flows?.();
    if (!snap) return reply.code(404).send({ error: 'flows_unavailable', message: 'flow tracking is not running on this lqosd (no dataplane attached, or LQOS_FLOWS=0)' });
    return snap;
  });
}
