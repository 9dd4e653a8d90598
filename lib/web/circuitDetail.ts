/**
 * The Circuit page's live detail, pure: the plan's circuit joined with what telemetry and flow
 * tracking report of it (GET /api/circuits/:id/live and /flows, lib/web/routes/circuit.ts).
 */
import type { CircuitAddressLive, CircuitFlowsPayload, CircuitHostCounter, CircuitLivePayload, CircuitTelemetry, LeafInUse } from '../api/circuit.ts';
import type { CircuitFlowView, FlowView } from '../api/flows.ts';
import type { ShapingStatus } from '../api/status.ts';
import type { IpMapping, LeafQdisc, PlannedCircuit, ShapingPlan } from '../model.ts';

/** What the live payload is built from besides the plan. */
export interface CircuitLiveInputs {
  /** Telemetry's view of the circuit; undefined when it has none. */
  telemetry: CircuitTelemetry | undefined;
  /** Why `telemetry` is missing (telemetry off, plan not applied); ignored when it is present. */
  missing: string;
  status: ShapingStatus;
}

/** The host counter key of a mapping prefix: full-length prefixes are bare addresses (dataplane/maps.ts readHostCounters). */
export function hostKeyOf(prefix: string): string {
  const slash = prefix.indexOf('/');
  if (slash < 0) return prefix;
  const len = prefix.slice(slash + 1);
  const v6 = prefix.includes(':');
  return (v6 && len === '128') || (!v6 && len === '32') ? prefix.slice(0, slash) : prefix;
}

/** Each plan's mappings by circuit id, built once per plan (a page polls every 2 s; 150k mappings take ms to filter). */
const mappingsByCircuit = new WeakMap<ShapingPlan, Map<string, IpMapping[]>>();

function mappingsOf(plan: ShapingPlan, id: string): IpMapping[] {
  let m = mappingsByCircuit.get(plan);
  if (!m) {
    m = new Map();
    for (const x of plan.mappings) {
      const list = m.get(x.circuitId);
      if (list) list.push(x);
      else m.set(x.circuitId, [x]);
    }
    mappingsByCircuit.set(plan, m);
  }
  return m.get(id) ?? [];
}

/** The circuit's prefixes with their devices: the plan's mappings, or (a plan without mappings) the devices' addresses. */
function circuitPrefixes(plan: ShapingPlan, c: PlannedCircuit): { deviceId: string; prefix: string }[] {
  const mapped = mappingsOf(plan, c.id).map((m) => ({ deviceId: m.deviceId, prefix: m.prefix }));
  if (mapped.length > 0) return mapped;
  const full = (ip: string) => (ip.includes('/') ? ip : `${ip}/${ip.includes(':') ? 128 : 32}`);
  return c.devices.flatMap((d) => [...d.ipv4, ...d.ipv6].map((ip) => ({ deviceId: d.id, prefix: full(ip) })));
}

/** Every address of the circuit with its counter (none: zero, never seen); counters no mapping names are listed too. Busiest first. */
export function circuitAddresses(plan: ShapingPlan, c: PlannedCircuit, hosts: CircuitHostCounter[]): CircuitAddressLive[] {
  const byKey = new Map(hosts.map((h) => [h.key, h]));
  const row = (deviceId: string | null, prefix: string, h: CircuitHostCounter | undefined): CircuitAddressLive => ({
    deviceId, prefix, downBps: h?.downBps ?? 0, upBps: h?.upBps ?? 0, downBytes: h?.downBytes ?? 0, upBytes: h?.upBytes ?? 0, lastSeenMs: h?.lastSeenMs ?? null,
  });
  const rows = circuitPrefixes(plan, c).map(({ deviceId, prefix }) => {
    const key = hostKeyOf(prefix);
    const h = byKey.get(key);
    byKey.delete(key);
    return row(deviceId, prefix, h);
  });
  for (const h of byKey.values()) rows.push(row(null, h.key, h));
  return rows.sort((a, b) => b.downBps + b.upBps - (a.downBps + a.upBps) || (b.lastSeenMs ?? 0) - (a.lastSeenMs ?? 0));
}

const leafText = (l: LeafQdisc) => [l.kind, ...l.args].join(' ');

function leafInUse(planned: LeafQdisc | null, status: ShapingStatus, live: string | undefined): LeafInUse {
  return { planned: planned ? leafText(planned) : null, fallback: (planned && status.leafFallbacks?.[planned.kind]) || null, live: live ?? null };
}

/** Why a direction has no queue statistics. */
function queueNote(plan: ShapingPlan, t: CircuitTelemetry | undefined, status: ShapingStatus, missing: string): string | null {
  const v = t?.queues.view;
  if (v?.down && v.up) return null;
  if (plan.mode === 'observe') return 'Observe mode: lqosd counts traffic but installs no queues.';
  if (!t) return missing;
  if (!t.dataplane) return 'No dataplane attached (dry run or degraded): no queues to read.';
  if (!t.queues.at) return 'No queue poll yet (every queue_check_period_ms).';
  if (status.lazyQueues) return `Lazy queues (${status.lazyQueues.mode}): an idle circuit has no leaf qdisc in the kernel until it sees traffic.`;
  return 'tc reported no leaf qdisc under this class at the last poll.';
}

export function circuitLivePayload(plan: ShapingPlan, c: PlannedCircuit, i: CircuitLiveInputs): CircuitLivePayload {
  const t = i.telemetry?.dataplane ? i.telemetry : undefined;
  const unavailable = !i.telemetry ? i.missing : !i.telemetry.dataplane ? 'No dataplane attached (dry run or degraded): no traffic counters.' : null;
  const v = i.telemetry?.queues.view;
  return {
    at: t?.at ?? 0,
    unavailable,
    rates: t?.rates ? { downBps: t.rates.downBps, upBps: t.rates.upBps, downPps: t.rates.downPps, upPps: t.rates.upPps } : null,
    queues: {
      at: i.telemetry?.queues.at ?? 0,
      dtMs: i.telemetry?.queues.dtMs ?? 0,
      download: v?.down ?? null,
      upload: v?.up ?? null,
      note: queueNote(plan, i.telemetry, i.status, i.missing),
    },
    leaf: { download: leafInUse(c.download.leaf, i.status, v?.down?.kind), upload: leafInUse(c.upload.leaf, i.status, v?.up?.kind) },
    addresses: circuitAddresses(plan, c, t?.hosts ?? []),
  };
}

/** At most this many flows per answer. */
export const MAX_CIRCUIT_FLOWS = 500;

/** The circuit's flows, most bytes (both ways) first, at most `limit`, with the snapshot's summary of the circuit. */
export function circuitFlowsPayload(at: number, summary: CircuitFlowView | undefined, flows: FlowView[], limit: number): CircuitFlowsPayload {
  const sorted = [...flows].sort((a, b) => b.bytes.down + b.bytes.up - (a.bytes.down + a.bytes.up));
  let rest: Omit<CircuitFlowView, 'flows'> | null = null;
  if (summary) {
    const { flows: _omit, ...s } = summary;
    rest = s;
  }
  return { available: true, reason: null, at, summary: rest, flows: sorted.slice(0, limit), total: flows.length };
}
