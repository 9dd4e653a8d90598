// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `./LibreQoS --planner-reset` resets only as part of an apply that goes ahead and succeeds, and a
 * LibreQoS that meets a busy lqosd waits for the running job, then exits 5 (not 4). The real
 * command against the real lqosd in-process (lib/daemon, its one-job-at-a-time runner) on a
 * dry-run config with its shaping service wrapped: held (busy), failing, or applying for real to a
 * simulated tc (test/support/simKernel.ts). No kernel is touched.
 *
 * planner_state.json stays byte for byte when the run is a dry run (which plans fresh ids and shows
 * them; also `--clearrules` in a dry run), when lqosd is down (exit 6) or stops while LibreQoS waits
 * for its running job (exit 6), is busy the whole wait (exit 5), runs dry itself, fails the apply
 * (exit 4), or is older than the flag and refuses it (a stand-in lqosd answering as one: exit 4);
 * it holds fresh ids after an apply through lqosd that succeeded — also one whose answer LibreQoS
 * lost when lqosd stopped mid-job (exit 4, saying lqosd may still apply it). Through lqosd the
 * reset is the bus flag `submit_plan` `plannerReset` of that one job: lqosd's service gets it, and
 * a scheduler-style submit without it, queued behind a reset job or running before one, plans with
 * the ids stored when it runs. An invalid LQOS_BUSY_WAIT_SECS is warned about and the 60 s used.
 */
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { busRequest } from '../../lib/bus/client.ts';
import { decodeRequest } from '../../lib/bus/protocol.ts';
import type { RunningDaemon } from '../../lib/daemon/daemon.ts';
import { retryWhileBusy } from '../../lib/shaping/busyRetry.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { failedOutcome, ShapingService, type ShapingOutcome } from '../../lib/shaping/service.ts';
import { loConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { repoRoot } from '../support/paths.ts';
import { SimKernel } from '../support/simKernel.ts';
import { runCli, tempDir, workspaceFactory, type Workspace } from '../support/workspace.ts';

const ws = workspaceFactory();
const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const s of stops.reverse()) await s();
});
const example = (f: string) => readFileSync(join(repoRoot, 'conf', 'example', f), 'utf8');
/** LibreQoS's lock and lqosd's bus in the workspace's run dir. */
const env = (w: Workspace, extra: Record<string, string> = {}) => ({ LQOS_RUN_DIR: w.runDir, LQOS_BUS_PATH: w.busPath, ...extra });
const statePath = (w: Workspace) => join(w.stateDir, 'shaping', 'planner_state.json');
const minorOf1001 = (w: Workspace) => (JSON.parse(readFileSync(statePath(w), 'utf8')) as { circuits: Record<string, { minor: number }> }).circuits['1001']!.minor;
/** Stores class minor `minor` for circuit 1001 in planner_state.json (as an older plan would have left it). */
function storeMinorOf1001(w: Workspace, minor: number): void {
  const st = JSON.parse(readFileSync(statePath(w), 'utf8'));
  st.circuits['1001'].minor = minor;
  writeFileSync(statePath(w), JSON.stringify(st));
}

/**
 * A workspace on `lo` whose lqos.conf is a dry run (lqosd's) and `real.conf` is not (LibreQoS's:
 * a real run, submitted to lqosd), with a stored planner state in which circuit 1001 holds the
 * class minor 0x77 — an id no fresh plan gives it. Returns the state's bytes.
 */
async function seeded(): Promise<{ w: Workspace; real: string; before: string }> {
  const w = ws({ conf: (dir) => loConfig(dir), devices: example('ShapedDevices.csv'), network: example('network.json'), runDir: true });
  const real = join(w.dir, 'real.conf');
  writeFileSync(real, loConfig(w.dir).replace('dry_run = true', 'dry_run = false'));
  const first = await runCli(['--config', w.config], env(w));
  assert.equal(first.code, EXIT.ok, first.stderr);
  storeMinorOf1001(w, 0x77);
  // The stored id is used by a plain run (so that its absence below means a reset).
  const plain = await runCli(['--config', w.config], env(w));
  assert.equal(plain.code, EXIT.ok, plain.stderr);
  assert.match(readFileSync(join(w.stateDir, 'debug', 'linux_tc.txt'), 'utf8'), /classid \w+:77 /);
  return { w, real, before: readFileSync(statePath(w), 'utf8') };
}

