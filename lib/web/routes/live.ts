/**
 * Live data: the websocket (`GET /api/ws`, channels pushed by ./channels.ts's hub, which caps
 * connections and drops consumers that do not keep up) and the flow
 * tracking snapshot (`GET /api/flows`, 404 while flow tracking does not run).
 */
import type { FastifyInstance } from 'fastify';
import type { FlowSnapshot } from '../../api/flows.ts';
import { loginOf, sessionLogin } from '../access.ts';
import type { WsLike } from '../channels.ts';
import type { WebDeps } from '../deps.ts';

export async function liveRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, hub, users, sessions } = d;

  // Cross-site websocket hijacking: the handshake passed the transport guards (lib/web/http.ts), which
  // refuse an Origin other than this server's; the hub caps connections and drops slow readers.
  app.get('/api/ws', { config: { access: 'read_only' }, websocket: true }, (socket, req) => {
    const login = loginOf(req);
    if (!login) {
      socket.close(4401, 'log in first');
      return;
    }
    hub.attach(socket as unknown as WsLike, {
      sessionId: login.sessionId,
      user: login.user.username,
      // Same rule as HTTP requests: a deleted user or a changed password (lqusers passwd) ends the
      // session, and the hub closes the socket (WS_CLOSE_SESSION_ENDED) at its next tick. While the
      // users file is unusable the users cannot be checked (HTTP answers 503): the socket stays open
      // while its session lasts (not expired, not logged out), since the web UI takes
      // WS_CLOSE_SESSION_ENDED for a logout; once the file is fixed the full check applies again.
      sessionValid: () =>
        users.state() === 'corrupt' ? sessions.get(login.sessionId, false) !== undefined : sessionLogin(login.sessionId, users, sessions, false) !== undefined,
    });
  });

  app.get('/api/flows', { config: { access: 'read_only' } }, async (_req, reply): Promise<FlowSnapshot> => {
    const snap = ctx.flows?.();
    if (!snap) return reply.code(404).send({ error: 'flows_unavailable', message: 'flow tracking is not running on this lqosd (no dataplane attached, or LQOS_FLOWS=0)' });
    return snap;
  });
}
