/**
 * The lqosd bus protocol: newline-delimited JSON over a Unix stream socket (default /run/lqos/bus).
 *
 * Request:  {"id": 1, "type": "ping", ...fields}\n      (id: number or string, echoed back)
 * Reply:    {"id": 1, "ok": true, "result": ...}\n
 *           {"id": 1, "ok": false, "error": {"code": "invalid", "message": "...", "path": [...]}}\n
 *
 * A connection may carry any number of requests; replies can come back in a different order
 * than the requests (match them by id). Every request is validated by `requestSchema`; unknown
 * fields are rejected. Error codes are listed in `ERROR_CODES`.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const MAX_MESSAGE_BYTES = 1024 * 1024;
export const MAX_CONNECTIONS = 32;
/** Requests of one connection being handled at once; further lines wait (the socket is paused). */
export const MAX_IN_FLIGHT_PER_CONNECTION = 16;
/** Entries in one map_ip_add / map_ip_delete request. */
export const MAX_BATCH = 10_000;

export const ERROR_CODES = [
  'bad_json', // a line that is not JSON
  'too_large', // a message over MAX_MESSAGE_BYTES (the connection is then closed)
  'unknown_type', // `type` missing or not a known request type
  'invalid', // the request failed schema validation (`path` names the field)
  'busy', // too many connections, or a refresh/apply already running
  'unavailable', // the daemon cannot do this now (e.g. degraded: no dataplane)
  'not_implemented', // no handler is plugged in for this request in this build
  'config_error', // reload_config: the new config is invalid (the old one stays in force)
  'not_found',
  'failed', // the handler ran and failed (message says why)
  'internal', // a bug: the handler threw unexpectedly
] as const;
export type BusErrorCode = (typeof ERROR_CODES)[number];

// ---------------------------------------------------------------------------------------------
// Field schemas

const id = z.union([z.number().finite(), z.string().max(200)]);
const nonEmpty = (max = 1000) => z.string().trim().min(1).max(max);

/** IPv4/IPv6 address or CIDR prefix (`100.64.0.1`, `100.64.0.0/24`, `2001:db8::/56`). */
export const prefixSchema = z.string().refine(
  (s) => {
    const slash = s.indexOf('/');
    const ip = slash < 0 ? s : s.slice(0, slash);
    const v = isIP(ip);
    if (v === 0) return false;
    if (slash < 0) return true;
    const len = s.slice(slash + 1);
    return /^\d{1,3}$/.test(len) && Number(len) <= (v === 4 ? 32 : 128);
  },
  { error: (iss) => `expected an IP address or CIDR prefix such as 100.64.0.0/24, got ${JSON.stringify(iss.input)}` },
);

export const severitySchema = z.enum(['info', 'warning', 'error']);

export const mappingInputSchema = z.strictObject({
  prefix: prefixSchema,
  /** CPU index (queue - 1). */
  cpu: z.int().min(0).max(1023),
  /** Download-direction HTB class major:minor; 0:0 = counted but not shaped (observe mode). */
  major: z.int().min(0).max(0xffff),
  minor: z.int().min(0).max(0xffff),
  circuitId: nonEmpty(),
  deviceId: z.string().max(1000).default(''),
}).refine((m) => (m.major === 0) === (m.minor === 0), { message: 'major and minor are both 0 (counted, not shaped) or both at least 1', path: ['major'] });
export type MappingInput = z.infer<typeof mappingInputSchema>;

const req = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) =>
  z.strictObject({ id, type: z.literal(type), ...shape });

// ---------------------------------------------------------------------------------------------
// Scheduler reports (lib/scheduler; lqosd keeps the latest of each in lib/scheduler/status.ts)

const count = () => z.int().min(0).max(100_000_000);
/** Most warnings an integration run summary carries, and their length (longer ones are cut). */
export const SUMMARY_MAX_WARNINGS = 50;
export const SUMMARY_MAX_WARNING_CHARS = 300;

/** Fields of an integration run summary (the file the integration writes to $LQOS_INTEGRATION_SUMMARY_FILE). */
export const integrationSummaryShape = {
  integration: nonEmpty(100),
  finishedAt: z.iso.datetime({ offset: true }),
  durationMs: z.int().min(0).max(7 * 86_400_000),
  circuits: z.strictObject({ total: count(), added: count(), removed: count(), changed: count() }),
  devices: z.strictObject({ total: count() }),
  warnings: z.array(z.string().max(SUMMARY_MAX_WARNING_CHARS)).max(SUMMARY_MAX_WARNINGS),
  /** Warnings left out (the scheduler keeps the first SUMMARY_MAX_WARNINGS). */
  warningsOmitted: count().optional(),
  /** `kept`: always_overwrite_network_json = false kept the operator's network.json. */
  networkJson: z.enum(['written', 'kept']),
};
export const integrationSummarySchema = z.strictObject(integrationSummaryShape);

