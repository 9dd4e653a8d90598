/**
 * Issue 19 item 4 on a real kernel: `LibreQoS --direct` in its own namespace (br0 over two 2-queue
 * veths, eth1 download / eth0 upload), its own bpffs pin root and run directory, with a `tc` first
 * in PATH that fails the Nth mutating `tc -batch` line (counted over the run; the lines before it run
 * for real, as tc -batch does, then `Command failed -:k`).
 *   1. P1 applied: exit 0; the kernel holds P1 (class ids from applied_plan.json).
 *   2. P2 (a rate change + a circuit added: incremental) with the incremental batch failing at
 *      line 2 and the full-rebuild fallback at its line 6: exit 4, and the kernel read back
 *      (`tc class show`, `tc -j qdisc show` on both interfaces) and the IP map (dataplane/maps.ts
 *      listMappings) are exactly what they were after step 1; applied_plan.json is P1 again.
 *   3. P2 with only the incremental batch failing: the fallback rebuild succeeds (exit 0, warned),
 *      and its kernel state equals P2 applied from scratch after --clearrules.
 * Root; run under `flock /tmp/lqos-kernel.lock`. Namespace lqrb-<random>, bpffs under /run/lqos-rollback-<random>,
 * both removed in after().
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { deserializePlan } from '../../lib/apply/appliedPlan.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { formatClassId } from '../../lib/util/classId.ts';
import { repoRoot } from '../support/paths.ts';
import { workspaceFactory, type Workspace } from '../support/workspace.ts';
import { IS_ROOT } from './tmpfs.ts';

const skip = !IS_ROOT && 'needs root (network namespace, tc, bpffs)';
const ID = randomBytes(3).toString('hex');
const NS = `lqrb-${ID}`;
const BPFFS = `/run/lqos-rollback-${ID}`;
const PIN_ROOT = join(BPFFS, 'lqos');
const DEVS = ['eth0', 'eth1'];
const REAL_TC = '/usr/sbin/tc';
const ip = (...args: string[]) => execa('ip', ['-n', NS, ...args]);
const ws = workspaceFactory();

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const NETWORK = JSON.stringify({
  Site_A: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 200, children: { AP_1: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100 } } },
  Site_B: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 100 },
});
const P1_ROWS = ['c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,20,5,', 'c2,C2,d2,D2,Site_B,,100.64.0.2,2001:db8::/56,1,1,30,6,', 'c3,C3,d3,D3,AP_1,,100.64.0.3,,1,1,40,8,'];
/** c1 20 → 25 Mbit/s down, c4 added under Site_B: 5 incremental tc lines. */
const P2_ROWS = ['c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,25,5,', P1_ROWS[1]!, P1_ROWS[2]!, 'c4,C4,d4,D4,Site_B,,100.64.0.4,,1,1,50,10,'];
const devices = (rows: string[]) => [HEADER, ...rows].join('\n') + '\n';

const conf = (dir: string) =>
  `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\n[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n` +
  `[queues]\noverride_available_queues = 2\ndry_run = false\ndefault_sqm = "cake diffserv4"\n[tuning]\nset_cpu_governor_performance = false\nstop_irq_balance = false\n`;

/**
 * A `tc` that passes everything to the real one, except: with $LQOS_TC_FAIL_AT (comma-separated
 * numbers) it counts the mutating lines of `-batch` runs in $LQOS_TC_COUNT and fails the batch at
 * each listed one — running the lines before it for real — as tc reports a failing line.
 */
function failingTc(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'tc'),
    `#!/bin/sh
if [ "$1" = "-batch" ] && [ -n "$LQOS_TC_FAIL_AT" ]; then
  tmp=$(mktemp -p '${dir}')
  cat > "$tmp"
  n=$(cat "$LQOS_TC_COUNT" 2>/dev/null || echo 0)
  k=0; cut=0
  while IFS= read -r line; do
    k=$((k + 1))
    case "$line" in *" show "*) continue ;; esac
    n=$((n + 1))
    for f in $(echo "$LQOS_TC_FAIL_AT" | tr , ' '); do [ "$n" = "$f" ] && cut=$k; done
    [ $cut -gt 0 ] && break
  done < "$tmp"
  echo "$n" > "$LQOS_TC_COUNT"
  if [ $cut -gt 0 ]; then
    head -n $((cut - 1)) "$tmp" | ${REAL_TC} -batch -
    rc=$?
    if [ $rc -ne 0 ]; then rm -f "$tmp"; exit $rc; fi
    echo "$n $(sed -n "\${cut}p" "$tmp")" >> "$LQOS_TC_COUNT.failed"
    rm -f "$tmp"
    echo "RTNETLINK answers: Invalid argument (failure injected by the test's tc)" >&2
    echo "Command failed -:$cut" >&2
    exit 1
  fi
  ${REAL_TC} -batch - < "$tmp"
  rc=$?
  rm -f "$tmp"
  exit $rc
fi
exec ${REAL_TC} "$@"
`,
  );
  chmodSync(join(bin, 'tc'), 0o755);
  return bin;
}

