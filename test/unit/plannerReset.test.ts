// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * --planner-reset in the shaping run and on the bus, and waiting while lqosd is busy:
 *  - runShaping with `plannerReset` (what `LibreQoS --direct`, dry runs and lqosd use), applying to a
 *    simulated tc (test/support/simKernel.ts): a successful apply saves fresh ids; a failed apply
 *    (exit 4), a held kernel lock (exit 5) and a dry run leave planner_state.json byte for byte;
 *  - the bus flag that carries it to lqosd (`submit_plan` `plannerReset`, lib/bus/protocol.ts):
 *    optional, and a boolean or the request is refused; a field lqosd does not know is refused as
 *    `invalid` naming it (what LibreQoS recognises as an lqosd older than the flag);
 *  - `LibreQoS --clearrules --planner-reset` (runLibreQoS, its kernel clear and kernel-lock wait
 *    replaced: lib/cli/libreqos.ts LibreQoSKernelSeams): the planner state is forgotten only once
 *    the clear succeeded; a held kernel lock (exit 5), a failed clear and a dry run keep it;
 *  - retryWhileBusy (lib/shaping/busyRetry.ts): retries `busy` only, for a bounded time.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BusError, decodeRequest } from '../../lib/bus/protocol.ts';
import { runLibreQoS, type LibreQoSKernelSeams, type LibreQoSOptions } from '../../lib/cli/libreqos.ts';
import { statePaths } from '../../lib/config/paths.ts';
import { MemoryMappingSink } from '../../lib/apply/mappingSink.ts';
import { retryWhileBusy } from '../../lib/shaping/busyRetry.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { kernelLockPath, LockHeldError } from '../../lib/shaping/lock.ts';
import { loConfig } from '../support/configs.ts';
import { capturingLogger } from '../support/log.ts';
import { SimKernel, runShapingOnSim } from '../support/simKernel.ts';
import { tempDir } from '../support/workspace.ts';

const dir = tempDir('lq-reset-');
after(() => rmSync(dir, { recursive: true, force: true }));

const DEVS = ['eth0', 'eth1'];
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const DEVICES = [HEADER, 'c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,20,5,', 'c2,C2,d2,D2,Site_B,,100.64.0.2,,1,1,30,6,', 'c3,C3,d3,D3,AP_1,,100.64.0.3,,1,1,40,8,'].join('\n') + '\n';
const NET = JSON.stringify({
  Site_A: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 200, children: { AP_1: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100 } } },
  Site_B: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 100 },
});
/** A class minor no fresh plan of these inputs gives c1. */
const OLD_MINOR = 0x77;

type Paths = ReturnType<typeof statePaths>;
interface RunOpts {
  dryRun?: boolean;
  plannerReset?: boolean;
  lockKernel?: () => Promise<{ release(): void }>;
}

/** runShaping on the simulated kernel (its `tc` first in PATH). */
function run(k: SimKernel, paths: Paths, o: RunOpts = {}) {
  return runShapingOnSim(k, {
    inputs: { devicesFile: 'ShapedDevices.csv', networkFile: 'network.json', devicesText: DEVICES, networkText: NET },
    paths,
    dryRun: o.dryRun,
    sink: async () => new MemoryMappingSink(),
    plannerReset: o.plannerReset,
    lockKernel: o.lockKernel,
  });
}

const minorOfC1 = (paths: Paths) => (JSON.parse(readFileSync(paths.plannerState, 'utf8')) as { circuits: Record<string, { minor: number }> }).circuits.c1!.minor;

/**
 * A state directory whose applied plan and planner state come from real applies, c1 at OLD_MINOR
 * in both (the stored minor changed, then applied); `body` gets the kernel, the paths and the
 * state's bytes.
 */