function assertKept(w: Workspace, before: string, what: string): void {
  assert.equal(readFileSync(statePath(w), 'utf8'), before, `${what}: planner_state.json unchanged`);
}

const errorOf = (r: { logs: { level: number; msg: string }[] }) => r.logs.find((l) => l.level === 50)?.msg ?? '';

type Run = ShapingService['run'];

/** lqosd in-process on the workspace with its shaping service replaced by `run`. */
async function lqosd(w: Workspace, run: Run): Promise<RunningDaemon> {
  const d = await startTestDaemon(w, { shaping: { run } });
  stops.push(() => d.stop());
  return d;
}

/** The real shaping service (lqosd's config is a dry run: nothing reaches tc). */
const realService = new ShapingService();
const dryRun: Run = (req, e) => realService.run(req, e);

/** One job lqosd's shaping service ran: the request's plannerReset and circuit 1001's class minor in its plan. */
interface Job {
  plannerReset?: boolean;
  minor1001?: number;
}

/**
 * Wraps lqosd's service `inner`: records each job it runs (in the order lqosd runs them, one at a
 * time) and, after holdNext(), makes the next job wait for release() (lqosd stays busy with it).
 */
function recorder(inner: Run) {
  const jobs: Job[] = [];
  let gate: { entered: () => void; released: Promise<void> } | undefined;
  const run: Run = async (req, e) => {
    const g = gate;
    gate = undefined;
    if (g) {
      g.entered();
      await g.released;
    }
    const r = await inner(req, e);
    jobs.push({ plannerReset: req.plannerReset, minor1001: (r.plan ?? r.planned)?.circuits.find((c) => c.id === '1001')?.minor });
    return r;
  };
  const holdNext = () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const running = new Promise<void>((r) => (entered = r));
    gate = { entered, released };
    return { running, release };
  };
  return { run, jobs, holdNext };
}

/** Occupies lqosd with a bus `refresh` held by `held`; resolves once it runs, with the refresh's reply to come. */
async function occupy(w: Workspace, held: { running: Promise<void> }): Promise<{ refresh: Promise<ShapingOutcome> }> {
  const refresh = busRequest<'refresh', ShapingOutcome>('refresh', {}, { path: w.busPath, timeoutMs: 120_000 });
  refresh.catch(() => undefined);
  await held.running;
  return { refresh }; // (an async function returning the promise itself would wait for it)
}

/** A scheduler-style submit (no plannerReset) of the workspace's files, retried while lqosd is busy as the scheduler does. */
function schedulerSubmit(w: Workspace, onBusy?: () => void): Promise<ShapingOutcome> {
  const submit = () =>
    busRequest<'submit_plan', ShapingOutcome>(
      'submit_plan',
      { mode: 'incremental', devicesPath: join(w.dir, 'ShapedDevices.csv'), networkPath: join(w.dir, 'network.json') },
      { path: w.busPath, timeoutMs: 120_000 },
    );
  return retryWhileBusy(submit, { waitMs: 120_000, intervalMs: 50, onBusy });
}

/** LibreQoS as a child process whose stderr is watched: `onText` sees the text so far. */
function libreqos(args: string[], e: Record<string, string>, onText: (stderr: string) => void) {
  const child = execa(join(repoRoot, 'LibreQoS'), args, { reject: false, cwd: repoRoot, env: { LQOS_LOG_FORMAT: 'json', ...e } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += String(d);
    onText(stderr);
  });
  return child.then((r) => {
    const logs = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
    return { code: r.exitCode ?? -1, stderr, logs };
  });
}

/**
 * lqosd's real service applying for real to a simulated tc (test/support/simKernel.ts), its config
 * being a dry run (forced off for the run).
 */
