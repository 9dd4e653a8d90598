/** The namespace lab (lab/labEnv.ts) for kernel tests: started and shaped once by the real LibreQoS command. */
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { runLabLibreQoS, startLab, wireRate, type Lab, type LabCircuit } from '../../lab/labEnv.ts';
import { nsExec } from '../../lab/testbed.ts';
import { describeRate, median, shortOfPlan, wireRateProblem } from './rates.ts';
import { describeMeasured, measureAgainIfBusy } from './machineLoad.ts';

/** The Internet-side address of the lab's VLAN-tagged path (lab/labEnv.ts). */
const LAB_VLAN_SERVER = '10.98.0.1';

/** startLab, then LibreQoS shapes it; asserts the run succeeded (its output is the message). */
export async function startShapedLab(opts: Parameters<typeof startLab>[0]): Promise<Lab> {
  const lab = await startLab(opts);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  return lab;
}

/** One receiver interval of a live flow, placed on the wall clock (Date.now() ms). */
export interface FlowInterval {
  start: number;
  end: number;
  /** Goodput (Mbit/s) and the corresponding wire rate (Mbit/s, lab/labEnv.ts wireRate). */
  goodput: number;
  wire: number;
}

export interface LiveFlow {
  /** Intervals received so far (grows while the flow runs). */
  intervals: FlowInterval[];
  /** Resolves once an interval ending at or after wall-clock `at` has arrived. */
  until(at: number): Promise<void>;
  /** Ends the flow (SIGINT to the client) and returns every interval. */
  stop(): Promise<FlowInterval[]>;
}

let nextPort = 6000 + Math.floor(Math.random() * 1000);

/**
 * iperf3 runs at a raised priority: on the shared 2-core machine a starved sender (not the shaper)
 * otherwise limits some intervals. The shaper's rate is what is measured, not the scheduler's.
 */
const NICE = ['nice', '-n', '-10'];

/** Receiver interval lines of iperf3's text output (`-f k`): start, end (s) and Kbit/s. */
function textIntervals(text: string): Array<{ a: number; b: number; kbps: number }> {
  const out: Array<{ a: number; b: number; kbps: number }> = [];
  for (const line of text.split('\n')) {
    const m = INTERVAL_LINE.exec(line);
    if (m) out.push({ a: Number(m[1]), b: Number(m[2]), kbps: Number(m[3]) });
  }
  return out;
}
const INTERVAL_LINE = /\]\s+([\d.]+)-([\d.]+)\s+sec\s+\S+\s+\S+\s+([\d.]+)\s+Kbits\/sec\s*$/;

/** A one-shot iperf3 server in the lab's Internet namespace on `address`, resolved once it is listening. */
async function startIperfServer(lab: Lab, address: string, port: number): Promise<{ proc: ResultPromise }> {
  const server = execa('ip', ['netns', 'exec', lab.tb.ns.inet, ...NICE, 'iperf3', '-s', '-1', '--forceflush', '-f', 'k', '-i', '0.5', '-p', String(port), '-B', address], { reject: false, buffer: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`iperf3 server in ${lab.tb.ns.inet} did not report listening within 15 s`)), 15_000);
    server.stdout?.on('data', (d: Buffer) => {
      if (String(d).includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void server.then((r) => reject(new Error(`iperf3 server on ${address}:${port} exited (${r.exitCode}) before listening`)));
  });
  return { proc: server };
}

interface IperfInterval {
  sum: { start: number; end: number; bits_per_second: number };
}

/**
 * Wire rate (Mbit/s) of one TCP transfer between customer address `ip` and the lab's Internet host
 * (the VLAN server for the VLAN path), `direction` as seen by the customer: the median of the
 * receiver's 0.5 s intervals over `seconds` seconds after 1 s of slow start, whole intervals only (the
 * receiver's own count: the server's for an upload, via --get-server-output). HTB holds a shaper-limited
 * interval at the class rate, and an interval falls below it only when the end hosts were short of CPU
 * (this machine's default congestion control, BBR, keeps just a few ms queued in the class, so a stall
 * of the sender or receiver empties it), so the median is the shaper's rate even if a few intervals were
 * starved; a systematic error (a wrong rate in the kernel) moves every interval and the median with it.
 * iperf3's end-of-test sum is not used: it reads 1–3 % low here (the connection's start and end are in it).
 */