async function seeded(name: string, body: (k: SimKernel, paths: Paths, before: string) => Promise<void>) {
  const k = new SimKernel(DEVS);
  await k.start(join(dir, name));
  try {
    const paths = statePaths(join(dir, name, 'state'));
    const first = await run(k, paths);
    assert.equal(first.code, EXIT.ok);
    const st = JSON.parse(readFileSync(paths.plannerState, 'utf8'));
    st.circuits.c1.minor = OLD_MINOR;
    writeFileSync(paths.plannerState, JSON.stringify(st));
    // Applied with the stored id: the tree in force has c1 at OLD_MINOR (a reset then changes it).
    const second = await run(k, paths);
    assert.equal(second.code, EXIT.ok);
    assert.equal(second.plan!.circuits.find((c) => c.id === 'c1')!.minor, OLD_MINOR);
    await body(k, paths, readFileSync(paths.plannerState, 'utf8'));
  } finally {
    await k.stop();
  }
}

test('runShaping without plannerReset keeps the stored ids (the sticky behaviour the reset overrides)', async () => {
  await seeded('sticky', async (k, paths) => {
    const r = await run(k, paths);
    assert.equal(r.code, EXIT.ok);
    assert.equal(minorOfC1(paths), OLD_MINOR);
    assert.equal(r.plan!.circuits.find((c) => c.id === 'c1')!.minor, OLD_MINOR);
  });
});

test('runShaping with plannerReset, applied: the fresh ids are applied and saved', async () => {
  await seeded('applied', async (k, paths, before) => {
    const r = await run(k, paths, { plannerReset: true });
    assert.equal(r.code, EXIT.ok);
    assert.ok(r.records.some((x) => x.code === 'planner-reset' && /it is replaced only if this run applies its plan/.test(x.msg)));
    assert.notEqual(readFileSync(paths.plannerState, 'utf8'), before);
    assert.notEqual(minorOfC1(paths), OLD_MINOR);
    assert.equal(minorOfC1(paths), r.plan!.circuits.find((c) => c.id === 'c1')!.minor, 'the state saved is the applied plan\'s');
  });
});

test('runShaping with plannerReset whose apply fails: exit 4, planner_state.json byte for byte', async () => {
  await seeded('failed', async (k, paths, before) => {
    // The incremental batch fails at its first line, then the full rebuild it falls back to.
    k.failAt = new Set([k.mutations + 1, k.mutations + 2]);
    const r = await run(k, paths, { plannerReset: true });
    assert.equal(r.code, EXIT.apply);
    assert.equal(readFileSync(paths.plannerState, 'utf8'), before);
  });
});

test('runShaping with plannerReset while the kernel lock is held: exit 5, planner_state.json byte for byte', async () => {
  await seeded('locked', async (k, paths, before) => {
    const r = await run(k, paths, { plannerReset: true, lockKernel: async () => Promise.reject(new LockHeldError('/run/lqos/kernel.lock', 1)) });
    assert.equal(r.code, EXIT.locked);
    assert.equal(readFileSync(paths.plannerState, 'utf8'), before);
  });
});

test('runShaping with plannerReset in a dry run: fresh ids planned and shown, planner_state.json byte for byte', async () => {
  await seeded('dry', async (k, paths, before) => {
    const batches = k.batches.length;
    const r = await run(k, paths, { plannerReset: true, dryRun: true });
    assert.equal(r.code, EXIT.ok);
    assert.notEqual(r.plan!.circuits.find((c) => c.id === 'c1')!.minor, OLD_MINOR, 'planned as if reset');
    assert.notEqual(r.dryRun?.wouldDo, 'none', 'a real run would change the tree');
    assert.equal(readFileSync(paths.plannerState, 'utf8'), before);
    assert.equal(k.batches.length, batches, 'no tc');
  });
});

