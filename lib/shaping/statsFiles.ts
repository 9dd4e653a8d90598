/**
 * The files upstream LibreQoS leaves in `<state_directory>/stats/` at the end of a run, which
 * operators' monitoring scripts read (documented field by field in docs/OUTPUTS.md):
 *
 * - `lastRun.txt`: when the last successful run finished, `%d-%b-%Y (%H:%M:%S.%f)` in local time,
 *   e.g. `18-Aug-2026 (08:59:33.123456)`;
 * - `statsByCircuit.json`: every circuit of the inputs (shaped or not) with its class ids as upstream
 *   renders them (`0x1:0x7`) and its parent as resolved;
 * - `statsByParentNode.json`: every node of the plan with its class id and ceilings.
 *
 * The builders are pure (plan in, JSON out); writeStatsFiles writes all three atomically.
 */
import type { StatePaths } from '../config/paths.ts';
import type { Circuit, Device, PlannedCircuit, PlannedNode, ShapingPlan, SqmOverride } from '../model.ts';
import { writeFilesAtomic } from '../util/atomicFile.ts';
import { pyClassId, pyHex } from '../util/classId.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * `lastRun.txt`'s text for `at` in local time: `%d-%b-%Y (%H:%M:%S.%f)` (English month, microseconds).
 * `microseconds` (0–999) refines the millisecond a Date carries.
 */
export function formatLastRun(at: Date, microseconds = 0): string {
  const frac = pad(at.getMilliseconds() * 1000 + Math.max(0, Math.min(999, Math.floor(microseconds))), 6);
  return `${pad(at.getDate())}-${MONTHS[at.getMonth()]}-${at.getFullYear()} (${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${frac})`;
}


/** The ShapedDevices.csv `sqm` token of an override (`cake`, `fq_codel/cake`, `/none`), or undefined. */
export function sqmToken(sqm: SqmOverride | undefined): string | undefined {
  if (!sqm || (sqm.download === undefined && sqm.upload === undefined)) return undefined;
  if (sqm.download === sqm.upload) return sqm.download;
  return `${sqm.download ?? ''}/${sqm.upload ?? ''}`;
}

export interface StatsDevice {
  deviceID: string;
  deviceName: string;
  mac: string;
  ipv4s: string[];
  ipv6s: string[];
  comment: string;
}

export interface StatsCircuit {
  circuitID: string;
  circuitName: string;
  ParentNode: string;
  ParentNodeID: string;
  AnchorNodeID: string;
  logicalParentNode: string;
  logicalParentNodeID: string;
  effectiveParentNodeID: string;
  shapingParentNode: string;
  shapingParentNodeID: string;
  shapingParentKey: string;
  devices: StatsDevice[];
  minDownload: number;
  minUpload: number;
  maxDownload: number;
  maxUpload: number;
  classid: string;
  up_classid: string;
  classMajor: string;
  up_classMajor: string;
  classMinor: string;
  comment: string;
  sqm?: string;
}

export interface StatsParentNode {
  parentNodeName: string;
  classID: string;
  maxDownload: number;
  maxUpload: number;
}

/** A host prefix as a CSV usually writes it (`100.64.0.1`, not `100.64.0.1/32`); networks keep their length. */
function hostForm(prefix: string): string {
  return prefix.replace(/^([0-9.]+)\/32$/, '$1').replace(/^([0-9a-f:]+)\/128$/i, '$1');
}

function statsDevice(d: Device): StatsDevice {
  return { deviceID: d.id, deviceName: d.name, mac: d.mac, ipv4s: d.ipv4.map(hostForm), ipv6s: d.ipv6.map(hostForm), comment: d.comment };
}

