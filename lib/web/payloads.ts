/**
 * JSON shapes the API and the websocket share (status, urgent list, circuits, tree and queue layout
 * of the plan), typed against lib/api so the server and the web UI cannot drift apart.
 */
import type { CircuitInfo, ClassIds, NetworkTreePayload, PlanQueuesPayload, TreeNode } from '../api/plan.ts';
import type { StatusPayload } from '../api/status.ts';
import type { UrgentPayload } from '../api/urgent.ts';
import type { DirectionRates, PlannedCircuit, PlannedNode, ShapingPlan } from '../model.ts';
import { formatClassId } from '../util/classId.ts';
import type { WebContext } from './context.ts';
import { HttpError } from './http.ts';
import { owningIntegration } from './inputsOwner.ts';
import { nodeIdOf } from './listen.ts';

/**
 * The plan the pages show: the one applied to the kernel; with none, a dry run's plan (planned,
 * not applied: the payloads say `planned: true` and the UI says so on every page).
 */
export function shownPlan(ctx: WebContext): { plan: ShapingPlan | undefined; planned: boolean } {
  const applied = ctx.appliedPlan();
  if (applied) return { plan: applied, planned: false };
  const planned = ctx.plannedPlan?.();
  return { plan: planned, planned: planned !== undefined };
}

/** A circuit of the shown plan by its Circuit ID; 404 when the plan does not have it. */
export function shownCircuit(ctx: WebContext, id: string): { plan: ShapingPlan; c: PlannedCircuit; planned: boolean } {
  const { plan, planned } = shownPlan(ctx);
  const c = plan?.circuits.find((x) => x.id === id);
  if (!plan) throw new HttpError(404, 'not_found', `circuit ${id}: no plan is applied yet (run LibreQoS or wait for the scheduler)`);
  if (!c) throw new HttpError(404, 'not_found', `circuit ${id} is not in the ${planned ? 'planned (dry-run) plan' : 'applied plan'}`);
  return { plan, c, planned };
}

const plannedFlag = (planned: boolean) => (planned ? { planned: true } : {});

export function statusPayload(ctx: WebContext): StatusPayload {
  const config = ctx.config();
  const { plan, planned } = shownPlan(ctx);
  const owner = owningIntegration(config);
  return {
    version: ctx.version,
    nodeName: config.node_name,
    nodeId: nodeIdOf(config),
    rttThresholds: { greenMs: config.rtt_thresholds.green_ms, yellowMs: config.rtt_thresholds.yellow_ms, redMs: config.rtt_thresholds.red_ms },
    heatmaps: { circuit: config.enable_circuit_heatmaps, site: config.enable_site_heatmaps, asn: config.enable_asn_heatmaps },
    startedAt: ctx.startedAt.toISOString(),
    uptimeSeconds: Math.max(0, Math.floor((Date.now() - ctx.startedAt.getTime()) / 1000)),
    shapingStatus: ctx.shapingStatus(),
    dryRun: config.queues.dry_run,
    queueMode: config.queues.queue_mode,
    urgentActive: ctx.urgent.activeCount(),
    scheduler: ctx.scheduler.status(),
    plan: plan ? { applied: true, circuits: plan.circuits.length, nodes: plan.nodes.length, mode: plan.mode, ...plannedFlag(planned) } : { applied: false },
    inputsOwnedBy: owner ? owner.section.replace(/_integration$/, '') : null,
  };
}

export function urgentPayload(ctx: WebContext): UrgentPayload {
  return { activeCount: ctx.urgent.activeCount(), items: ctx.urgent.list() };
}

function classIds(plan: ShapingPlan, queue: number, minor: number): ClassIds {
  return { download: formatClassId(queue, minor), upload: formatClassId(queue + plan.stickOffset, minor) };
}

const rates = (r: DirectionRates): DirectionRates => ({ rateMbps: r.rateMbps, ceilMbps: r.ceilMbps });

export function circuitPayload(plan: ShapingPlan, c: PlannedCircuit): CircuitInfo {
  return {
    id: c.id,
    name: c.name,
    parent: c.parentPath,
    queue: c.queue,
    classId: classIds(plan, c.queue, c.minor),
    download: { ...rates(c.download), leaf: c.download.leaf?.kind ?? null },
    upload: { ...rates(c.upload), leaf: c.upload.leaf?.kind ?? null },
    ipv4: c.devices.flatMap((d) => d.ipv4),
    ipv6: c.devices.flatMap((d) => d.ipv6),
    devices: c.devices.map((d) => ({ id: d.id, name: d.name, mac: d.mac, ipv4: d.ipv4, ipv6: d.ipv6, comment: d.comment })),
  };
}

export function nodePayload(plan: ShapingPlan, n: PlannedNode, circuitCount: number): TreeNode {
  const cut = n.path.lastIndexOf('/');
  return {
    name: n.name,
    path: n.path,
    parent: cut < 0 ? null : n.path.slice(0, cut),
    id: n.id ?? null,
    depth: n.depth,
    generated: n.generated,
    queue: n.queue,
    classId: classIds(plan, n.queue, n.minor),
    download: rates(n.download),
    upload: rates(n.upload),
    circuits: circuitCount,
  };
}

export function networkTreePayload(plan: ShapingPlan | undefined, planned = false): NetworkTreePayload {
  if (!plan) return { applied: false, nodes: [] };
  const counts = new Map<string, number>();
  for (const c of plan.circuits) counts.set(c.parentPath, (counts.get(c.parentPath) ?? 0) + 1);
  return {
    applied: true,
    ...plannedFlag(planned),
    link: plan.link,
    mode: plan.mode,
    nodes: plan.nodes.map((n) => nodePayload(plan, n, counts.get(n.path) ?? 0)),
    unparentedCircuits: counts.get('') ?? 0,
  };
}

export function planQueuesPayload(plan: ShapingPlan | undefined, planned = false): PlanQueuesPayload {
  if (!plan) return { applied: false };
  return {
    applied: true,
    ...plannedFlag(planned),
    mode: plan.mode,
    queues: plan.queues,
    stickOffset: plan.stickOffset,
    onAStick: plan.interfaces.onAStick,
    interfaces: { download: plan.interfaces.download, upload: plan.interfaces.upload },
  };
}
