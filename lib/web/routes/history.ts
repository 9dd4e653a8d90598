/**
 * The History page's API: `GET /api/history?scope=network|site|circuit&id=…&range=1h|24h|7d|30d`
 * (or `from`/`to`, unix seconds) → lqosd's per-minute history (lib/telemetry/history.ts) in at most
 * ~600 buckets, aggregated in SQL (minute rows for an hour, averages and maxima of buckets beyond).
 * A range that reaches the current minute flushes the minute in progress first (lqosd's source does so at most every 5 s),
 * so the newest point covers up to the last few seconds. No scope: the whole network. Any logged-in user; 404 for a site or circuit that is neither in the
 * plan in force nor in the store.
 */
import type { FastifyInstance } from 'fastify';
import { HISTORY_RANGES, type HistoryRange, type HistoryResponse, type HistoryScope } from '../../api/history.ts';
import type { ShapingPlan } from '../../model.ts';
import { historyStep } from '../../telemetry/history.ts';
import type { HistorySource } from '../context.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import { shownPlan } from '../payloads.ts';

/** The query as it arrives: strings (the server does not coerce query types). */
interface HistoryQuerystring {
  scope?: HistoryScope;
  id?: string;
  range?: HistoryRange;
  from?: string;
  to?: string;
}

/** The query with its defaults (scope: the network) and from/to as numbers. */
interface HistoryQuery {
  scope: HistoryScope;
  id?: string;
  range?: HistoryRange;
  from?: number;
  to?: number;
}

const UNIX_SECONDS = { type: 'string', pattern: '^[0-9]{1,11}$' };
const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    scope: { type: 'string', enum: ['network', 'site', 'circuit'] },
    id: { type: 'string', minLength: 1, maxLength: 1024 },
    range: { type: 'string', enum: Object.keys(HISTORY_RANGES) },
    from: UNIX_SECONDS,
    to: UNIX_SECONDS,
  },
};

function parseQuery(q: HistoryQuerystring): HistoryQuery {
  return {
    scope: q.scope ?? 'network',
    ...(q.id !== undefined ? { id: q.id } : {}),
    ...(q.range !== undefined ? { range: q.range } : {}),
    ...(q.from !== undefined ? { from: Number(q.from) } : {}),
    ...(q.to !== undefined ? { to: Number(q.to) } : {}),
  };
}

/** Longest span a from/to query may ask for (the longest retention we accept is 3650 days). */
const MAX_SPAN_S = 3650 * 86_400;

/** The window of a query: [from, to) in unix seconds and the bucket size, buckets aligned to it. Pure. */
export function historyWindow(q: Pick<HistoryQuery, 'range' | 'from' | 'to'>, nowS: number): { from: number; to: number; step: number } {
  let from: number;
  let to: number;
  if (q.from !== undefined || q.to !== undefined) {
    if (q.range !== undefined) throw new HttpError(400, 'bad_request', 'give either range or from/to, not both');
    if (q.from === undefined || q.to === undefined) throw new HttpError(400, 'bad_request', 'from and to go together (unix seconds)');
    if (q.to <= q.from) throw new HttpError(400, 'bad_request', `to (${q.to}) must be after from (${q.from})`);
    if (q.to - q.from > MAX_SPAN_S) throw new HttpError(400, 'bad_request', 'from/to spans more than 3650 days');
    ({ from, to } = q as { from: number; to: number });
  } else {
    // Up to the end of the minute in progress (its row is flushed on demand).
    to = Math.floor(nowS / 60) * 60 + 60;
    from = to - HISTORY_RANGES[q.range ?? '1h'];
  }
  const step = historyStep(to - from);
  return { from: Math.floor(from / step) * step, to, step };
}

/** The display name of a site or circuit in the plan in force, or undefined when it is not in it. */
function planName(plan: ShapingPlan | undefined, scope: 'site' | 'circuit', id: string): string | undefined {
  if (scope === 'circuit') return plan?.circuits.find((c) => c.id === id)?.name;
  return plan?.nodes.find((n) => n.path === id)?.name;
}

/** The subject of a query: its name; 404 when the plan and the store both do not know it. */
function subject(q: HistoryQuery, plan: ShapingPlan | undefined, source: HistorySource | undefined): { id: string; name: string } {
  if (q.scope === 'network') return { id: '', name: 'Network' };
  const id = q.id;
  if (!id) throw new HttpError(400, 'bad_request', `scope=${q.scope} needs an id (${q.scope === 'site' ? 'the site path, e.g. Region/Tower' : 'the Circuit ID'})`);
  const name = planName(plan, q.scope, id);
  if (name !== undefined) return { id, name };
  if (source?.store.has(q.scope === 'site' ? 'node' : 'circuit', id)) return { id, name: q.scope === 'site' ? id.split('/').at(-1)! : id };
  throw new HttpError(404, 'not_found', `no ${q.scope} ${JSON.stringify(id)} in the network in force nor in the history`);
}

export async function historyRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;
  app.get<{ Querystring: HistoryQuerystring }>('/api/history', { config: { access: 'read_only' }, schema: { querystring } }, async (req): Promise<HistoryResponse> => {
    const q = parseQuery(req.query);
    const nowS = Math.floor(Date.now() / 1000);
    const w = historyWindow(q, nowS);
    const source = ctx.history?.();
    const who = subject(q, shownPlan(ctx).plan, source);
    const base = { scope: q.scope, ...who, ...w };
    if (!source) return { ...base, points: [], retentionDays: 0, available: false };
    if (w.to > Math.floor(nowS / 60) * 60) source.flush();
    const { store } = source;
    const scope = q.scope === 'network' ? 'total' : q.scope === 'site' ? 'node' : 'circuit';
    const points = store.query({ scope, id: who.id || undefined, from: w.from, to: w.to, step: w.step });
    return { ...base, points, retentionDays: q.scope === 'circuit' ? store.circuitRetentionDays : store.retentionDays, available: true };
  });
}