async function applyingService(t: TestContext): Promise<{ run: Run; k: SimKernel }> {
  const k = new SimKernel(['lo']);
  const dir = tempDir('lq-reset-tc-');
  await k.start(dir);
  t.after(async () => {
    await k.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const run: Run = async (req, e) => {
    const path = process.env.PATH;
    process.env.PATH = `${k.binDir}:${path}`;
    try {
      return await realService.run(req, { ...e, config: { ...e.config, queues: { ...e.config.queues, dry_run: false } } });
    } finally {
      process.env.PATH = path;
    }
  };
  return { run, k };
}

test('--dry-run --planner-reset plans and shows fresh class ids but leaves planner_state.json byte for byte', async () => {
  const { w, before } = await seeded();
  const r = await runCli(['--config', w.config, '--planner-reset'], env(w)); // lqos.conf: dry_run = true
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.doesNotMatch(readFileSync(join(w.stateDir, 'debug', 'linux_tc.txt'), 'utf8'), /classid \w+:77 /, 'the preview has fresh ids');
  assert.ok(r.logs.some((l) => /^dry run: planned with the fresh class ids a real run with --planner-reset would assign \(in .*linux_tc\.txt\); .*planner_state\.json is left as it is$/.test(l.msg)), r.stderr);
  assertKept(w, before, '--planner-reset in a dry run');
  const forced = await runCli(['--config', join(w.dir, 'real.conf'), '--dry-run', '--planner-reset'], env(w));
  assert.equal(forced.code, EXIT.ok, forced.stderr);
  assertKept(w, before, '--dry-run --planner-reset');
  // The stored ids are still the ones a plain run uses.
  assert.equal((await runCli(['--config', w.config], env(w))).code, EXIT.ok);
  assert.match(readFileSync(join(w.stateDir, 'debug', 'linux_tc.txt'), 'utf8'), /classid \w+:77 /);
});

test('--planner-reset with lqosd not running: exit 6, planner_state.json byte for byte', async () => {
  const { w, real, before } = await seeded();
  const r = await runCli(['--config', real, '--planner-reset'], env(w));
  assert.equal(r.code, EXIT.lqosdDown, r.stderr);
  assert.match(errorOf(r), /^lqosd is not running .*; the planner state is kept \(--planner-reset not done\)$/);
  assertKept(w, before, 'lqosd down');
});

test('lqosd busy for the whole wait: LibreQoS says it waits, then exit 5 naming the running job; planner_state.json byte for byte', async () => {
  const { w, real, before } = await seeded();
  const svc = recorder(dryRun);
  const held = svc.holdNext();
  await lqosd(w, svc.run);
  const { refresh } = await occupy(w, held);
  const r = await runCli(['--config', real, '--planner-reset'], env(w, { LQOS_BUSY_WAIT_SECS: '1' }));
  assert.equal(r.code, EXIT.locked, r.stderr);
  assert.ok(r.logs.some((l) => l.level === 30 && /^lqosd is running another shaping job \(a refresh is already running .*\); waiting up to 1 s for it to finish$/.test(l.msg)), r.stderr);
  assert.match(errorOf(r), /^lqosd is still running another shaping job after 1 s \(a refresh is already running .*\); nothing was applied; the planner state is kept .* run LibreQoS again when that job has finished/);
  assert.ok(!r.logs.some((l) => /lqosd could not apply/.test(l.msg)), 'not told as a failed apply (exit 4)');
  assertKept(w, before, 'lqosd busy');
  held.release();
  assert.equal((await refresh).exitCode, EXIT.ok);
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [undefined], 'only the refresh ran');
});

test('lqosd busy, then free within the wait: LibreQoS waits for the running job and then submits (exit 0)', async () => {
  const { w, real } = await seeded();
  const svc = recorder(dryRun);
  const held = svc.holdNext();
  await lqosd(w, svc.run);
  const { refresh } = await occupy(w, held);
  // The running job ends once LibreQoS has been told lqosd is busy.
  const r = await libreqos(['--config', real], env(w, { LQOS_BUSY_WAIT_SECS: '120' }), (text) => {
    if (/waiting up to 120 s for it to finish/.test(text)) held.release();
  });
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.ok(r.stderr.includes('"via":"lqosd"'), 'the submit ran in lqosd after the wait');
  assert.equal((await refresh).exitCode, EXIT.ok);
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [undefined, undefined], 'a run without --planner-reset sends no flag');
});

test('lqosd runs as a dry run: --planner-reset is not done, planner_state.json byte for byte', async () => {
  const { w, real, before } = await seeded();
  const svc = recorder(dryRun);
  await lqosd(w, svc.run);
  const r = await runCli(['--config', real, '--planner-reset'], env(w));
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.ok(r.logs.some((l) => /^--planner-reset not done: lqosd runs as a dry run .*planner_state\.json is left as it was$/.test(l.msg)), r.stderr);
  // lqosd got the flag, planned with fresh ids and showed them, but saved nothing.
  assert.equal(svc.jobs.length, 1);
  assert.equal(svc.jobs[0]!.plannerReset, true, 'the bus request carried plannerReset to the service');
  assert.notEqual(svc.jobs[0]!.minor1001, 0x77);
  assert.doesNotMatch(readFileSync(join(w.stateDir, 'debug', 'linux_tc.txt'), 'utf8'), /classid \w+:77 /);
  assertKept(w, before, 'lqosd in a dry run');
});

