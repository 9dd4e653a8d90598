/**
 * `npm run bench:apply` — applying end to end, as an operator does (root; holds the kernel: run it
 * under `flock /tmp/lqos-kernel.lock`):
 *
 *   flock /tmp/lqos-kernel.lock node --import tsx bench/apply.bench.ts [--circuits 10000] [--rounds 4]
 *        [--mem-circuits 100000 | 0] [--mem-lazy Full | Htb | No] [--mem-only] [--flows off]
 *        [--mem-hold SECONDS]
 *
 * A namespace lab (lab/labEnv.ts: Linux bridge, real lqosd started inside the shaper namespace with
 * its own LQOS_RUN_DIR, bus socket and bpffs) gets a synthetic 10k-circuit network. Every timed
 * figure is the real `LibreQoS` command's wall time, from spawning it to its exit: CLI start-up,
 * validation, bus request, lqosd planning/compiling, tc, eBPF mappings and lqosd's kernel read-back.
 * Rounds interleave three variants, the order rotating each round:
 *  - full: an empty top-level node added to / removed from network.json (a structural change), then
 *    `LibreQoS` (must report `applied (full)`: every class rebuilt under the kept mq root);
 *  - change: one circuit's download rate changed in ShapedDevices.csv, `LibreQoS` (must report
 *    `applied (incremental)`), then the class's ceil read back with tc (not timed) — twice a round;
 *  - bare: the same full tc batch lqosd compiled (state/debug/linux_tc.txt) through one bare
 *    `tc -batch` in the namespace, after deleting the root qdiscs (the kernel's share of a full apply).
 * Then lqosd's VmRSS/VmHWM (/proc/<pid>/status) holding the 10k plan, and with --mem-circuits the
 * same after `LibreQoS` applies a 100k-circuit plan (sqm none: the kernel allows ~57k leaf qdiscs
 * per interface) with `lazy_queues = "Full"` (--mem-lazy): every IP mapping and node class is
 * written and lqosd holds the whole plan, but circuit classes wait for traffic — building 200k HTB
 * classes on the lab's veth devices is quadratic in the kernel (each class's filter block goes on
 * one global list that every later class walks; docs/PERFORMANCE.md) and takes hours, bare `tc` as
 * much as lqosd. Held RSS is the lowest of ten samples 3 s apart after the apply (V8 returns the
 * apply's transient heap when idle). Ends with the target table; exits 1 when a target is missed.
 *
 * For iterating on lqosd's memory: `--mem-only` skips the 10k rounds (lqosd starts on a small plan,
 * then the big apply and its samples: a couple of minutes); `--flows off` runs lqosd with
 * LQOS_FLOWS=0; `--mem-hold 120` keeps the lab (and lqosd) up that long after the samples, its pid
 * printed, for a look with /proc or a heap snapshot (NODE_OPTIONS reaches lqosd).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { execa } from 'execa';
import { defaultLabCircuits, labLqosdPids, repoRoot, startLab, startLabDaemon, stopLab, stopLabDaemon, type Lab } from '../lab/labEnv.ts';
import { generateDataset } from './dataset.ts';
import { fmtSpread, interleaved, machineLine, Targets } from './stats.ts';

const { values } = parseArgs({
  options: {
    circuits: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '4' },
    'mem-circuits': { type: 'string', default: '100000' },
    // lazy_queues for the big apply: "Full" (default) builds the node tree and every mapping but no
    // circuit class until traffic; "No" builds all of them (see the note at the 100k step).
    'mem-lazy': { type: 'string', default: 'Full' },
    'mem-only': { type: 'boolean', default: false },
    flows: { type: 'string', default: 'on' },
    'mem-hold': { type: 'string', default: '0' },
  },
});
const CIRCUITS = Number(values.circuits);
const ROUNDS = Math.max(1, Number(values.rounds));
const MEM_CIRCUITS = Number(values['mem-circuits']);
const MEM_LAZY = values['mem-lazy']!;
if (!['No', 'Htb', 'Full'].includes(MEM_LAZY)) throw new Error(`--mem-lazy must be No, Htb or Full, not ${MEM_LAZY}`);
if (!['on', 'off'].includes(values.flows!)) throw new Error(`--flows must be on or off, not ${values.flows}`);
/** lqosd's environment: the memory settings of the systemd unit (as in production), LQOS_FLOWS=0 with --flows off. */
const DAEMON_ENV: Record<string, string> = { ...unitMemoryEnv(), ...(values.flows === 'off' ? { LQOS_FLOWS: '0' } : {}) };
const MEM_ONLY = values['mem-only']!;
const MEM_HOLD_S = Number(values['mem-hold']);
/** Circuits lqosd starts with under --mem-only (its first apply, before the big one). */
const MEM_ONLY_START_CIRCUITS = 100;
/** lqosd's VmRSS holding the big plan, MB (issue 15). */
const HELD_TARGET_MB = 250;
const ID = 'lqbapply';
const DOWN_COL = 12; // "Download Max Mbps" in bench/dataset.ts's column order