before(async () => {
  if (skip) return;
  await execa('ip', ['netns', 'add', NS]);
  await ip('link', 'add', 'br0', 'type', 'bridge');
  const q = ['numtxqueues', '2', 'numrxqueues', '2'];
  for (const [a, b] of [['eth0', 'p0'], ['eth1', 'p1']]) await ip('link', 'add', a!, ...q, 'type', 'veth', 'peer', 'name', b!, ...q);
  for (const dev of DEVS) await ip('link', 'set', dev, 'master', 'br0');
  for (const dev of ['br0', 'eth0', 'eth1', 'p0', 'p1']) await ip('link', 'set', dev, 'up');
  mkdirSync(BPFFS, { recursive: true });
  await execa('mount', ['-t', 'bpf', 'bpf', BPFFS]);
});

after(async () => {
  if (skip) return;
  await execa('ip', ['netns', 'del', NS], { reject: false });
  await execa('umount', [BPFFS], { reject: false });
  rmSync(BPFFS, { recursive: true, force: true });
});

interface Run {
  code: number;
  logs: { level: number; msg: string }[];
  stderr: string;
}

/** `LibreQoS --direct` (or other args) in the namespace; `failAt`: mutating tc lines to fail. */
async function libreqos(w: Workspace, bin: string, args: string[], failAt?: number[]): Promise<Run> {
  const count = join(w.dir, 'tc-count');
  rmSync(count, { force: true });
  rmSync(`${count}.failed`, { force: true });
  const r = await execa('ip', ['netns', 'exec', NS, join(repoRoot, 'LibreQoS'), '--config', w.config, ...args], {
    reject: false,
    env: {
      LQOS_LOG_FORMAT: 'json',
      LQOS_RUN_DIR: w.runDir,
      LQOS_BPF_PIN_ROOT: PIN_ROOT,
      PATH: `${bin}:${process.env.PATH}`,
      ...(failAt ? { LQOS_TC_FAIL_AT: failAt.join(','), LQOS_TC_COUNT: count } : {}),
    },
    cwd: repoRoot,
  });
  const stderr = String(r.stderr);
  const logs = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
  return { code: r.exitCode ?? -1, logs, stderr };
}

/** What the kernel and the dataplane hold: HTB classes (text: no JSON for HTB in iproute2 6.1), qdiscs (JSON), IP map. */
async function readBack(): Promise<{ classes: Record<string, string[]>; qdiscs: Record<string, unknown[]>; map: string[] }> {
  const classes: Record<string, string[]> = {};
  const qdiscs: Record<string, unknown[]> = {};
  for (const dev of DEVS) {
    classes[dev] = String((await execa(REAL_TC, ['-n', NS, 'class', 'show', 'dev', dev])).stdout).split('\n').filter(Boolean).sort();
    // Configuration only: HTB's direct_packets_stat counts frames (IPv6 ND/MLD from the namespace's
    // own links go through the direct queue), so it may differ between two equal trees.
    qdiscs[dev] = (JSON.parse(String((await execa(REAL_TC, ['-n', NS, '-j', 'qdisc', 'show', 'dev', dev])).stdout)) as { handle: string; options?: Record<string, unknown> }[])
      .map((q) => (q.options && 'direct_packets_stat' in q.options ? { ...q, options: { ...q.options, direct_packets_stat: '(a counter)' } } : q))
      .sort((a, b) => a.handle.localeCompare(b.handle));
  }
  const { listMappings } = await import('../../dataplane/maps.ts');
  const map = (await listMappings({ pinRoot: PIN_ROOT })).map((m) => `${m.prefix} cpu ${m.cpu} ${m.major}:${m.minor} ${m.circuitHash}`).sort();
  return { classes, qdiscs, map };
}

const appliedPlan = (w: Workspace) => deserializePlan(readFileSync(join(w.stateDir, 'shaping', 'applied_plan.json'), 'utf8'))!;
const msgs = (r: Run, level: number) => r.logs.filter((l) => l.level === level).map((l) => l.msg);