test("lqosd's apply fails: exit 4, planner_state.json byte for byte", async () => {
  const { w, real, before } = await seeded();
  const svc = recorder(async () => ({ outcome: failedOutcome(EXIT.apply, [{ level: 'error', msg: 'applying failed: tc failed at batch line 7 (simulated)' }], performance.now()) }));
  await lqosd(w, svc.run);
  const r = await runCli(['--config', real, '--planner-reset'], env(w));
  assert.equal(r.code, EXIT.apply, r.stderr);
  assert.ok(r.logs.some((l) => /^--planner-reset not done: lqosd did not apply the plan/.test(l.msg)), r.stderr);
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [true]);
  assertKept(w, before, 'a failed apply');
});

test('an apply through lqosd that succeeds resets: planner_state.json holds the fresh ids of the applied plan', async (t) => {
  const { w, real, before } = await seeded();
  const { run, k } = await applyingService(t);
  const svc = recorder(run);
  await lqosd(w, svc.run);
  const r = await runCli(['--config', real, '--planner-reset'], env(w));
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.ok(r.logs.some((l) => /^--planner-reset: lqosd applied the plan with fresh class ids and queues/.test(l.msg)), r.stderr);
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [true], 'the bus request carried plannerReset');
  assert.notEqual(readFileSync(statePath(w), 'utf8'), before);
  assert.notEqual(minorOf1001(w), 0x77, 'circuit 1001 has a fresh class id');
  assert.equal(minorOf1001(w), svc.jobs[0]!.minor1001, "the saved state is the applied plan's");
  assert.ok(k.batches.flat().some((l) => / classid \w+:/.test(l)) && !k.batches.flat().some((l) => /classid \w+:77 /.test(l)), 'the applied tree has the fresh ids');
  // Sticky from here: a next run keeps them.
  const after1 = readFileSync(statePath(w), 'utf8');
  const again = await runCli(['--config', real], env(w));
  assert.equal(again.code, EXIT.ok, again.stderr);
  assert.equal(minorOf1001(w), JSON.parse(after1).circuits['1001'].minor);
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [true, undefined]);
});

test('scheduler-style submits without the flag around a reset job: the one before keeps the stored ids, the one queued behind it the fresh ones', async (t) => {
  const { w, real } = await seeded();
  const { run } = await applyingService(t);
  const svc = recorder(run);
  await lqosd(w, svc.run);

  // 1. A scheduler submit is running (held) when LibreQoS --planner-reset submits: LibreQoS waits,
  //    and the scheduler's job plans with the ids stored then (c1001 at 0x77), not fresh ones.
  let held = svc.holdNext();
  const first = schedulerSubmit(w);
  await held.running;
  const reset = await libreqos(['--config', real, '--planner-reset'], env(w, { LQOS_BUSY_WAIT_SECS: '120' }), (text) => {
    if (/waiting up to 120 s for it to finish/.test(text)) held.release();
  });
  assert.equal(reset.code, EXIT.ok, reset.stderr);
  assert.equal((await first).exitCode, EXIT.ok);
  assert.deepEqual(svc.jobs, [
    { plannerReset: undefined, minor1001: 0x77 },
    { plannerReset: true, minor1001: svc.jobs[1]!.minor1001 },
  ]);
  const fresh = svc.jobs[1]!.minor1001!;
  assert.notEqual(fresh, 0x77, 'the reset job planned fresh ids');
  assert.equal(minorOf1001(w), fresh, 'and they were saved');

  // 2. A reset job is running (held) when the scheduler submits: the scheduler's submit waits
  //    (busy) and then plans with the ids that reset job saved; they stay the stored ones. The
  //    stored id is set apart from the fresh one first (c1001 at 0x77 again), or the scheduler's
  //    job would plan with the fresh id whether or not the reset job had saved its state.
  storeMinorOf1001(w, 0x77);
  const resetAgain = svc.holdNext();
  const second = libreqos(['--config', real, '--planner-reset'], env(w), () => {});
  await resetAgain.running;
  let busy = 0;
  const third = await schedulerSubmit(w, () => {
    if (busy++ === 0) resetAgain.release();
  });
  assert.ok(busy > 0, 'the scheduler-style submit was answered busy while the reset job ran');
  assert.equal(third.exitCode, EXIT.ok);
  const r2 = await second;
  assert.equal(r2.code, EXIT.ok, r2.stderr);
  assert.equal(svc.jobs.length, 4);
  assert.equal(svc.jobs[2]!.plannerReset, true);
  assert.notEqual(svc.jobs[2]!.minor1001, 0x77, 'the reset job planned fresh ids, not the stored ones');
  assert.equal(svc.jobs[3]!.plannerReset, undefined, 'the scheduler-style job carried no flag');
  assert.notEqual(svc.jobs[3]!.minor1001, 0x77, 'the scheduler-style job did not plan with the ids stored before the reset job');
  assert.equal(svc.jobs[3]!.minor1001, svc.jobs[2]!.minor1001, "it planned with the ids the reset job had just saved");
  assert.equal(minorOf1001(w), svc.jobs[2]!.minor1001);
});