export async function measureWire(lab: Lab, ip: string, direction: 'download' | 'upload', seconds = 5): Promise<{ wire: number; samples: number[] }> {
  const v6 = ip.includes(':');
  const vlan = lab.circuits.some((c) => c.path === 'vlan' && c.ipv4 === ip);
  const address = vlan ? LAB_VLAN_SERVER : v6 ? lab.tb.inetIp6 : lab.tb.inetIp4;
  const port = nextPort++;
  const { proc: server } = await startIperfServer(lab, address, port);
  try {
    const args = ['-c', address, '-p', String(port), '-B', ip, '-t', String(seconds + 1), '-i', '0.5', '-f', 'k', '-J', '--get-server-output'];
    if (direction === 'download') args.push('-R');
    const r = await nsExec(lab.tb.ns.cust, NICE[0]!, [...NICE.slice(1), 'iperf3', ...args], { reject: false, timeout: (seconds + 20) * 1000 });
    let j: { error?: string; intervals?: IperfInterval[]; server_output_text?: string } = {};
    try { j = JSON.parse(String(r.stdout) || '{}'); } catch { /* reported below */ }
    const intervals = direction === 'download'
      ? j.intervals?.map((i) => ({ a: i.sum.start, b: i.sum.end, kbps: i.sum.bits_per_second / 1000 }))
      : j.server_output_text === undefined ? undefined : textIntervals(j.server_output_text);
    assert.ok(!j.error && intervals, `iperf3 ${direction} ${ip} -> ${address} failed: ${j.error ?? String(r.stderr || r.stdout).slice(0, 400)}`);
    // The run's last interval can be cut short by its end: only whole ones count there. Earlier, a
    // reporting timer that fired late (a busy CPU) leaves one long and one short interval, both complete.
    const last = intervals.at(-1);
    const whole = intervals.filter((i) => i.a >= 1 - 1e-6 && i.b <= seconds + 1 + 1e-6 && i.b - i.a >= (i === last ? 0.45 : 0.25));
    assert.ok(whole.length >= seconds * 2 - 1, `iperf3 ${direction} ${ip}: only ${whole.length} whole receiver intervals after slow start: ${JSON.stringify(intervals)}`);
    const samples = whole.map((i) => wireRate(i.kbps / 1000, v6));
    return { wire: median(samples), samples };
  } finally {
    server.kill('SIGKILL');
    await server.catch(() => undefined);
  }
}

export type Direction = 'download' | 'upload';

/**
 * `measure` for every item in both directions: every item's download at the same time, then every
 * item's upload at the same time (a round lasts as long as one measurement, not one per item). Each lab
 * circuit has its own HTB class per direction and the parents are far above the sum, so flows of
 * different circuits do not share a limit. The two directions of one circuit are never measured
 * together: the reverse flow's ACKs would take a share of the class being measured (about 5 % of a
 * 4 Mbit/s upload class beside a 10 Mbit/s download). Every measurement of a round is awaited before
 * the first failure is rethrown, so no iperf3 is left running. Results in item order, download first.
 */
export async function measureBothDirections<T, R>(items: readonly T[], measure: (item: T, direction: Direction) => Promise<R>): Promise<Array<{ item: T; direction: Direction; result: R }>> {
  const rounds: Array<Array<{ item: T; direction: Direction; result: R }>> = [];
  for (const direction of ['download', 'upload'] as const) {
    const settled = await Promise.allSettled(items.map(async (item) => measure(item, direction)));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    rounds.push(settled.map((s, i) => ({ item: items[i]!, direction, result: (s as PromiseFulfilledResult<R>).value })));
  }
  return items.flatMap((_, i) => rounds.map((round) => round[i]!));
}

/** One lab circuit's measured wire rate (measureWire) in one direction, against its plan. */
export interface CircuitRate {
  circuit: LabCircuit;
  direction: Direction;
  plan: number;
  wire: number;
  samples: number[];
  /** The diagnostic line: rate vs plan and the 0.5 s intervals. */
  line: string;
  /** The ±3 % failure text, undefined when within (test/support/rates.ts wireRateProblem). */
  problem?: string;
  /** What the machine spent its CPUs on while this measurement ran (test/support/machineLoad.ts describeLoad). */
  machine: string;
}

