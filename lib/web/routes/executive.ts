/**
 * The Executive summary's API: `GET /api/executive?range=24h|7d` (default 24h). The per-minute
 * history (lib/telemetry/executive.ts: worst sites by RTT and retransmits, nodes' peak against their
 * plan, circuits at their ceiling, totals) joined with the plan the pages show (applied, or a dry
 * run's), and the top remote ASNs by bytes of flow tracking's snapshot now. Any logged-in user.
 */
import type { FastifyInstance } from 'fastify';
import { EXECUTIVE_RANGES, type ExecutiveAsnRow, type ExecutiveRange, type ExecutiveResponse } from '../../api/executive.ts';
import type { FlowSnapshot } from '../../api/flows.ts';
import type { ShapingPlan } from '../../model.ts';
import { EXECUTIVE_RULES, executiveNodesInPieces, executiveTotals, type ExecutiveWindow, type PlanCircuitCeil } from '../../telemetry/executive.ts';
import { CeilingHours } from '../../telemetry/executiveHours.ts';
import type { HistorySource } from '../context.ts';
import type { WebDeps } from '../deps.ts';
import { shownPlan } from '../payloads.ts';

interface ExecutiveQuerystring {
  range?: ExecutiveRange;
}

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: { range: { type: 'string', enum: Object.keys(EXECUTIVE_RANGES) } },
};

/** The range's window: up to the end of the minute in progress. Pure. */
export function executiveWindow(range: ExecutiveRange, nowS: number): ExecutiveWindow {
  const to = Math.floor(nowS / 60) * 60 + 60;
  return { from: to - EXECUTIVE_RANGES[range], to };
}

/** The remote ASNs with the most bytes in the tracked flows of the snapshot, busiest first. Pure. */
export function topAsnsByBytes(snap: FlowSnapshot | undefined, limit: number): ExecutiveResponse['asns'] {
  if (!snap) return { tracking: false, at: null, rows: [] };
  const rows: ExecutiveAsnRow[] = snap.asns.map((a) => ({
    asn: a.asn,
    name: a.name,
    country: a.country,
    flows: a.flows,
    bytesDown: a.bytes.down,
    bytesUp: a.bytes.up,
    rateDownBps: a.rateBps.down,
    rateUpBps: a.rateBps.up,
  }));
  rows.sort((a, b) => b.bytesDown + b.bytesUp - (a.bytesDown + a.bytesUp) || (a.asn ?? Infinity) - (b.asn ?? Infinity));
  return { tracking: true, at: snap.at || null, rows: rows.slice(0, limit) };
}

/** The plan's circuits and download ceilings: one array per plan (CeilingHours keeps its hours while it is the same). */
const planCeilings = new WeakMap<ShapingPlan, PlanCircuitCeil[]>();
function circuitCeilings(plan: ShapingPlan): PlanCircuitCeil[] {
  let c = planCeilings.get(plan);
  if (!c) planCeilings.set(plan, (c = plan.circuits.map((x) => ({ id: x.id, downMbps: x.download.ceilMbps }))));
  return c;
}

/** The history part of the response; empty tables without a plan. */
async function fromHistory(db: HistorySource['store']['db'], w: ExecutiveWindow, plan: ShapingPlan | undefined, hours: CeilingHours) {
  const totals = executiveTotals(db, w);
  if (!plan) return { totals, worstRtt: [], worstRetransmits: [], oversubscribed: [], atCeiling: [] };
  const nodeName = new Map(plan.nodes.map((n) => [n.path, n.name]));
  const nodes = await executiveNodesInPieces(
    db,
    w,
    plan.nodes.map((n) => ({ path: n.path, downMbps: n.download.ceilMbps, upMbps: n.upload.ceilMbps })),
    (path) => nodeName.get(path) ?? path,
  );
  const byId = new Map(plan.circuits.map((c) => [c.id, c]));
  const atCeiling = (await hours.top(db, w, circuitCeilings(plan))).map((r) => ({
    ...r,
    name: byId.get(r.id)?.name ?? r.id,
    parent: byId.get(r.id)?.parentPath ?? '',
  }));
  return { totals, ...nodes, atCeiling };
}

export async function executiveRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;
  // Circuits' closed hours, kept per store (a new store, e.g. after telemetry restarted, starts over).
  let kept: { store: HistorySource['store']; hours: CeilingHours } | undefined;
  app.get<{ Querystring: ExecutiveQuerystring }>('/api/executive', { config: { access: 'read_only' }, schema: { querystring } }, async (req): Promise<ExecutiveResponse> => {
    const range = req.query.range ?? '24h';
    const w = executiveWindow(range, Math.floor(Date.now() / 1000));
    const { plan, planned } = shownPlan(ctx);
    const source = ctx.history?.();
    const asns = topAsnsByBytes(ctx.flows?.(), EXECUTIVE_RULES.asnLimit);
    const base = { range, ...w, plan: plan ? (planned ? 'planned' : 'applied') : 'none', asns, rules: EXECUTIVE_RULES } as const;
    if (!source) return { ...base, history: false, totals: null, worstRtt: [], worstRetransmits: [], oversubscribed: [], atCeiling: [] };
    source.flush();
    if (kept?.store !== source.store) kept = { store: source.store, hours: new CeilingHours() };
    return { ...base, history: true, ...(await fromHistory(source.store.db, w, plan, kept.hours)) };
  });
}