/** One step of a scheduler cycle (start-up: 5 steps, scheduled refresh: 4, file change: 3). */
export const schedulerProgressSchema = req('scheduler_progress', {
  /** True while the step runs; false for the cycle's end (`ready`, `degraded`, `failed`). */
  active: z.boolean(),
  /** Machine key: `waiting_for_lqosd`, `integration`, `overrides`, `validate`, `apply`, `ready`, … */
  phase: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'lower-case letters, digits and _'),
  label: nonEmpty(200),
  step: z.int().min(0).max(20),
  steps: z.int().min(1).max(20),
  /** Default: completed steps / steps (a running step does not count yet). */
  percent: z.int().min(0).max(100).optional(),
}).refine((r) => r.step <= r.steps, { message: 'step must not be greater than steps', path: ['step'] });

// ---------------------------------------------------------------------------------------------
// top_circuits (lqtop): the busiest circuits with their plan, RTT, retransmits and drops

/** Most rows one top_circuits reply carries (more than any terminal shows). */
export const TOP_CIRCUITS_MAX = 1000;
/** total = down + up; rtt = the highest p50 RTT first (circuits without one last). */
export const TOP_CIRCUITS_SORTS = ['total', 'download', 'upload', 'rtt'] as const;
export type TopCircuitsSort = (typeof TOP_CIRCUITS_SORTS)[number];

/** One circuit of a top_circuits reply. Rates in bits/s, plan rates in Mbit/s. */
export interface TopCircuitRow {
  id: string;
  name: string;
  parentPath: string;
  downBps: number;
  upBps: number;
  planDownMbps: number;
  planUpMbps: number;
  utilDownPct: number;
  utilUpPct: number;
  /** p50 TCP RTT over flow tracking's window, ms: the customer side, else the Internet side; null: no samples or no flow tracking. */
  rttMs: number | null;
  /** TCP retransmits / TCP packets over flow tracking's window, both directions, %; null: no TCP packets seen. */
  retransmitPct: number | null;
  /** Leaf-qdisc drops per second over the last queue poll, both directions; null: no queue stats for this circuit yet. */
  dropsPerSecond: number | null;
}

/** The top_circuits reply. */
export interface TopCircuitsReply {
  /** ms since the epoch of the telemetry tick the rates are from (0 before the first). */
  at: number;
  sortBy: TopCircuitsSort;
  totals: { downBps: number; upBps: number; shapedDownBps: number; shapedUpBps: number };
  /** Circuits in the plan in force / with traffic in the last tick. */
  circuits: { shaped: number; active: number };
  /** Flow tracking runs (RTT and retransmits can be known). */
  flows: boolean;
  lqosd: { version: string; pid: number; uptimeSeconds: number; dataplane: string; degraded: string | null };
  rows: TopCircuitRow[];
  /** Why there are no rates (no dataplane attached), when that is so. */
  note?: string;
}

// ---------------------------------------------------------------------------------------------
// Requests

/** A file's name in messages: one line of printable text. */
const fileLabel = z
  .string()
  .min(1)
  .max(4096)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { message: 'a file label is one line of printable text' });

export const submitPlanSchema = req('submit_plan', {
  mode: z.enum(['full', 'incremental']),
  /** Inline inputs. The whole request must fit in 1 MiB; larger inputs go by path. */
  devicesCsv: z.string().optional(),
  networkJson: z.string().optional(),
  /** Or absolute paths that lqosd reads itself. */
  devicesPath: z.string().startsWith('/').optional(),
  networkPath: z.string().startsWith('/').optional(),
  /**
   * What messages call the files, when that is not their path: the effective copies of
   * lqos_overrides.json are named after the operator's files, whose line numbers they keep
   * (lib/shaping/effectiveInputs.ts).
   */
  devicesLabel: fileLabel.optional(),
  networkLabel: fileLabel.optional(),
  /** Do nothing (not even verify) when the plan equals the one in force. */
  updateonly: z.boolean().optional(),
  /** Return every warning, not only the first 20. */
  verbose: z.boolean().optional(),
  /** Apply even if more than [safety] max_removed_percent of the shaped circuits would go. */
  force: z.boolean().optional(),
  /**
   * `LibreQoS --planner-reset`: plan this job with fresh class ids and queues instead of the stored
   * planner state, which the job's state replaces only if its apply commits (lib/shaping/run.ts);
   * a refused, failed or dry-run job leaves it as it is. Other jobs are not affected.
   */
  plannerReset: z.boolean().optional(),
}).superRefine((r, ctx) => {
  if ((r.devicesCsv === undefined) === (r.devicesPath === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['devicesCsv'], message: 'give exactly one of devicesCsv or devicesPath' });
  }
  if ((r.networkJson === undefined) === (r.networkPath === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['networkJson'], message: 'give exactly one of networkJson or networkPath' });
  }
});

