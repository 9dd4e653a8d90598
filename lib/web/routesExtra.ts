/**
 * Extra read-only routes for the web UI pages added after the first slice (CPU pages). Registered
 * from server.ts; every route declares its access like the others.
 *
 * - `GET /api/plan/queues`: the CPU queue layout of the applied plan (how many queues, the upload
 *   offset on a stick), so the CPU pages also list queues that carry no circuit.
 */
import type { FastifyInstance } from 'fastify';
import type { DaemonContext } from '../daemon/context.ts';

export async function registerExtraRoutes(app: FastifyInstance, ctx: DaemonContext): Promise<void> {
  // Flows for the Flow Globe / ASN pages: 404 when flow tracking is not running on this lqosd.
  app.get('/api/flows', { config: { access: 'read_only' } }, async (_req, reply) => {
    const snap = ctx.flows?.();
    if (!snap) return reply.code(404).send({ error: 'flows_unavailable', message: 'flow tracking is not running on this lqosd (no dataplane attached, or LQOS_FLOWS=0)' });
    return snap;
  });
  app.get('/api/plan/queues', { config: { access: 'read_only' } }, async () => {
    const plan = ctx.appliedPlan();
    if (!plan) return { applied: false };
    return {
      applied: true,
      mode: plan.mode,
      queues: plan.queues,
      stickOffset: plan.stickOffset,
      onAStick: plan.interfaces.onAStick,
      interfaces: { download: plan.interfaces.download, upload: plan.interfaces.upload },
    };
  });
}
