/**
 * Unknown IPs: addresses with traffic that no circuit maps (a sample, see lib/telemetry/unmapped.ts),
 * as a table and as CSV (upstream's totals, or ShapedDevices.csv rows with a chosen plan and parent).
 */
import type { FastifyInstance } from 'fastify';
import { UNKNOWN_IPS_WINDOW_SECONDS, type UnknownIpsTable } from '../../api/telemetry.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import { shownPlan } from '../payloads.ts';
import { unknownShapedRowsCsv, unknownTotalsCsv } from '../unknownIpsCsv.ts';

const MAX_MBPS = 1_000_000;
/** A rate in Mbps as the query carries it (the server does not coerce types). */
const MBPS = { type: 'string', pattern: '^[0-9]{1,7}(\\.[0-9]{1,3})?$' };
const csvQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { format: { type: 'string', enum: ['totals', 'shaped'] }, parent: { type: 'string', maxLength: 256 }, down: MBPS, up: MBPS },
};
interface CsvQuery {
  format?: 'totals' | 'shaped';
  parent?: string;
  down?: string;
  up?: string;
}

/** The plan rate of a query parameter: a positive number of Mbps up to 1 Tbps, else undefined. */
function mbps(v: string | undefined): number | undefined {
  const n = v === undefined ? Number.NaN : Number(v);
  return n > 0 && n <= MAX_MBPS ? n : undefined;
}

export async function unknownIpsRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;
  const readOnly = { access: 'read_only' as const };
  const table = (): UnknownIpsTable => ctx.unknownIps?.() ?? { at: Date.now(), available: false, windowSeconds: UNKNOWN_IPS_WINDOW_SECONDS, rows: [], summary: null };

  app.get('/api/unknown-ips', { config: readOnly }, async (): Promise<UnknownIpsTable> => table());

  app.get<{ Querystring: CsvQuery }>('/api/unknown-ips.csv', { config: readOnly, schema: { querystring: csvQuery } }, async (req, reply) => {
    const q = req.query;
    let body: string;
    if (q.format === 'shaped') {
      const down = mbps(q.down);
      const up = mbps(q.up);
      if (down === undefined || up === undefined) throw new HttpError(400, 'bad_request', `ShapedDevices rows need the plan: give down and up (Mbps, above 0, at most ${MAX_MBPS})`);
      const parent = (q.parent ?? '').trim();
      const { plan } = shownPlan(ctx);
      if (parent && !plan?.nodes.some((n) => n.name === parent)) {
        throw new HttpError(400, 'unknown_parent', `parent node "${parent}" is not in the applied network.json: pick one of its nodes, or none for a flat network`);
      }
      body = unknownShapedRowsCsv(table().rows, { downMbps: down, upMbps: up, parent, now: Date.now() });
    } else body = unknownTotalsCsv(table().rows);
    const name = q.format === 'shaped' ? 'unknown-ips-shaped-devices.csv' : 'unknown-ips.csv';
    return reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(body);
  });
}
