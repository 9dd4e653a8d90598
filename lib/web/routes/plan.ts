/** The applied plan (or, with none, a dry run's plan marked `planned`): circuits, the network tree and the CPU queue layout. */
import type { FastifyInstance } from 'fastify';
import type { CircuitInfo, CircuitsPayload, NetworkTreePayload, PlanQueuesPayload } from '../../api/plan.ts';
import { idParams, type WebDeps } from '../deps.ts';
import { circuitPayload, networkTreePayload, planQueuesPayload, shownCircuit, shownPlan } from '../payloads.ts';

export async function planRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;
  const readOnly = { access: 'read_only' as const };

  app.get('/api/circuits', { config: readOnly }, async (): Promise<CircuitsPayload> => {
    const { plan, planned } = shownPlan(ctx);
    return { applied: Boolean(plan), ...(planned ? { planned } : {}), circuits: plan ? plan.circuits.map((c) => circuitPayload(plan, c)) : [] };
  });

  app.get<{ Params: { id: string } }>('/api/circuits/:id', { config: readOnly, schema: { params: idParams } }, async (req): Promise<CircuitInfo> => {
    const { plan, c } = shownCircuit(ctx, req.params.id);
    return circuitPayload(plan, c);
  });

  app.get('/api/network-tree', { config: readOnly }, async (): Promise<NetworkTreePayload> => {
    const { plan, planned } = shownPlan(ctx);
    return networkTreePayload(plan, planned);
  });

  // The CPU pages also list queues that carry no circuit: how many queues, the upload offset on a stick.
  app.get('/api/plan/queues', { config: readOnly }, async (): Promise<PlanQueuesPayload> => {
    const { plan, planned } = shownPlan(ctx);
    return planQueuesPayload(plan, planned);
  });
}