test('--clearrules --planner-reset in a dry run only says it would forget the planner state: exit 0, planner_state.json byte for byte', async () => {
  const { w, real, before } = await seeded();
  const r = await runCli(['--config', w.config, '--clearrules', '--planner-reset'], env(w)); // lqos.conf: dry_run = true
  assert.equal(r.code, EXIT.ok, r.stderr);
  const said = `dry run: would remove shaping from lo and forget the planner state ${statePath(w)}`;
  assert.ok(r.logs.some((l) => l.msg === said), r.stderr);
  assertKept(w, before, '--clearrules --planner-reset in a dry run');
  const forced = await runCli(['--config', real, '--dry-run', '--clearrules', '--planner-reset'], env(w));
  assert.equal(forced.code, EXIT.ok, forced.stderr);
  assert.ok(forced.logs.some((l) => l.msg === said), forced.stderr);
  assertKept(w, before, '--dry-run --clearrules --planner-reset');
});

test('an invalid LQOS_BUSY_WAIT_SECS is warned about and the default 60 s wait is used', async () => {
  const { w, real } = await seeded();
  const svc = recorder(dryRun);
  await lqosd(w, svc.run);
  for (const v of ['abc', '-1']) {
    const held = svc.holdNext();
    const { refresh } = await occupy(w, held);
    // The running job ends once LibreQoS has said how long it waits: the default.
    const r = await libreqos(['--config', real], env(w, { LQOS_BUSY_WAIT_SECS: v }), (text) => {
      if (/waiting up to 60 s for it to finish/.test(text)) held.release();
    });
    assert.equal(r.code, EXIT.ok, r.stderr);
    const warning = `LQOS_BUSY_WAIT_SECS must be a number of seconds (0 or more), not ${JSON.stringify(v)}; using the default`;
    assert.ok(r.logs.some((l) => l.level === 40 && l.msg === warning), `${v}: warned\n${r.stderr}`);
    assert.ok(r.logs.some((l) => l.level === 30 && /^lqosd is running another shaping job \(.*\); waiting up to 60 s for it to finish$/.test(l.msg)), `${v}: waited the default\n${r.stderr}`);
    assert.equal((await refresh).exitCode, EXIT.ok);
  }
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [undefined, undefined, undefined, undefined], 'two refreshes and the two runs after them');
});

test('lqosd stops while LibreQoS waits for its running job: exit 6 as when lqosd is down (not 4), planner_state.json byte for byte', async () => {
  const { w, real, before } = await seeded();
  const svc = recorder(dryRun);
  const held = svc.holdNext();
  const d = await lqosd(w, svc.run);
  const { refresh } = await occupy(w, held);
  // lqosd stops (its bus closes at once; its running job may finish) once LibreQoS waits.
  let stopping: Promise<void> | undefined;
  const r = await libreqos(['--config', real, '--planner-reset'], env(w, { LQOS_BUSY_WAIT_SECS: '120' }), (text) => {
    if (!stopping && /waiting up to 120 s for it to finish/.test(text)) stopping = d.stop();
  });
  assertKept(w, before, 'lqosd stopped during the wait'); // (before the refresh it ran ends)
  held.release();
  await stopping;
  await refresh.catch(() => undefined); // its connection closed with the bus
  assert.equal(r.code, EXIT.lqosdDown, r.stderr);
  assert.match(
    errorOf(r),
    /^lqosd went away before it took this run's job \(stopped or restarting since it answered\): lqosd is not running \((no socket|stale socket) at [^)]*\); start it with systemctl start lqosd; nothing was applied — a real apply needs lqosd; start it \(systemctl start lqosd\), or use --dry-run to only plan, or --direct to apply without lqosd; the planner state is kept \(--planner-reset not done\)$/,
  );
  assert.ok(!r.logs.some((l) => /lqosd could not apply|may still apply/.test(l.msg)), 'not told as a failed or lost apply (exit 4)');
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [undefined], 'only the refresh ran');
});