export const requestSchemas = [
  req('ping', {}),
  req('status', {}),
  req('refresh', { force: z.boolean().optional() }),
  submitPlanSchema,
  req('map_ip_add', { entries: z.array(mappingInputSchema).min(1).max(MAX_BATCH) }),
  req('map_ip_delete', { prefixes: z.array(prefixSchema).min(1).max(MAX_BATCH) }),
  req('map_ip_clear', {}),
  req('map_ip_list', {}),
  req('scheduler_heartbeat', { phase: nonEmpty(100), nextRun: z.string().max(100).optional() }),
  req('scheduler_success', { at: z.iso.datetime({ offset: true }).optional() }),
  req('scheduler_error', {
    message: nonEmpty(4000),
    integration: z.string().max(100).optional(),
    /** Full output of the failed step; lqosd keeps a preview (30 lines / 4,000 characters). */
    output: z.string().optional(),
    logFile: z.string().max(4096).optional(),
  }),
  schedulerProgressSchema,
  req('scheduler_summary', { summary: integrationSummarySchema }),
  req('scheduler_status', {}),
  req('urgent_submit', {
    source: nonEmpty(100),
    severity: severitySchema,
    code: nonEmpty(200),
    message: nonEmpty(100_000),
    context: z.unknown().optional(),
    dedupeKey: z.string().max(500).optional(),
  }),
  req('urgent_list', {}),
  req('urgent_ack', { issueId: nonEmpty(100) }),
  req('urgent_clear', { issueId: nonEmpty(100).optional() }),
  req('urgent_resolve', { key: nonEmpty(500) }),
  req('reload_config', {}),
  req('stats_hosts', {
    limit: z.int().min(1).max(1000).default(20),
    sortBy: z.enum(['download', 'upload', 'total']).default('total'),
  }),
  req('top_circuits', {
    limit: z.int().min(1).max(TOP_CIRCUITS_MAX).default(20),
    sortBy: z.enum(TOP_CIRCUITS_SORTS).default('total'),
  }),
] as const;

export const requestSchema = z.discriminatedUnion('type', requestSchemas);
export type BusRequest = z.infer<typeof requestSchema>;
export type RequestType = BusRequest['type'];
export type RequestOf<T extends RequestType> = Extract<BusRequest, { type: T }>;
/** What a client passes besides id and type (defaults may be omitted). */
export type PayloadOf<T extends RequestType> = Omit<z.input<Extract<(typeof requestSchemas)[number], z.ZodType<{ type: T }>>>, 'id' | 'type'>;

export const REQUEST_TYPES: readonly RequestType[] = requestSchemas.map((s) => s.shape.type.value);

// ---------------------------------------------------------------------------------------------
// Replies

export type RequestId = number | string | null;

export interface BusErrorBody {
  code: BusErrorCode;
  message: string;
  /** For `invalid`: the path of the offending field inside the request. */
  path?: (string | number)[];
}

export type BusReply = { id: RequestId; ok: true; result: unknown } | { id: RequestId; ok: false; error: BusErrorBody };

/** A failure a handler wants to report with a specific code (anything else thrown → `internal`). */
export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
    readonly path?: (string | number)[],
  ) {
    super(message);
    this.name = 'BusError';
  }
}

export function okReply(id: RequestId, result: unknown): BusReply {
  return { id, ok: true, result: result === undefined ? null : result };
}

export function errorReply(id: RequestId, code: BusErrorCode, message: string, path?: (string | number)[]): BusReply {
  return { id, ok: false, error: path ? { code, message, path } : { code, message } };
}

/** JSON text of a reply; bigints become decimal strings. */
export function encodeReply(r: BusReply): string {
  return JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n';
}

function pathText(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || '(request)';
}

export type DecodeResult = { ok: true; request: BusRequest } | { ok: false; reply: BusReply };

/** Parses and validates one request line (without the newline). Never throws. */
export function decodeRequest(line: string): DecodeResult {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    return { ok: false, reply: errorReply(null, 'bad_json', `request is not valid JSON: ${(e as Error).message}`) };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, reply: errorReply(null, 'invalid', 'a request must be a JSON object {"id": ..., "type": ...}', []) };
  }
  const obj = raw as Record<string, unknown>;
  const rid = id.safeParse(obj.id);
  const replyId: RequestId = rid.success ? rid.data : null;
  if (typeof obj.type !== 'string' || !(REQUEST_TYPES as readonly string[]).includes(obj.type)) {
    const shown = typeof obj.type === 'string' ? JSON.stringify(obj.type.slice(0, 100)) : 'missing';
    return { ok: false, reply: errorReply(replyId, 'unknown_type', `unknown request type ${shown}; known types: ${REQUEST_TYPES.join(', ')}`) };
  }
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const path = first.path.map((p) => (typeof p === 'symbol' ? String(p) : p)) as (string | number)[];
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problem(s))` : '';
    return { ok: false, reply: errorReply(replyId, 'invalid', `${pathText(path)}: ${first.message}${more}`, path) };
  }
  return { ok: true, request: parsed.data };
}
