/** lqosd's own state and the scheduler's health, as the dashboard and the status bar show them. */
import type { FastifyInstance } from 'fastify';
import type { SchedulerStatus } from '../../api/scheduler.ts';
import type { StatusPayload } from '../../api/status.ts';
import type { WebDeps } from '../deps.ts';
import { statusPayload } from '../payloads.ts';

export async function statusRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;
  app.get('/api/status', { config: { access: 'read_only' } }, async (): Promise<StatusPayload> => statusPayload(ctx));
  app.get('/api/scheduler', { config: { access: 'read_only' } }, async (): Promise<SchedulerStatus> => ctx.scheduler.status());
}