test("lqosd stops while it runs LibreQoS's job: exit 4 saying lqosd may still apply it — and it does, --planner-reset included", async (t) => {
  const { w, real, before } = await seeded();
  const { run } = await applyingService(t);
  const svc = recorder(run);
  const held = svc.holdNext();
  const d = await lqosd(w, svc.run);
  const child = libreqos(['--config', real, '--planner-reset'], env(w), () => {});
  await held.running;
  // The bus closes (LibreQoS's connection with it); lqosd lets the running job finish before it exits.
  const stopping = d.stop();
  const r = await child;
  assertKept(w, before, 'not yet: the job is still held');
  held.release();
  await stopping;
  assert.equal(r.code, EXIT.apply, r.stderr);
  assert.match(
    errorOf(r),
    new RegExp(
      `^lqosd took the job but its answer was lost \\(lqosd closed the bus connection \\(.*\\)\\): lqosd may still apply the plan and the --planner-reset with it \\(its planner_state\\.json then holds fresh class ids\\), or it stopped before it did — ` +
        `see which in ${join(w.stateDir, 'debug', 'lqosd_run.log')} \\(lqosd writes it when a job ends\\) or in journalctl -u lqosd -b before running LibreQoS again$`,
    ),
  );
  assert.ok(!r.logs.some((l) => /planner state is kept/.test(l.msg)), 'not told that the state is kept: lqosd may still save it');
  assert.deepEqual(svc.jobs.map((j) => j.plannerReset), [true]);
  assert.notEqual(minorOf1001(w), 0x77, 'lqosd finished the job: the fresh ids were applied and saved');
  assert.equal(minorOf1001(w), svc.jobs[0]!.minor1001);
});

/**
 * A stand-in for an lqosd older than `plannerReset` on the workspace's bus: it answers ping, takes
 * a submit_plan without the field (a successful outcome) and refuses one with it as that lqosd's
 * strict schema does — the real decoder's answer to a key it does not know (lib/bus/protocol.ts).
 */
async function olderLqosd(w: Workspace): Promise<Record<string, unknown>[]> {
  const submits: Record<string, unknown>[] = [];
  const answer = (req: Record<string, unknown>): object => {
    if (req.type === 'ping') return { id: req.id, ok: true, result: { pong: true, version: '0.0.1', pid: process.pid } };
    submits.push(req);
    const { plannerReset, ...known } = req;
    if (plannerReset === undefined) return { id: req.id, ok: true, result: { ok: true, exitCode: EXIT.ok, mode: 'incremental', commands: 0, seconds: 0.1, records: [] } };
    const probe = 'unknownFieldProbe';
    const decoded = decodeRequest(JSON.stringify({ ...known, [probe]: plannerReset }));
    assert.ok(!decoded.ok);
    return JSON.parse(JSON.stringify(decoded.reply).replaceAll(probe, 'plannerReset'));
  };
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        sock.write(JSON.stringify(answer(JSON.parse(line))) + '\n');
      }
    });
  });
  await new Promise<void>((ok) => server.listen(w.busPath, ok));
  stops.push(() => new Promise<void>((ok) => server.close(() => ok())));
  return submits;
}

test('an lqosd older than --planner-reset refuses the flag: exit 4 saying to restart lqosd, nothing applied, planner_state.json byte for byte', async () => {
  const { w, real, before } = await seeded();
  const submits = await olderLqosd(w);
  const r = await runCli(['--config', real, '--planner-reset'], env(w));
  assert.equal(r.code, EXIT.apply, r.stderr);
  assert.match(
    errorOf(r),
    /^lqosd does not know --planner-reset \(\(request\): Unrecognized key: "plannerReset"\): it runs an older lqos-ts than this LibreQoS; restart it \(systemctl restart lqosd\) and run again; nothing was applied; the planner state is kept \(--planner-reset not done\)$/,
  );
  assertKept(w, before, 'an older lqosd');
  // Without --planner-reset the request has no such field: that lqosd takes it.
  const plain = await runCli(['--config', real], env(w));
  assert.equal(plain.code, EXIT.ok, plain.stderr);
  assert.deepEqual(submits.map((q) => 'plannerReset' in q), [true, false]);
});
