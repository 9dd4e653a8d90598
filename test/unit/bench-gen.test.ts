// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The synthetic dataset generator used by the compile benchmark (bench/dataset.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { CSV_HEADER, generateDataset, ipv6Prefix, mulberry32 } from '../../bench/dataset.ts';
import { validateInputs } from '../../lib/inputs/validate.ts';

interface JsonNode {
  downloadBandwidthMbps: number;
  uploadBandwidthMbps: number;
  type?: string;
  children?: Record<string, JsonNode>;
}

type Row = Record<(typeof CSV_HEADER)[number], string>;

function rowsOf(csv: string): Row[] {
  return parse(csv, { columns: true, skip_empty_lines: true }) as Row[];
}

/** Every node of the tree with its parent, depth-first. */
function nodesOf(network: Record<string, JsonNode>): Array<{ name: string; node: JsonNode; parent?: JsonNode; depth: number }> {
  const out: Array<{ name: string; node: JsonNode; parent?: JsonNode; depth: number }> = [];
  const walk = (level: Record<string, JsonNode>, parent: JsonNode | undefined, depth: number) => {
    for (const [name, node] of Object.entries(level)) {
      out.push({ name, node, parent, depth });
      if (node.children) walk(node.children, node, depth + 1);
    }
  };
  walk(network, undefined, 1);
  return out;
}

