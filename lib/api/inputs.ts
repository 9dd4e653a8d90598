/** ShapedDevices.csv and network.json through the API: GET/PUT /api/shaped-devices and /api/network. */
import type { Circuit, Device, InputIssue } from '../model.ts';

export type { Circuit, Device, InputIssue, SqmKind, SqmOverride } from '../model.ts';

/** A validation finding as the API returns it: structured, plus the one-line text. */
export interface ApiInputIssue extends InputIssue {
  text: string;
  /** On a rejected PUT /api/shaped-devices: the circuit (and device) of the offending row. */
  circuitId?: string;
  deviceId?: string;
}

/** GET /api/shaped-devices: the parsed file (circuits with their devices) and its findings. */
export interface ShapedDevicesPayload {
  exists: boolean;
  circuits: Circuit[];
  issues: ApiInputIssue[];
  /** Config section of the integration that owns the file (read-only then), or null. */
  ownedBy: string | null;
}

/** GET /api/network: network.json as stored. */
export interface NetworkPayload {
  exists: boolean;
  /** The parsed file (any JSON value: validation reports what is wrong); null with `text` when it is not JSON. */
  network: unknown;
  text?: string;
  issues: ApiInputIssue[];
  ownedBy: string | null;
}

/** A circuit as PUT /api/shaped-devices takes it: as GET returns it, without line numbers. */
export type CircuitBody = Omit<Circuit, 'line' | 'devices'> & { devices: Omit<Device, 'line'>[] };

/** Body of PUT /api/shaped-devices: the complete new list. */
export interface ShapedDevicesBody {
  circuits: CircuitBody[];
  /** The admin confirmed unshaping more than [safety] max_removed_percent of the circuits in force. */
  force?: boolean;
}

/**
 * Body of the 409 `mass_removal` refusal of PUT /api/shaped-devices or /api/network: the save would
 * unshape more than [safety] max_removed_percent of the circuits in force; send again with `force: true`.
 */
export interface MassRemovalRefusal {
  error: 'mass_removal';
  message: string;
  removed: number;
  total: number;
  limitPercent: number;
  /** The first circuits that would go. */
  sample: { id: string; name?: string }[];
}

/** Reply of PUT /api/shaped-devices. */
export interface ShapedDevicesSaved {
  ok: true;
  circuits: number;
  /** Set on a confirmed (forced) save: circuits in force it unshapes at the next run. */
  removed?: number;
  /** Warnings (errors reject the write with 422 and `issues` in the error body). */
  issues: ApiInputIssue[];
}

/** Reply of PUT /api/network. */
export interface NetworkSaved {
  ok: true;
  nodes: number;
  /** Set on a confirmed (forced) save: circuits in force it unshapes at the next run. */
  removed?: number;
  /** Set when the save moved circuits off removed nodes (`orphans: "reparent"`). */
  reparented?: OrphanReport;
  issues: ApiInputIssue[];
}

/** Circuits whose parent node a network.json save removes, by the parent they name. */
export interface OrphanGroup {
  /** The parent the circuits name, gone from the new network.json. */
  parent: string;
  /** The nearest remaining node above it in the old tree ('' when none remains: top level). */
  moveTo: string;
  circuits: { id: string; name: string }[];
}

/** The 409 `orphaned_circuits` body's `orphans`, and `NetworkSaved.reparented`. */
export interface OrphanReport {
  count: number;
  groups: OrphanGroup[];
}

/** What happens to such circuits: moved to `moveTo` (rows rewritten in place), or left without a parent. */
export type OrphanDecision = 'reparent' | 'keep';