/** The MALLOC_* variables and NODE_OPTIONS (V8's heap flags) that systemd/lqosd.service sets for lqosd. */
function unitMemoryEnv(): Record<string, string> {
  const unit = readFileSync(join(repoRoot, 'systemd', 'lqosd.service'), 'utf8');
  const env: Record<string, string> = {};
  for (const line of unit.split('\n').filter((l) => l.startsWith('Environment='))) {
    for (const [, k, v] of line.slice('Environment='.length).matchAll(/(MALLOC_\w+|NODE_OPTIONS)=(\S+)/g)) env[k!] = v!;
  }
  return env;
}

interface Run {
  ms: number;
  code: number;
  output: string;
}

async function libreqos(lab: Lab, args: string[] = []): Promise<Run> {
  const t0 = performance.now();
  const r = await execa('ip', ['netns', 'exec', lab.tb.ns.shaper, join(repoRoot, 'LibreQoS'), '--config', lab.config, ...args], {
    reject: false,
    all: true,
    env: { LQOS_BPF_PIN_ROOT: lab.pinRoot, LQOS_LOG_FORMAT: 'json', LQOS_RUN_DIR: join(lab.dir, 'run') },
  });
  return { ms: performance.now() - t0, code: r.exitCode ?? -1, output: String(r.all ?? '') };
}

/** Runs LibreQoS and insists on exit 0 and the expected apply mode in its output. */
async function apply(lab: Lab, expect: RegExp, args: string[] = []): Promise<number> {
  const r = await libreqos(lab, args);
  if (r.code !== 0 || !expect.test(r.output)) {
    throw new Error(`LibreQoS ${args.join(' ')} exited ${r.code} without ${expect}: ${r.output.slice(-1500)}`);
  }
  // lqosd's own apply time (diff, tc, mappings, read-back), from the apply report it logs.
  const m = /"seconds":([\d.]+),"msg":"(applied|queues and mappings already match)/.exec(r.output);
  lastLqosdMs = m ? Number(m[1]) * 1000 : NaN;
  return r.ms;
}

let lastLqosdMs = NaN;

/** The shaping interfaces' root qdiscs removed (the eBPF programs and maps stay attached). */
async function deleteRoots(lab: Lab): Promise<void> {
  for (const dev of [lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet]) {
    await execa('tc', ['-n', lab.tb.ns.shaper, 'qdisc', 'del', 'dev', dev, 'root'], { reject: false });
  }
}

/**
 * Adds or removes an empty top-level node in network.json: a structural change, so lqosd's next
 * apply is a full rebuild of every class (keeping the mq root) — the way to time a full apply
 * through lqosd without `--clearrules`, which also unloads the dataplane.
 */
function toggleNode(lab: Lab): void {
  const file = join(lab.dir, 'network.json');
  const net = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  if (net.Bench_Toggle) delete net.Bench_Toggle;
  else net.Bench_Toggle = { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100, type: 'site' };
  writeFileSync(file, JSON.stringify(net, null, 2) + '\n');
}

/** lqosd's pid: the node process running lqosd (source or compiled) inside the shaper namespace. */
async function lqosdPid(lab: Lab): Promise<number> {
  const [pid] = await labLqosdPids(lab);
  if (pid === undefined) throw new Error(`no lqosd process in namespace ${lab.tb.ns.shaper}: see ${lab.dir}/lqosd.log`);
  return pid;
}

