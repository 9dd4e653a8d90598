/**
 * The applied plan as the UI reads it: GET /api/circuits, /api/circuits/:id, /api/network-tree and
 * /api/plan/queues.
 */
import type { Device, DirectionRates, ShapingPlan } from '../model.ts';

/** Download / upload HTB class ids (`major:minor`, hex). */
export interface ClassIds {
  download: string;
  upload: string;
}

/** A device of a circuit (its CSV line number left out). */
export type CircuitDevice = Omit<Device, 'line'>;

export type CircuitRates = DirectionRates & {
  /** Leaf qdisc kind (`cake`, `fq_codel`, a fallback), null without one. */
  leaf: string | null;
};

export interface CircuitInfo {
  id: string;
  name: string;
  /** Path of the node the circuit hangs under ('' at the top). */
  parent: string;
  queue: number;
  classId: ClassIds;
  download: CircuitRates;
  upload: CircuitRates;
  ipv4: string[];
  ipv6: string[];
  devices: CircuitDevice[];
}

/**
 * `planned: true`: what the plan pages show is a dry run's plan (`[queues] dry_run = true`, nothing
 * applied yet): planned, NOT applied to the kernel; `applied` then only says that a plan is shown.
 */
export interface PlannedFlag {
  planned?: boolean;
}

/** GET /api/circuits. */
export interface CircuitsPayload extends PlannedFlag {
  applied: boolean;
  circuits: CircuitInfo[];
}

export interface TreeNode {
  name: string;
  /** Names from the top, joined with '/'. */
  path: string;
  parent: string | null;
  id: string | null;
  depth: number;
  generated: boolean;
  queue: number;
  classId: ClassIds;
  download: DirectionRates;
  upload: DirectionRates;
  /** Circuits directly under this node. */
  circuits: number;
}

/** GET /api/network-tree. */
export type NetworkTreePayload =
  | { applied: false; nodes: TreeNode[] }
  | ({ applied: true; link: ShapingPlan['link']; mode: ShapingPlan['mode']; nodes: TreeNode[]; unparentedCircuits: number } & PlannedFlag);

/** GET /api/plan/queues: the CPU queue layout of the applied plan. */
export type PlanQueuesPayload =
  | { applied: false }
  | {
      applied: true;
      planned?: boolean;
      mode: ShapingPlan['mode'];
      queues: number;
      stickOffset: number;
      onAStick: boolean;
      interfaces: { download: string; upload: string };
    };