test('a failed apply (incremental, then its full-rebuild fallback) exits 4 and leaves the kernel and IP map exactly as P1 left them; with only the incremental batch failing, the fallback applies P2', { skip }, async () => {
  const w = ws({ prefix: 'lqrb-', runDir: true, conf, devices: devices(P1_ROWS), network: NETWORK });
  const bin = failingTc(w.dir);

  const first = await libreqos(w, bin, ['--direct']);
  assert.equal(first.code, EXIT.ok, first.stderr.slice(-3000));
  const p1 = appliedPlan(w);
  const s1 = await readBack();
  // P1 is in the kernel: every planned class on both sides, and the plan's mappings in the map.
  for (const dev of DEVS) {
    const ids = new Set(s1.classes[dev]!.filter((l) => l.startsWith('class htb ')).map((l) => l.split(' ')[2]));
    for (const x of [...p1.nodes, ...p1.circuits]) assert.ok(ids.has(formatClassId(x.queue, x.minor)), `${dev}: class ${formatClassId(x.queue, x.minor)} of P1 in the kernel`);
    assert.equal(ids.size, p1.nodes.length + p1.circuits.length + 2 * p1.queues, `${dev}: only P1's classes`);
  }
  assert.deepEqual(s1.map.map((l) => l.split(' ')[0]).sort(), p1.mappings.map((m) => m.prefix).sort());

  // 2. P2: the incremental batch fails at line 2; the fallback rebuild at its line 6 (2 + 6 = 8).
  w.write('ShapedDevices.csv', devices(P2_ROWS));
  const failed = await libreqos(w, bin, ['--direct'], [2, 8]);
  const injected = readFileSync(join(w.dir, 'tc-count.failed'), 'utf8').trim().split('\n');
  assert.equal(injected.length, 2, `both injected failures were hit: ${injected.join(' | ')}`);
  assert.equal(failed.code, EXIT.apply, `exit 4 after a failed apply; log:\n${failed.stderr.slice(-3000)}`);
  assert.ok(msgs(failed, 40).some((m) => /^incremental apply failed \(tc failed at batch line 2: class add dev eth1 /.test(m)), msgs(failed, 40).join('\n'));
  assert.ok(msgs(failed, 50).some((m) => /^applying failed: tc failed at batch line 6: /.test(m)), msgs(failed, 50).join('\n'));
  const s2 = await readBack();
  assert.deepEqual(s2.classes, s1.classes, 'after exit 4 the HTB classes (ids, parents, rates) must be P1\'s again: the rollback did not restore the last applied tree');
  assert.deepEqual(s2.qdiscs, s1.qdiscs, 'after exit 4 the qdiscs (root mq, HTB per queue, leaf cake handles and options) must be P1\'s again');
  assert.deepEqual(s2.map, s1.map, 'after exit 4 the IP map must be P1\'s again');
  assert.ok(msgs(failed, 40).some((m) => /^restored the last applied shaping/.test(m)), 'the restore is reported');
  assert.deepEqual(appliedPlan(w), p1, 'applied_plan.json is P1 again');

  // 3. P2 with only the incremental batch failing: the fallback rebuild succeeds.
  const fellBack = await libreqos(w, bin, ['--direct'], [2]);
  assert.equal(fellBack.code, EXIT.ok, fellBack.stderr.slice(-3000));
  assert.ok(msgs(fellBack, 40).some((m) => /^incremental apply failed \(tc failed at batch line 2: .*\); rebuilding the whole tree$/.test(m)), msgs(fellBack, 40).join('\n'));
  const s3 = await readBack();
  assert.notDeepEqual(s3.classes, s1.classes, 'P2 differs from P1 in the kernel');
  const p2 = appliedPlan(w);
  assert.deepEqual(p2.circuits.map((c) => c.id).sort(), ['c1', 'c2', 'c3', 'c4']);

  // The reference: P2 applied from scratch.
  assert.equal((await libreqos(w, bin, ['--clearrules'])).code, EXIT.ok);
  const fresh = await libreqos(w, bin, ['--direct']);
  assert.equal(fresh.code, EXIT.ok, fresh.stderr.slice(-3000));
  assert.ok(fresh.logs.some((l) => /^applied \(full\)/.test(l.msg)), 'the reference run is a full apply');
  const s4 = await readBack();
  assert.deepEqual(s3.classes, s4.classes, 'after the fallback the HTB classes equal P2 applied from scratch');
  assert.deepEqual(s3.qdiscs, s4.qdiscs, 'after the fallback the qdiscs equal P2 applied from scratch');
  assert.deepEqual(s3.map, s4.map, 'after the fallback the IP map equals P2 applied from scratch');
});