test('bus submit_plan: plannerReset is optional and must be a boolean', () => {
  const base = { id: 1, type: 'submit_plan', mode: 'incremental', devicesPath: '/x/ShapedDevices.csv', networkPath: '/x/network.json' };
  const without = decodeRequest(JSON.stringify(base));
  assert.ok(without.ok, 'an older client without the field');
  assert.equal((without.request as { plannerReset?: boolean }).plannerReset, undefined);
  for (const v of [true, false]) {
    const r = decodeRequest(JSON.stringify({ ...base, plannerReset: v }));
    assert.ok(r.ok, `plannerReset: ${v}`);
    assert.equal((r.request as { plannerReset?: boolean }).plannerReset, v);
  }
  for (const v of ['true', 1, null, {}]) {
    const r = decodeRequest(JSON.stringify({ ...base, plannerReset: v }));
    assert.ok(!r.ok, `plannerReset: ${JSON.stringify(v)} is refused`);
    const reply = r.reply as { ok: false; error: { code: string; path?: unknown[]; message: string } };
    assert.equal(reply.error.code, 'invalid');
    assert.deepEqual(reply.error.path, ['plannerReset']);
    assert.match(reply.error.message, /^plannerReset: /);
  }
  // Only submit_plan has it (the schemas stay strict): a refresh with it is refused.
  const refresh = decodeRequest(JSON.stringify({ id: 2, type: 'refresh', plannerReset: true }));
  assert.ok(!refresh.ok);
  assert.equal((refresh.reply as { ok: false; error: { code: string } }).error.code, 'invalid');
});

test('bus submit_plan with a field lqosd does not know: refused as `invalid`, naming the field', () => {
  // LibreQoS tells an lqosd older than --planner-reset by this answer (lib/cli/libreqos.ts
  // refusesPlannerReset): its strict schema refuses `plannerReset` as this one refuses `futureFlag`.
  const base = { id: 7, type: 'submit_plan', mode: 'incremental', devicesPath: '/x/ShapedDevices.csv', networkPath: '/x/network.json', plannerReset: true };
  const r = decodeRequest(JSON.stringify({ ...base, futureFlag: true }));
  assert.ok(!r.ok);
  const reply = r.reply as { id: unknown; ok: false; error: { code: string; path?: unknown[]; message: string } };
  assert.equal(reply.id, 7, 'answered to that request');
  assert.equal(reply.error.code, 'invalid');
  assert.equal(reply.error.message, '(request): Unrecognized key: "futureFlag"');
  const two = decodeRequest(JSON.stringify({ ...base, futureFlag: true, otherFlag: 1 }));
  assert.ok(!two.ok);
  assert.match((two.reply as { error: { message: string } }).error.message, /Unrecognized keys: "futureFlag", "otherFlag"/);
});

/**
 * A LibreQoS config on `lo` (a real run unless `dry`) with a stored planner state, its run directory
 * as LQOS_RUN_DIR; `body` gets runLibreQoS with the options given plus `--clearrules --planner-reset`.
 */
async function clearCase(
  name: string,
  dry: boolean,
  body: (c: { run: (o: LibreQoSOptions, seams: LibreQoSKernelSeams) => Promise<number>; records: { level: number; msg: string }[]; state: string; runDir: string; before: string }) => Promise<void>,
) {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const config = join(d, 'lqos.conf');
  writeFileSync(config, loConfig(d).replace('dry_run = true', `dry_run = ${dry}`));
  const state = statePaths(join(d, 'state')).plannerState;
  mkdirSync(dirname(state), { recursive: true });
  const before = JSON.stringify({ version: 1, circuits: { c1: { minor: OLD_MINOR } } });
  writeFileSync(state, before);
  const runDir = join(d, 'run');
  const { log, records } = capturingLogger();
  const saved = process.env.LQOS_RUN_DIR;
  process.env.LQOS_RUN_DIR = runDir;
  try {
    await body({ run: (o, seams) => runLibreQoS({ config, clearrules: true, plannerReset: true, ...o }, log, seams), records, state, runDir, before });
  } finally {
    if (saved === undefined) delete process.env.LQOS_RUN_DIR;
    else process.env.LQOS_RUN_DIR = saved;
  }
}