/**
 * Wire rate of every circuit in both directions at its address (IPv4, else IPv6), `seconds` of
 * 0.5 s intervals each (measureWire), the circuits measured at the same time (measureBothDirections).
 *
 * What the machine spent its CPUs on meanwhile is recorded (test/support/machineLoad.ts). When a
 * circuit comes in under plan while work that is not the lab's took a whole CPU for 2 s or more, the
 * whole measurement is taken once more and that one counts: a miss then says nothing about the shaper.
 * The lines are then the second attempt's, each with the first attempt's rate appended, and `machine`
 * says why it was set aside; a miss without such load, a rate over plan, or a second miss stands, and
 * its problem text says what the machine was doing.
 */
export async function measureCircuits(lab: Lab, circuits: readonly LabCircuit[], seconds: number): Promise<CircuitRate[]> {
  const once = async () => {
    const all = await measureBothDirections(circuits, (c, direction) => measureWire(lab, c.ipv4 || c.ipv6, direction, seconds));
    return all.map(({ item: circuit, direction, result: { wire, samples } }) => {
      const plan = direction === 'download' ? circuit.down : circuit.up;
      const what = `${circuit.id} ${direction}`;
      const line = `${describeRate(wire, plan, what)}; intervals ${samples.map((v) => v.toFixed(2)).join(' ')}`;
      return { circuit, direction, plan, wire, samples, line, problem: wireRateProblem(wire, plan, what) };
    });
  };
  const m = await measureAgainIfBusy(once, (rates) => rates.some((r) => shortOfPlan(r.wire, r.plan)), labNamespaces(lab));
  const machine = describeMeasured(m);
  return m.result.map((r, i) => ({
    ...r,
    machine,
    line: m.setAside ? `${r.line}; first attempt ${m.setAside.result[i]!.wire.toFixed(2)} (set aside: the machine was busy)` : r.line,
    problem: r.problem && `${r.problem} (machine during the measurement: ${machine})`,
  }));
}

/** The `ip netns` names of a lab (what measureAgainIfBusy counts as the lab's). */
export function labNamespaces(lab: Lab): string[] {
  return Object.values(lab.tb.ns).filter((n): n is string => typeof n === 'string' && n !== '');
}

/**
 * A TCP download (iperf3 -R) from the lab's Internet host to customer address `ip` that runs until
 * stopped, reporting every `intervalS` seconds. iperf3 3.12 has no streaming JSON, so the client prints
 * text (--forceflush) and each line is read as it arrives: an interval that ends b seconds into the test
 * and arrives at wall time w puts the test start at ≤ w − b; the smallest such value places every
 * interval on the wall clock (to within the few ms a line takes to arrive), so windows can be taken
 * relative to the moment a command started instead of an assumed offset.
 */
export async function startLiveFlow(lab: Lab, ip: string, intervalS = 0.5): Promise<LiveFlow> {
  const port = nextPort++;
  const { proc: server } = await startIperfServer(lab, lab.tb.inetIp4, port);
  const client = execa('ip', ['netns', 'exec', lab.tb.ns.cust, ...NICE, 'iperf3', '-c', lab.tb.inetIp4, '-p', String(port), '-B', ip, '-R', '-t', '120', '-i', String(intervalS), '-f', 'k', '--forceflush'], { reject: false, buffer: false });
  const raw: Array<{ a: number; b: number; kbps: number; arrived: number }> = [];
  const intervals: FlowInterval[] = [];
  const waiters: Array<{ at: number; resolve: () => void }> = [];
  let text = '';
  let log = '';
  let ended = false;
  client.stderr?.on('data', (d: Buffer) => (log = (log + String(d)).slice(-2000)));
  const place = () => {
    const zero = Math.min(...raw.map((r) => r.arrived - r.b * 1000));
    intervals.length = 0;
    for (const r of raw) intervals.push({ start: zero + r.a * 1000, end: zero + r.b * 1000, goodput: r.kbps / 1000, wire: wireRate(r.kbps / 1000, ip.includes(':')) });
    for (const w of waiters.splice(0)) {
      if (intervals.some((i) => i.end >= w.at)) w.resolve();
      else waiters.push(w);
    }
  };
  client.stdout?.on('data', (d: Buffer) => {
    const arrived = Date.now();
    text += String(d);
    log = (log + String(d)).slice(-2000);
    const lines = text.split('\n');
    text = lines.pop() ?? '';
    for (const line of lines) {
      const m = INTERVAL_LINE.exec(line);
      if (m) raw.push({ a: Number(m[1]), b: Number(m[2]), kbps: Number(m[3]), arrived });
    }
    if (raw.length) place();
  });
  const done = client.then((r) => {
    ended = true;
    return r;
  });
  return {
    intervals,
    until: (at) => new Promise<void>((resolve, reject) => {
      if (intervals.some((i) => i.end >= at)) return resolve();
      waiters.push({ at, resolve });
      void done.then((r) => reject(new Error(`the iperf3 flow to ${ip} ended (exit ${r.exitCode}) before ${new Date(at).toISOString()}: ${log.slice(-400)}`)));
    }),
    stop: async () => {
      if (!ended) client.kill('SIGINT');
      const r = await done;
      server.kill('SIGKILL');
      await server.catch(() => undefined);
      assert.ok(raw.length > 0, `the iperf3 flow to ${ip} reported no interval (exit ${r.exitCode}): ${log.slice(-400)}`);
      return intervals;
    },
  };
}