describe('bench/dataset generateDataset', () => {
  const ds = generateDataset({ circuits: 200, seed: 42 });
  const rows = rowsOf(ds.shapedDevicesCsv);
  const network = JSON.parse(ds.networkJson) as Record<string, JsonNode>;
  const nodes = nodesOf(network);

  it('is deterministic for a seed and differs across seeds', () => {
    const again = generateDataset({ circuits: 200, seed: 42 });
    assert.equal(again.shapedDevicesCsv, ds.shapedDevicesCsv);
    assert.equal(again.networkJson, ds.networkJson);
    assert.deepEqual(again.stats, ds.stats);
    const other = generateDataset({ circuits: 200, seed: 43 });
    assert.notEqual(other.shapedDevicesCsv, ds.shapedDevicesCsv);
    const a = mulberry32(7);
    const b = mulberry32(7);
    for (let i = 0; i < 5; i++) assert.equal(a(), b());
  });

  it('writes the 16-column header and the requested number of circuits', () => {
    assert.equal(ds.shapedDevicesCsv.split('\n', 1)[0], CSV_HEADER.join(','));
    const circuits = new Set(rows.map((r) => r['Circuit ID']));
    assert.equal(circuits.size, 200);
    assert.equal(ds.stats.circuits, 200);
    assert.equal(rows.length, ds.stats.devices);
    // 1–3 devices per circuit.
    const perCircuit = new Map<string, number>();
    for (const r of rows) perCircuit.set(r['Circuit ID'], (perCircuit.get(r['Circuit ID']) ?? 0) + 1);
    for (const n of perCircuit.values()) assert.ok(n >= 1 && n <= 3);
    // Rows of a circuit are contiguous and agree on the circuit's fields.
    const first = new Map<string, Row>();
    let prev = '';
    const closed = new Set<string>();
    for (const r of rows) {
      const id = r['Circuit ID'];
      if (id !== prev) {
        assert.ok(!closed.has(id), `circuit ${id} rows are not contiguous`);
        if (prev) closed.add(prev);
        prev = id;
      }
      const f = first.get(id);
      if (!f) first.set(id, r);
      else for (const k of ['Circuit Name', 'Parent Node', 'Download Max Mbps', 'Upload Max Mbps', 'Download Min Mbps', 'Upload Min Mbps', 'sqm'] as const) assert.equal(r[k], f[k]);
    }
  });

  it('uses unique node names, device ids, MACs and addresses', () => {
    const names = nodes.map((n) => n.name);
    assert.equal(new Set(names).size, names.length);
    assert.ok(nodes.some((n) => n.node.type === 'ap'));
    const deviceIds = rows.map((r) => r['Device ID']);
    assert.equal(new Set(deviceIds).size, deviceIds.length);
    const macs = rows.map((r) => r.MAC);
    assert.equal(new Set(macs).size, macs.length);
    const v4 = rows.flatMap((r) => r.IPv4.split(',').filter(Boolean));
    assert.equal(new Set(v4).size, v4.length);
    assert.equal(v4.length, ds.stats.ipv4Addresses);
    for (const ip of v4) assert.match(ip, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
    const v6 = rows.map((r) => r.IPv6).filter(Boolean);
    assert.equal(new Set(v6).size, v6.length);
    assert.equal(v6.length, 200);
    assert.ok(rows.some((r) => r.IPv4.includes(',')), 'some devices carry two IPv4 addresses');
    assert.ok(ds.shapedDevicesCsv.includes('"'), 'cells with commas are quoted');
  });

  it('keeps every circuit within its AP, and every node within its parent', () => {
    const byName = new Map(nodes.map((n) => [n.name, n]));
    for (const r of rows) {
      const ap = byName.get(r['Parent Node']);
      assert.ok(ap, `parent ${r['Parent Node']} exists`);
      assert.equal(ap.node.type, 'ap');
      const down = Number(r['Download Max Mbps']);
      const up = Number(r['Upload Max Mbps']);
      assert.ok(down >= 25 && down <= 1000, `plan ${down}`);
      assert.ok(up * 5 >= down && up * 2 <= down, `upload ${up} for ${down}`);
      assert.ok(down <= ap.node.downloadBandwidthMbps, `${r['Circuit ID']} ${down} > AP ${ap.node.downloadBandwidthMbps}`);
      assert.ok(up <= ap.node.uploadBandwidthMbps, `${r['Circuit ID']} ${up} > AP ${ap.node.uploadBandwidthMbps}`);
      const minDown = Number(r['Download Min Mbps']);
      const minUp = Number(r['Upload Min Mbps']);
      assert.ok(minDown >= 1 && minDown <= Math.max(1, down * 0.1 + 0.5));
      assert.ok(minUp >= 1 && minUp <= Math.max(1, up * 0.1 + 0.5));
    }
    for (const { node, parent } of nodes) {
      assert.ok(node.downloadBandwidthMbps <= (parent?.downloadBandwidthMbps ?? 10000));
      assert.ok(node.uploadBandwidthMbps <= (parent?.uploadBandwidthMbps ?? 10000));
    }
    assert.ok(ds.stats.apOversubscription > 1, 'APs are oversubscribed');
    assert.ok(ds.stats.sqmOverrides > 0);
  });

  it('honours ipv6: false and devicesPerCircuit', () => {
    const d = generateDataset({ circuits: 50, seed: 1, ipv6: false, devicesPerCircuit: [2, 2] });
    const r = rowsOf(d.shapedDevicesCsv);
    assert.equal(r.length, 100);
    assert.ok(r.every((x) => x.IPv6 === ''));
    assert.equal(d.stats.ipv6Prefixes, 0);
    assert.equal(ipv6Prefix(1), '2001:db8:0:1::/64');
    assert.equal(ipv6Prefix(0x10000), '2001:db8:1::/64');
  });

  it('validates with zero errors', () => {
    const v = validateInputs({
      devicesText: ds.shapedDevicesCsv,
      devicesFile: 'ShapedDevices.csv',
      networkText: ds.networkJson,
      networkFile: 'network.json',
    });
    const errors = v.issues.filter((i) => i.severity === 'error');
    assert.deepEqual(errors, []);
    assert.equal(v.ok, true);
    assert.equal(v.inputs.circuits.length, 200);
    assert.equal(v.inputs.circuits.reduce((s, c) => s + c.devices.length, 0), ds.stats.devices);
  });

  it('CLI writes network.json and ShapedDevices.csv', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-gen-'));
    try {
      const root = fileURLToPath(new URL('../..', import.meta.url));
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/dataset.ts', '--circuits', '200', '--seed', '42', '--out', dir], {
        cwd: root,
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'), ds.shapedDevicesCsv);
      assert.equal(readFileSync(join(dir, 'network.json'), 'utf8'), ds.networkJson);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
