// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `./lqtop` against a real lqosd started in this process (dry run, no kernel): the `top_circuits`
 * request is wired from telemetry through lib/daemon/services.ts and busHandlers.ts — lqosd's own
 * version, pid and dataplane state, the circuit count (none in force in a dry run), the note that without a dataplane there
 * are no rates; with telemetry off (LQOS_TELEMETRY=0) lqtop says why and exits 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TopCircuitsReply } from '../../lib/bus/protocol.ts';
import { loConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { repoRoot } from '../support/paths.ts';
import { workspaceFactory } from '../support/workspace.ts';

const newWorkspace = workspaceFactory();
const lqtop = async (args: string[], busPath: string) => {
  const r = await execa(join(repoRoot, 'lqtop'), args, { reject: false, env: { LQOS_BUS_PATH: busPath }, stdin: 'ignore' });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
};

async function withDaemon(env: Record<string, string>, fn: (busPath: string, d: Awaited<ReturnType<typeof startTestDaemon>>) => Promise<void>) {
  const w = newWorkspace({ prefix: 'lqtop-', conf: loConfig, runDir: true });
  copyFileSync(join(repoRoot, 'conf/example/ShapedDevices.csv'), join(w.dir, 'ShapedDevices.csv'));
  copyFileSync(join(repoRoot, 'conf/example/network.json'), join(w.dir, 'network.json'));
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const d = await startTestDaemon(w);
  try {
    await fn(w.busPath, d);
  } finally {
    await d.stop();
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

test('lqtop --json / --once against a dry-run lqosd: its state, the plan, no rates without a dataplane', async () => {
  await withDaemon({}, async (busPath, d) => {
    // A dry run applies nothing: no plan in force (the lab test sees its 5 circuits shaped).
    assert.equal(d.context.appliedPlan(), undefined);
    const circuits = 0;
    const r = await lqtop(['--json', '--sort', 'rtt', '--limit', '7'], busPath);
    assert.equal(r.code, 0, r.stderr);
    const reply = JSON.parse(r.stdout) as TopCircuitsReply;
    assert.deepEqual(reply.lqosd, { version: d.context.version, pid: process.pid, uptimeSeconds: reply.lqosd.uptimeSeconds, dataplane: 'dry_run', degraded: null });
    assert.deepEqual([reply.sortBy, reply.circuits, reply.flows, reply.rows, reply.note], ['rtt', { shaped: circuits, active: 0 }, false, [], 'no dataplane attached (dry run or degraded): no circuit rates']);
    const once = await lqtop(['--once'], busPath);
    assert.equal(once.code, 0, once.stderr);
    const lines = once.stdout.split('\n');
    assert.match(lines[0]!, new RegExp(`\\(dry run, up \\S+\\)  ${circuits} circuits shaped, 0 active$`));
    assert.equal(lines[2], 'no dataplane attached (dry run or degraded): no circuit rates');
    assert.equal(lines[4], 'no circuit has traffic');
  });
});

test('telemetry off in lqosd: lqtop says so and exits 1', async () => {
  await withDaemon({ LQOS_TELEMETRY: '0' }, async (busPath) => {
    const r = await lqtop(['--once'], busPath);
    assert.deepEqual([r.code, r.stderr, r.stdout], [1, 'lqtop: lqosd refused top_circuits: telemetry is off in this lqosd (LQOS_TELEMETRY=0): no circuit rates', '']);
  });
});