/**
 * Median wire rate (Mbit/s) of the intervals lying wholly inside [from, to] (wall-clock ms; median as
 * in measureWire); asserts there are at least `minSamples` of them (`what` names the window).
 */
export function windowWire(intervals: FlowInterval[], from: number, to: number, minSamples: number, what: string): { wire: number; samples: number[] } {
  const inside = intervals.filter((i) => i.start >= from && i.end <= to);
  const all = intervals.map((i) => `${((i.start - from) / 1000).toFixed(2)}s:${i.wire.toFixed(2)}`).join(' ');
  assert.ok(inside.length >= minSamples, `${what}: only ${inside.length} interval(s) inside the window, need ${minSamples} (intervals, s from window start: ${all})`);
  return { wire: median(inside.map((i) => i.wire)), samples: inside.map((i) => i.wire) };
}

/** What changeUnderFlow saw: wall-clock ms of the flow's start, of the change's start (t0) and end (t1). */
export interface ChangeUnderFlow {
  flowStart: number;
  t0: number;
  t1: number;
  intervals: FlowInterval[];
}

/**
 * Runs `change` (e.g. a LibreQoS run) under a live download to `ip`: the flow runs `warmupS` seconds
 * first; t0 is taken right before `change` starts and t1 when it returns; the flow then runs on until
 * `settleS + measureS` seconds after t1, so the window after the change is always complete however long
 * the change took. Only intervals up to settleS + measureS after t1 are returned.
 */
export async function changeUnderFlow(lab: Lab, ip: string, change: () => Promise<void>, opts: { warmupS?: number; settleS?: number; measureS?: number } = {}): Promise<ChangeUnderFlow> {
  const { warmupS = 3.5, settleS = 1, measureS = 3.5 } = opts;
  const started = Date.now();
  const flow = await startLiveFlow(lab, ip);
  try {
    await flow.until(started + warmupS * 1000);
    const t0 = Date.now();
    await change();
    const t1 = Date.now();
    const windowEnd = t1 + (settleS + measureS) * 1000;
    await flow.until(windowEnd + 500);
    // Intervals after windowEnd are dropped: the last one is cut short by the client's SIGINT.
    const intervals = (await flow.stop()).filter((i) => i.end <= windowEnd);
    return { flowStart: intervals[0]!.start, t0, t1, intervals };
  } finally {
    await flow.stop().catch(() => undefined);
  }
}

/**
 * Wire rate (Mbit/s) of a live flow over [from, to] (wall-clock ms): the flow's intervals weighted by
 * their overlap with the span; asserts the intervals cover at least 95 % of it.
 */
export function wireOver(intervals: FlowInterval[], from: number, to: number, what: string): number {
  let covered = 0;
  let bits = 0;
  for (const i of intervals) {
    const overlap = Math.min(i.end, to) - Math.max(i.start, from);
    if (overlap <= 0) continue;
    covered += overlap;
    bits += overlap * i.wire;
  }
  assert.ok(covered >= 0.95 * (to - from), `${what}: the flow's intervals cover only ${covered.toFixed(0)} of ${(to - from).toFixed(0)} ms of the span`);
  return bits / covered;
}
