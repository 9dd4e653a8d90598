/** Shapes of the lqosd API (see lib/web/payloads.ts and lib/web/server.ts on the server). */

export type Role = 'admin' | 'read_only';
export interface PublicUser {
  username: string;
  role: Role;
}
export interface AuthStatus {
  firstRun: boolean;
  authError?: string;
  user?: PublicUser;
}

export type Severity = 'info' | 'warning' | 'error';
export interface UrgentIssue {
  id: string;
  key: string;
  source: string;
  severity: Severity;
  code: string;
  message: string;
  context?: unknown;
  firstSeen: string;
  lastSeen: string;
  count: number;
  acknowledged: boolean;
}
export interface UrgentPayload {
  activeCount: number;
  items: UrgentIssue[];
}

export type SchedulerHealth = 'unknown' | 'running' | 'healthy' | 'stale' | 'error';
export interface SchedulerStatus {
  health: SchedulerHealth;
  phase: string;
  lastHeartbeat?: string;
  lastSuccess?: string;
  nextRun?: string;
  lastError?: { at: string; message: string; integration?: string; preview?: string; logFile?: string };
}

export interface ShapingStatus {
  degraded?: string;
  reloadRequired?: string;
  lastApply?: { at: string; mode: 'full' | 'incremental' | 'none'; commands: number; seconds: number };
  leafFallbacks?: Record<string, string>;
}

export interface StatusPayload {
  version: string;
  nodeName: string;
  startedAt: string;
  uptimeSeconds: number;
  shapingStatus: ShapingStatus;
  dryRun: boolean;
  queueMode: 'shape' | 'observe';
  urgentActive: number;
  scheduler: SchedulerStatus;
  plan: { applied: true; circuits: number; nodes: number; mode: string } | { applied: false };
  inputsOwnedBy: string | null;
}

export interface Rates {
  rateMbps: number;
  ceilMbps: number;
}
export interface CircuitDevice {
  id: string;
  name: string;
  mac: string;
  ipv4: string[];
  ipv6: string[];
  comment: string;
}
export interface CircuitInfo {
  id: string;
  name: string;
  parent: string;
  queue: number;
  classId: { download: string; upload: string };
  download: Rates & { leaf: string | null };
  upload: Rates & { leaf: string | null };
  ipv4: string[];
  ipv6: string[];
  devices: CircuitDevice[];
}
export interface CircuitsPayload {
  applied: boolean;
  circuits: CircuitInfo[];
}

export interface TreeNode {
  name: string;
  path: string;
  parent: string | null;
  id: string | null;
  depth: number;
  generated: boolean;
  queue: number;
  classId: { download: string; upload: string };
  download: Rates;
  upload: Rates;
  circuits: number;
}
export interface NetworkTreePayload {
  applied: boolean;
  link?: { downloadMbps: number; uploadMbps: number };
  mode?: string;
  nodes: TreeNode[];
  unparentedCircuits?: number;
}

export interface InputIssue {
  severity: 'error' | 'warning';
  code: string;
  file: string;
  line?: number;
  column?: string;
  value?: string;
  message: string;
  text: string;
  circuitId?: string;
  deviceId?: string;
}

export interface SqmOverride {
  download?: 'cake' | 'fq_codel' | 'none';
  upload?: 'cake' | 'fq_codel' | 'none';
}
export interface InputDevice {
  id: string;
  name: string;
  mac: string;
  ipv4: string[];
  ipv6: string[];
  comment: string;
}
export interface InputCircuit {
  id: string;
  name: string;
  parentNode: string;
  parentNodeId: string;
  anchorNodeId: string;
  downloadMinMbps: number;
  uploadMinMbps: number;
  downloadMaxMbps: number;
  uploadMaxMbps: number;
  sqm?: SqmOverride;
  comment: string;
  devices: InputDevice[];
}
export interface ShapedDevicesPayload {
  exists: boolean;
  circuits: InputCircuit[];
  issues: InputIssue[];
  ownedBy: string | null;
}

/** GET /api/config: the effective config with secrets replaced by "set" / "not set". */
export interface ConfigPayload {
  path: string;
  config: Record<string, unknown>;
}

/** GET /api/plan/queues (lib/web/routesExtra.ts). */
export type PlanQueuesPayload =
  | { applied: false }
  | { applied: true; mode: string; queues: number; stickOffset: number; onAStick: boolean; interfaces: { download: string; upload: string } };

/** GET /api/network: network.json as stored. */
export interface NetworkPayload {
  exists: boolean;
  network: Record<string, unknown> | null;
  ownedBy: string | null;
}