/** CPU seconds (user + system) the process has used. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

interface Memory {
  rssMB: number;
  hwmMB: number;
  /** Of VmRSS: anonymous memory (heap, buffers, malloc) and file pages (code, mapped files). */
  anonMB: number;
  fileMB: number;
}

function memoryOf(pid: number): Memory {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024, anonMB: kb('RssAnon') / 1024, fileMB: kb('RssFile') / 1024 };
}

/**
 * lqosd's VmRSS once it settled after a big apply: V8 gives the apply's transient heap back when
 * idle (its memory reducer), so RSS is sampled every 3 s for up to 30 s and the lowest is taken.
 */
async function settledMemory(pid: number): Promise<Memory & { at3: number; seconds: number; cpuPerS: number }> {
  let best: Memory = { rssMB: Infinity, hwmMB: NaN, anonMB: NaN, fileMB: NaN };
  const cpu0 = cpuSeconds(pid);
  let at3 = NaN;
  let seconds = 0;
  for (let i = 1; i <= 10; i++) {
    await new Promise((res) => setTimeout(res, 3000));
    const m = memoryOf(pid);
    if (i === 1) at3 = m.rssMB;
    if (m.rssMB < best.rssMB) ((best = m), (seconds = 3 * i));
  }
  return { ...best, at3, seconds, cpuPerS: (cpuSeconds(pid) - cpu0) / 30 };
}

/** Sets `[queues] lazy_queues` in the lab's lqos.conf and has lqosd reload it (SIGHUP). */
async function setLazyQueues(lab: Lab, pid: number, mode: string): Promise<void> {
  const text = readFileSync(lab.config, 'utf8').replace(/^lazy_queues = .*\n/m, '');
  if (!/^\[queues\]$/m.test(text)) throw new Error(`${lab.config} has no [queues] section`);
  writeFileSync(lab.config, text.replace(/^\[queues\]$/m, `[queues]\nlazy_queues = "${mode}"`));
  process.kill(pid, 'SIGHUP');
  await new Promise((res) => setTimeout(res, 2000));
}

/** Download class (classid and `ceil`) of a circuit, read back from the kernel. */
async function circuitCeil(lab: Lab, circuitId: string): Promise<string> {
  const st = JSON.parse(readFileSync(join(lab.dir, 'state', 'shaping', 'planner_state.json'), 'utf8')) as { circuits: Record<string, { queue: number; minor: number }> };
  const c = st.circuits[circuitId];
  if (!c) throw new Error(`circuit ${circuitId} is not in planner_state.json`);
  const classid = `${c.queue.toString(16)}:${c.minor.toString(16)}`;
  const r = await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', lab.tb.shaperIfs.customer, 'classid', classid]);
  const m = / ceil (\S+)/.exec(String(r.stdout));
  if (!m) throw new Error(`class ${classid} of ${circuitId} not found on ${lab.tb.shaperIfs.customer}: ${r.stdout}`);
  return m[1]!;
}

/** ShapedDevices.csv rows with one circuit's download max rewritten on each change. */
class DeviceRates {
  private readonly rows: string[][];
  private readonly header: string[];
  private readonly byCircuit = new Map<string, number[]>();
  private readonly ids: string[];
  private n = 0;

  constructor(private readonly lab: Lab, csv: string) {
    const all = parse(csv) as string[][];
    this.header = all[0]!;
    this.rows = all.slice(1);
    this.rows.forEach((r, i) => this.byCircuit.set(r[0]!, [...(this.byCircuit.get(r[0]!) ?? []), i]));
    // Circuits whose plan leaves room to lower the rate by a few Mbit/s above their minimum.
    this.ids = [...this.byCircuit.keys()].filter((id) => Number(this.rows[this.byCircuit.get(id)![0]!]![DOWN_COL]) >= 50);
    if (this.ids.length === 0) throw new Error('no circuit with a download max ≥ 50 Mbit/s to change');
  }

  /** Lowers the next circuit's download max by 1–7 Mbit/s; returns its id and the new rate. */
  change(): { id: string; mbps: number } {
    const id = this.ids[(this.n * 997) % this.ids.length]!;
    const rows = this.byCircuit.get(id)!;
    const mbps = Number(this.rows[rows[0]!]![DOWN_COL]) - 1 - (this.n % 7);
    this.n++;
    for (const i of rows) this.rows[i]![DOWN_COL] = String(mbps);
    writeFileSync(join(this.lab.dir, 'ShapedDevices.csv'), stringify([this.header, ...this.rows]));
    return { id, mbps };
  }
}