test('--clearrules --planner-reset forgets the planner state once the clear succeeded (under the kernel lock)', async () => {
  await clearCase('clear-ok', false, async ({ run, records, state, runDir }) => {
    const cleared: string[][] = [];
    const code = await run({}, {
      clearKernel: async (_rc, devs) => {
        assert.ok(existsSync(kernelLockPath(runDir)), 'cleared under the kernel lock');
        assert.ok(existsSync(state), 'the planner state is still there while the clear runs');
        cleared.push(devs);
        return EXIT.ok;
      },
    });
    assert.equal(code, EXIT.ok);
    assert.deepEqual(cleared, [['lo']]);
    assert.equal(existsSync(state), false, 'planner_state.json removed');
    assert.ok(records.some((l) => l.msg === `removed planner state ${state}; class ids will be assigned afresh`));
  });
  await clearCase('clear-ok-no-reset', false, async ({ run, state, before }) => {
    assert.equal(await run({ plannerReset: false }, { clearKernel: async () => EXIT.ok }), EXIT.ok);
    assert.equal(readFileSync(state, 'utf8'), before, 'without --planner-reset the clear keeps it');
  });
});

test('--clearrules --planner-reset whose clear fails: planner_state.json byte for byte', async () => {
  await clearCase('clear-fails', false, async ({ run, state, before }) => {
    await assert.rejects(run({}, { clearKernel: async () => Promise.reject(new Error('tc qdisc del failed (simulated)')) }), /simulated/);
    assert.equal(readFileSync(state, 'utf8'), before);
  });
});

test('--clearrules --planner-reset while the kernel lock stays held: exit 5, nothing removed, planner_state.json byte for byte', async () => {
  await clearCase('clear-locked', false, async ({ run, records, state, runDir, before }) => {
    // Held by another live process (this test's parent), as by lqosd applying.
    const lock = kernelLockPath(runDir);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(lock, `${process.ppid}
lqosd: plan apply
`);
    let cleared = false;
    const code = await run({}, { kernelLockWaitMs: 300, clearKernel: async () => ((cleared = true), EXIT.ok) });
    assert.equal(code, EXIT.locked);
    assert.equal(cleared, false, 'nothing cleared');
    const err = records.find((l) => l.level === 50)?.msg ?? '';
    assert.ok(err.startsWith(`the kernel lock ${lock} is held by PID ${process.ppid} (lqosd: plan apply); waited `), err);
    assert.ok(err.endsWith('; nothing was removed and the planner state is kept'), err);
    assert.equal(readFileSync(state, 'utf8'), before);
    assert.equal(readFileSync(lock, 'utf8'), `${process.ppid}
lqosd: plan apply
`, "the holder's lock is left as it is");
  });
});

test('--clearrules --planner-reset in a dry run only says it would: exit 0, nothing cleared, planner_state.json byte for byte', async () => {
  for (const [name, dry, o] of [['clear-dry-config', true, {}], ['clear-dry-flag', false, { dryRun: true }]] as const) {
    await clearCase(name, dry, async ({ run, records, state, before }) => {
      let cleared = false;
      assert.equal(await run(o, { clearKernel: async () => ((cleared = true), EXIT.ok) }), EXIT.ok);
      assert.equal(cleared, false, `${name}: nothing cleared`);
      assert.ok(records.some((l) => l.msg === `dry run: would remove shaping from lo and forget the planner state ${state}`), name);
      assert.equal(readFileSync(state, 'utf8'), before, name);
    });
  }
});

test('retryWhileBusy retries only `busy`, for the time given', async () => {
  let n = 0;
  const told: number[] = [];
  const ok = await retryWhileBusy(
    async () => {
      if (++n < 3) throw new BusError('busy', 'a refresh is already running');
      return 'done';
    },
    { waitMs: 5000, intervalMs: 10, onBusy: (_e, waited) => told.push(waited) },
  );
  assert.equal(ok, 'done');
  assert.equal(n, 3);
  assert.equal(told.length, 2);

  const t0 = Date.now();
  await assert.rejects(
    retryWhileBusy(async () => Promise.reject(new BusError('busy', 'still running')), { waitMs: 100, intervalMs: 20 }),
    (e: unknown) => e instanceof BusError && e.code === 'busy',
  );
  assert.ok(Date.now() - t0 >= 100, 'waited the time given');

  n = 0;
  await assert.rejects(
    retryWhileBusy(
      async () => {
        n++;
        throw new BusError('failed', 'cannot read');
      },
      { waitMs: 5000, intervalMs: 10 },
    ),
    /cannot read/,
  );
  assert.equal(n, 1, 'another error is not retried');
});
