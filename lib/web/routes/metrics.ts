/**
 * Prometheus `/metrics` (no login: numeric shaping metrics, but labelled with circuit ids and node
 * names). With `[web] metrics_token` set, a scraper must send `Authorization: Bearer <token>`;
 * without one only this host (loopback) may read it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { tokenMatches } from '../../util/tokens.ts';
import type { WebDeps } from '../deps.ts';

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback client addresses. */
export function isLoopbackAddress(ip: string | undefined): boolean {
  if (!ip) return false;
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return /^127\.\d+\.\d+\.\d+$/.test(v4) || ip === '::1';
}

/** True when a bind address only accepts connections from this host. */
export function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || isLoopbackAddress(host.replace(/^\[|\]$/g, ''));
}

/** The warning lqosd logs once at start when /metrics is reachable only from this host. */
export function metricsExposureWarning(bindHost: string, token: string): string | undefined {
  if (token !== '' || isLoopbackBind(bindHost)) return undefined;
  return (
    `the web server listens on ${bindHost}, but /metrics has no token: it answers only requests from this host (403 for others). ` +
    'To let a Prometheus server on another host scrape it, set [web] metrics_token in lqos.conf and configure the scrape job with that bearer token.'
  );
}

/** Undefined when the request may read /metrics; else the refusal sent. */
function refusal(req: FastifyRequest, reply: FastifyReply, token: string): FastifyReply | undefined {
  if (token !== '') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (m && tokenMatches(token, m[1])) return undefined;
    return reply
      .code(401)
      .header('WWW-Authenticate', 'Bearer realm="lqosd metrics"')
      .send({ error: 'unauthorized', message: 'send Authorization: Bearer <[web] metrics_token from lqos.conf>' });
  }
  if (isLoopbackAddress(req.ip)) return undefined;
  return reply.code(403).send({
    error: 'forbidden',
    message: '/metrics answers only requests from this host while [web] metrics_token is empty; set metrics_token in lqos.conf and scrape with that bearer token',
  });
}

export async function metricsRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, metrics } = d;
  app.get('/metrics', async (req, reply) => {
    const refused = refusal(req, reply, ctx.config().web.metrics_token);
    if (refused) return refused;
    metrics.urgentIssuesActive.set(ctx.urgent.activeCount());
    metrics.shapedCircuits.set(ctx.appliedPlan()?.circuits.length ?? 0);
    metrics.shapingDegraded.set(ctx.shapingStatus().degraded ? 1 : 0);
    metrics.refresh();
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
