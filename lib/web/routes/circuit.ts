/** The Circuit page's live detail: GET /api/circuits/:id/live (rates, queues, leaf in use, addresses) and /flows. */
import type { FastifyInstance } from 'fastify';
import type { CircuitFlowsPayload, CircuitLivePayload } from '../../api/circuit.ts';
import { circuitFlowsPayload, circuitLivePayload, MAX_CIRCUIT_FLOWS } from '../circuitDetail.ts';
import { idParams, type WebDeps } from '../deps.ts';
import { shownCircuit } from '../payloads.ts';

const FLOWS_OFF = 'Flow tracking is not running on this lqosd (no dataplane attached, or LQOS_FLOWS=0).';

export async function circuitRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;
  const readOnly = { access: 'read_only' as const };

  app.get<{ Params: { id: string } }>('/api/circuits/:id/live', { config: readOnly, schema: { params: idParams } }, async (req): Promise<CircuitLivePayload> => {
    const { plan, c, planned } = shownCircuit(ctx, req.params.id);
    const telemetry = planned ? undefined : ctx.circuitTelemetry?.(c.id);
    const missing = planned
      ? 'This plan is planned, not applied (dry run): nothing is counted or queued for it.'
      : !ctx.circuitTelemetry
        ? 'Telemetry is not running on this lqosd (LQOS_TELEMETRY=0 or it failed to start): no live counters.'
        : 'Telemetry has not read the applied plan yet.';
    return circuitLivePayload(plan, c, { telemetry, missing, status: ctx.shapingStatus() });
  });

  app.get<{ Params: { id: string }; Querystring: { limit?: string } }>(
    '/api/circuits/:id/flows',
    {
      config: readOnly,
      schema: { params: idParams, querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,5}$' } } } },
    },
    async (req): Promise<CircuitFlowsPayload> => {
      const { c } = shownCircuit(ctx, req.params.id);
      const snap = ctx.flows?.();
      if (!snap) return { available: false, reason: FLOWS_OFF, at: 0, summary: null, flows: [], total: 0 };
      const summary = snap.circuits.find((x) => x.circuitId === c.id);
      const flows = ctx.circuitFlows?.(c.id) ?? summary?.flows ?? [];
      return circuitFlowsPayload(snap.at, summary, flows, Math.min(MAX_CIRCUIT_FLOWS, Number(req.query.limit ?? 50)));
    },
  );
}
