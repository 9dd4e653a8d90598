/**
 * `npm run bench:overrides`: what lqos_overrides.json costs a shaping run (lib/overrides/apply.ts:
 * the effective ShapedDevices.csv edited in place in the operator's layout, network.json edited on the
 * node's lines), on the synthetic 100k-circuit dataset (bench/dataset.ts, ≈ 200k device rows).
 * Three cases, 5 rounds each, interleaved: one rate adjustment; an sqm override on the same rows in
 * the 13-column layout (adds the sqm column to the header and every row); 1,000 circuit adjustments
 * plus 100 persistent devices and 100 site speeds. Target: the 1,000-adjustment case at most 1 s (median), so a large overrides file adds
 * about a second to a 100k-circuit run, not minutes.
 */
import { generateDataset } from './dataset.ts';
import { csvRowsText } from '../lib/inputs/csvText.ts';
import { readCsvRecords } from '../lib/inputs/shapedDevices.ts';
import { applyOverrides } from '../lib/overrides/apply.ts';
import { parseOverridesText } from '../lib/overrides/load.ts';
import { fmtSpread, interleaved, machineLine, spread, Targets } from './stats.ts';

const ROUNDS = 5;

console.log(`lqos_overrides.json applied to the inputs: ${machineLine()}`);
const ds = generateDataset({ circuits: 100_000, seed: 5 });
const source = { devicesText: ds.shapedDevicesCsv, networkText: ds.networkJson };
// The same rows in the 13-column layout (no Parent Node ID, Anchor Node ID or sqm): an sqm override adds the column.
const drop = new Set([5, 6, 15]);
const legacy = { devicesText: csvRowsText(readCsvRecords(ds.shapedDevicesCsv).records.map((r) => r.fields.filter((_, i) => !drop.has(i)))), networkText: ds.networkJson };
const records = readCsvRecords(ds.shapedDevicesCsv).records.slice(1);
const circuitIds = [...new Set(records.map((r) => r.fields[0]!))];
const deviceIds = records.map((r) => r.fields[2]!);
const siteNames = [...ds.networkJson.matchAll(/"([^"]+)": \{/g)].map((m) => m[1]!).filter((n) => n !== 'children');
console.log(`dataset: ${circuitIds.length.toLocaleString('en')} circuits, ${records.length.toLocaleString('en')} device rows, ${(ds.shapedDevicesCsv.length / 1e6).toFixed(1)} MB of CSV, ${siteNames.length} nodes`);

const parse = (o: unknown) => parseOverridesText(JSON.stringify(o), 'lqos_overrides.json');
const pick = (k: number, of: readonly string[]) => of[Math.floor((k * of.length) / 1000) % of.length]!;
const cases = {
  one: parse({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: circuitIds[500]!, max_download_bandwidth: 77 }] }),
  sqm: parse({ circuit_adjustments: [{ type: 'device_adjust_sqm', device_id: deviceIds[9]!, sqm_override: 'fq_codel' }] }),
  many: parse({
    persistent_devices: Array.from({ length: 100 }, (_, k) => ({
      circuit_id: `static-${k}`, circuit_name: `Static ${k}`, device_id: `static-dev-${k}`, device_name: 'router', parent_node: siteNames[k % siteNames.length]!,
      mac: '', ipv4: [`198.18.${k >> 8}.${k & 255}`], ipv6: [], download_min_mbps: 1, upload_min_mbps: 1, download_max_mbps: 50, upload_max_mbps: 10, comment: '',
    })),
    circuit_adjustments: Array.from({ length: 1000 }, (_, k) => ({ type: 'circuit_adjust_speed', circuit_id: pick(k, circuitIds), max_download_bandwidth: 10 + (k % 90) })),
    network_adjustments: Array.from({ length: 100 }, (_, k) => ({ type: 'adjust_site_speed', site_name: siteNames[(k * 7) % siteNames.length]!, download_bandwidth_mbps: 900 })),
  }),
};

function time(o: (typeof cases)[keyof typeof cases], inputs = source): number {
  const t0 = performance.now();
  const e = applyOverrides(inputs, o);
  const ms = performance.now() - t0;
  if (!e.devicesLayoutKept) throw new Error('the effective copy lost the operator layout');
  return ms;
}

const r = await interleaved(ROUNDS, { one: () => time(cases.one), sqm: () => time(cases.sqm, legacy), many: () => time(cases.many) });
console.log(`one rate adjustment:                                ${fmtSpread(spread(r.one))}`);
console.log(`sqm override (column added to the header and every row): ${fmtSpread(spread(r.sqm))}`);
console.log(`1,000 adjustments + 100 persistent devices + 100 site speeds: ${fmtSpread(spread(r.many))}`);
const targets = new Targets();
targets.atMost('100k circuits, 1,000 adjustments + 100 devices + 100 sites: ≤ 1000 ms', r.many, 1000);
targets.report();