function writeInputs(lab: Lab, circuits: number, sqmNone: boolean): string {
  const ds = generateDataset({ circuits, seed: 1 });
  const csv = sqmNone ? ds.shapedDevicesCsv.replace(/,\r?$/gm, ',none') : ds.shapedDevicesCsv;
  writeFileSync(join(lab.dir, 'network.json'), ds.networkJson);
  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), csv);
  return csv;
}

/** The 10k rounds: full / change / bare interleaved, then lqosd's memory holding that plan. */
async function tenKRounds(lab: Lab, targets: Targets): Promise<void> {
  const csv = writeInputs(lab, CIRCUITS, false);
  await startLabDaemon(lab, { env: DAEMON_ENV }); // lqosd applies the files on start
  const firstMs = await apply(lab, /applied \(full\)|already match the plan/);
  const tcText = readFileSync(join(lab.dir, 'state', 'debug', 'linux_tc.txt'), 'utf8');
  const tcCommands = tcText.split('\n').filter((l) => l.trim()).length;
  const batch = join(lab.dir, 'bare.batch');
  writeFileSync(batch, tcText);
  console.log(`${CIRCUITS} circuits: first LibreQoS run ${(firstMs / 1000).toFixed(1)} s, ${tcCommands} tc commands; ${ROUNDS} rounds`);
  const rates = new DeviceRates(lab, csv);
  let kernelFromLqosd = true;
  const fullLqosd: number[] = [];
  const changeLqosd: number[] = [];
  const r = await interleaved(
    ROUNDS,
    {
      full: async () => {
        toggleNode(lab);
        const ms = await apply(lab, /applied \(full\)/);
        fullLqosd.push(lastLqosdMs);
        kernelFromLqosd = true;
        return ms;
      },
      change: async () => {
        if (!kernelFromLqosd) {
          toggleNode(lab);
          await apply(lab, /applied \(full\)/);
          kernelFromLqosd = true;
        }
        const out: number[] = [];
        for (let i = 0; i < 2; i++) {
          const { id, mbps } = rates.change();
          out.push(await apply(lab, /applied \(incremental\): \d+ tc commands/));
          changeLqosd.push(lastLqosdMs);
          const ceil = await circuitCeil(lab, id);
          if (ceil !== `${mbps}Mbit`) throw new Error(`after the change ${id} has ceil ${ceil} in the kernel, expected ${mbps}Mbit`);
        }
        return out;
      },
      bare: async () => {
        await deleteRoots(lab);
        const t0 = performance.now();
        await execa('ip', ['netns', 'exec', lab.tb.ns.shaper, 'tc', '-batch', batch]);
        const ms = performance.now() - t0;
        kernelFromLqosd = false;
        return ms;
      },
    },
    (i, order) => console.log(`  round ${i + 1}/${ROUNDS}: ${order.join(', ')}`),
  );
  const ratios = r.full.map((f, i) => f / r.bare[i]!);
  console.log(`  LibreQoS full apply (structural change)       ${fmtSpread(r.full)}`);
  console.log(`  bare tc -batch of the same ${tcCommands} commands ${fmtSpread(r.bare)}`);
  console.log(`  ratio full / bare, per round                   ${fmtSpread(ratios, '', 2)}`);
  console.log(`    of which lqosd's apply (its log)             ${fmtSpread(fullLqosd.filter(Number.isFinite))}`);
  console.log(`  LibreQoS one-circuit rate change               ${fmtSpread(r.change)} (${r.change.length} changes, each read back with tc)`);
  console.log(`    of which lqosd's apply (its log)             ${fmtSpread(changeLqosd.filter(Number.isFinite))}`);
  if (!kernelFromLqosd) await apply(lab, /applied \(full\)/);
  const pid = await lqosdPid(lab);
  const m10 = await settledMemory(pid);
  console.log(`  lqosd (pid ${pid}) holding the ${CIRCUITS}-circuit plan: VmRSS ${m10.at3.toFixed(0)} MB after 3 s, ${m10.rssMB.toFixed(0)} MB settled, VmHWM ${m10.hwmMB.toFixed(0)} MB`);
  targets.atMost(`${CIRCUITS} circuits: LibreQoS full apply / bare tc -batch ≤ 1.3`, ratios, 1.3, '');
  targets.atMost(`${CIRCUITS} circuits: LibreQoS one-circuit change ≤ 100 ms`, r.change, 100);
}