function shapedFields(plan: ShapingPlan, p: PlannedCircuit, node: PlannedNode | undefined) {
  const nodeId = node && !node.generated ? (node.id ?? '') : '';
  const nodeName = node?.name ?? p.parentPath.split('/').pop() ?? '';
  return {
    ParentNode: nodeName,
    effectiveParentNodeID: nodeId,
    shapingParentNode: nodeName,
    shapingParentNodeID: nodeId,
    shapingParentKey: nodeId ? `id:${nodeId}` : `name:${nodeName}`,
    minDownload: p.download.rateMbps,
    minUpload: p.upload.rateMbps,
    classid: pyClassId(p.queue, p.minor),
    up_classid: pyClassId(p.queue + plan.stickOffset, p.minor),
    classMajor: pyHex(p.queue),
    up_classMajor: pyHex(p.queue + plan.stickOffset),
    classMinor: pyHex(p.minor),
  };
}

const UNSHAPED = {
  effectiveParentNodeID: '',
  shapingParentNode: '',
  shapingParentNodeID: '',
  shapingParentKey: '',
  classid: '',
  up_classid: '',
  classMajor: '',
  up_classMajor: '',
  classMinor: '',
};

/**
 * `statsByCircuit.json`: the circuits of the inputs in file order, all of them (a circuit the plan
 * could not place keeps its file values and has empty class ids). For a shaped circuit the mins are
 * the HTB rates this run assigned; maxes are always the file's values (not clamped to the parent).
 */
export function statsByCircuit(plan: ShapingPlan, circuits: readonly Circuit[]): StatsCircuit[] {
  const planned = new Map(plan.circuits.map((c) => [c.id, c]));
  const nodes = new Map(plan.nodes.map((n) => [n.path, n]));
  return circuits.map((c) => {
    const p = planned.get(c.id);
    const base = {
      circuitID: c.id,
      circuitName: c.name,
      ParentNode: c.parentNode || 'none',
      ParentNodeID: c.parentNodeId,
      AnchorNodeID: c.anchorNodeId,
      logicalParentNode: c.parentNode || 'none',
      logicalParentNodeID: c.parentNodeId,
      ...UNSHAPED,
      devices: c.devices.map(statsDevice),
      minDownload: c.downloadMinMbps,
      minUpload: c.uploadMinMbps,
      maxDownload: c.downloadMaxMbps,
      maxUpload: c.uploadMaxMbps,
      comment: c.comment,
    };
    const out: StatsCircuit = p ? { ...base, ...shapedFields(plan, p, nodes.get(p.parentPath)) } : base;
    const sqm = sqmToken(c.sqm);
    if (sqm !== undefined) out.sqm = sqm;
    return out;
  });
}

/** `statsByParentNode.json`: every node of the plan (generated parents included) in plan order. */
export function statsByParentNode(plan: ShapingPlan): StatsParentNode[] {
  return plan.nodes.map((n) => ({
    parentNodeName: n.name,
    classID: pyClassId(n.queue, n.minor),
    maxDownload: n.download.ceilMbps,
    maxUpload: n.upload.ceilMbps,
  }));
}

/**
 * Writes the three stats files crash-safe as one set (all written before any is replaced, so a
 * full disk keeps the previous set); `at` (default: now, to the microsecond) goes in lastRun.txt.
 */
export function writeStatsFiles(
  paths: Pick<StatePaths, 'lastRun' | 'statsByCircuit' | 'statsByParentNode'>,
  plan: ShapingPlan,
  circuits: readonly Circuit[],
  at?: Date,
): void {
  // Compact: one entry per circuit is ~1 kB pretty-printed (≈100 MB at 100k circuits).
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  writeFilesAtomic([
    { path: paths.statsByCircuit, data: JSON.stringify(statsByCircuit(plan, circuits)) + '\n' },
    { path: paths.statsByParentNode, data: JSON.stringify(statsByParentNode(plan), null, 2) + '\n' },
    { path: paths.lastRun, data: at ? formatLastRun(at) : formatLastRun(new Date(Math.floor(us / 1000)), us % 1000) },
  ]);
}
