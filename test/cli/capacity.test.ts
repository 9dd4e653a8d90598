// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Issue 20 item 1, end to end: `LibreQoS --dry-run` on inputs with more distinct prefixes than the
 * dataplane's ip_to_class map holds (MAX_MAPPINGS) exits 3 ("planning failed / does not fit") with
 * a message naming the count, the capacity and what to do; the same inputs one prefix smaller pass.
 * (The real-run refusal before any kernel change is test/unit/applyCapacity.test.ts.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_MAPPINGS } from '../../dataplane/abi.ts';
import { makeWorkspace, runCli, type Workspace } from '../support/workspace.ts';

const workspaces: Workspace[] = [];
after(() => workspaces.forEach((w) => w.cleanup()));

const PER_CIRCUIT = 512;
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment,sqm';

/** `total` distinct IPv4 /32s (10.0.0.0/8 upward) over circuits of PER_CIRCUIT addresses each. */
function devicesCsv(total: number): string {
  const rows = [HEADER];
  for (let c = 0, n = 0; n < total; c++) {
    const ips: string[] = [];
    for (let k = 0; k < PER_CIRCUIT && n < total; k++, n++) ips.push(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`);
    rows.push(`c${c},Circuit ${c},d${c},Device ${c},,,,,"${ips.join(',')}",,1,1,100,20,,`);
  }
  return rows.join('\n') + '\n';
}

async function dryRun(total: number) {
  const w = makeWorkspace({ devices: devicesCsv(total), network: '{}' });
  workspaces.push(w);
  return runCli(['--config', w.config, '--dry-run']);
}

test('a plan above the mapping capacity: exit 3, the count, the capacity and what to do', async () => {
  const r = await dryRun(MAX_MAPPINGS + 1);
  assert.equal(r.code, 3, r.stderr.slice(-2000));
  const err = r.logs.find((l) => l.level === 50 && /IP mappings/.test(l.msg));
  assert.ok(err, r.stderr.slice(-2000));
  assert.match(err.msg, /^dry run: a real run would be refused: the plan has 524,289 IP mappings .* holds at most 524,288 .*1 too many/);
  assert.match(err.msg, /Split the network over more shapers/);
  assert.match(err.msg, /aggregate prefixes/);
});

test('exactly at capacity: the dry run passes', async () => {
  const r = await dryRun(MAX_MAPPINGS);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.equal(r.logs.filter((l) => l.level >= 50).length, 0);
});