/** lqosd applies the big plan (sqm none, lazy_queues MEM_LAZY); its held VmRSS against the target. */
async function bigApply(lab: Lab, targets: Targets): Promise<void> {
  const pid = await lqosdPid(lab);
  const target = `lqosd holding a ${MEM_CIRCUITS}-circuit plan (lazy_queues ${MEM_LAZY}): VmRSS ≤ ${HELD_TARGET_MB} MB after settling`;
  writeInputs(lab, MEM_CIRCUITS, true);
  if (MEM_LAZY !== 'No') await setLazyQueues(lab, pid, MEM_LAZY);
  console.log(`  applying ${MEM_CIRCUITS} circuits (sqm none, lazy_queues ${MEM_LAZY}) through LibreQoS … (the CLI waits up to 15 min for lqosd)`);
  try {
    const ms = await apply(lab, /applied \((full|incremental)\)/, ['--force']);
    const own = lastLqosdMs;
    const settled = await settledMemory(pid);
    console.log(
      `  ${MEM_CIRCUITS} circuits: LibreQoS apply ${(ms / 1000).toFixed(1)} s (lqosd's apply ${(own / 1000).toFixed(1)} s); ` +
        `lqosd VmRSS ${settled.at3.toFixed(0)} MB after 3 s, ${settled.rssMB.toFixed(0)} MB after ${settled.seconds} s ` +
        `(anon ${settled.anonMB.toFixed(0)}, file ${settled.fileMB.toFixed(0)}); VmHWM ${settled.hwmMB.toFixed(0)} MB; ` +
        `lqosd busy ${(settled.cpuPerS * 100).toFixed(0)} % of a CPU meanwhile`,
    );
    targets.check(target, `${settled.rssMB.toFixed(0)} MB (VmHWM ${settled.hwmMB.toFixed(0)} MB)`, settled.rssMB <= HELD_TARGET_MB);
  } catch (e) {
    let m = { rssMB: NaN, hwmMB: NaN }; // NaN: lqosd is gone
    try {
      m = memoryOf(pid);
    } catch {
      /* reported as NaN */
    }
    const why = (e as Error).message.split('\n').find((l) => /lqosd could not apply|exited/.test(l))?.slice(0, 200) ?? (e as Error).message.slice(0, 200);
    console.log(`  ${MEM_CIRCUITS} circuits: the apply failed (${why}); lqosd VmRSS ${m.rssMB.toFixed(0)} MB, VmHWM ${m.hwmMB.toFixed(0)} MB at that point`);
    targets.check(target, `not applied (${why.slice(0, 80)}); VmRSS ${m.rssMB.toFixed(0)} MB then`, false);
  }
  if (MEM_HOLD_S > 0) {
    console.log(`  holding the lab ${MEM_HOLD_S} s: lqosd pid ${pid}`);
    await new Promise((res) => setTimeout(res, MEM_HOLD_S * 1000));
  }
}

async function main(): Promise<void> {
  const targets = new Targets();
  console.log(`apply bench, end to end through LibreQoS → bus → lqosd → kernel: ${machineLine()}`);
  console.log(`  lqosd's environment: ${Object.entries(DAEMON_ENV).map(([k, v]) => `${k}=${v}`).join(' ') || '(inherited)'}`);
  const lab = await startLab({ id: ID, circuits: defaultLabCircuits.filter((c) => c.path === 'plain'), daemon: false });
  try {
    if (MEM_ONLY) {
      writeInputs(lab, MEM_ONLY_START_CIRCUITS, false);
      await startLabDaemon(lab, { env: DAEMON_ENV });
      console.log(`  --mem-only: lqosd started on ${MEM_ONLY_START_CIRCUITS} circuits, no 10k rounds`);
    } else {
      await tenKRounds(lab, targets);
    }
    if (MEM_CIRCUITS > 0) await bigApply(lab, targets);
    targets.report();
  } finally {
    await stopLabDaemon(lab).catch(() => undefined);
    await stopLab(ID);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
