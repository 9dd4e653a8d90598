/** Prometheus `/metrics` (no login: numeric shaping metrics only). */
import type { FastifyInstance } from 'fastify';
import type { WebDeps } from '../deps.ts';

export async function metricsRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, metrics } = d;
  app.get('/metrics', async (_req, reply) => {
    metrics.urgentIssuesActive.set(ctx.urgent.activeCount());
    metrics.shapedCircuits.set(ctx.appliedPlan()?.circuits.length ?? 0);
    metrics.shapingDegraded.set(ctx.shapingStatus().degraded ? 1 : 0);
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
