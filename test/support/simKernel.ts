/**
 * A simulated tc kernel for unit tests of the apply engine (lib/apply/engine.ts) and the shaping
 * run (lib/shaping/run.ts), through the seams they already have: the engine's `wrap` command prefix,
 * or a `tc` first in PATH. The simulation lives in the test process; `tc` is a tiny client
 * (client.cjs) that sends its argv and stdin over a Unix socket and prints the reply.
 *
 * It keeps qdiscs and HTB classes per device with the kernel's rules the engine depends on (a
 * class needs its parent, a handle or class id is unique, `class del` needs the class and no
 * children and takes its leaf qdisc along, `qdisc del` takes the subtree), stops a `-batch` at the
 * first failing line printing `Command failed -:N` as tc does, and can fail the Nth mutating line
 * (counted over every batch) on purpose.
 */
import { createServer, type Server } from 'node:net';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { interfacesOf, parseConfigText } from '../../lib/config/load.ts';
import { runShaping, type ShapingRunArgs } from '../../lib/shaping/run.ts';
import { capturingLogger } from './log.ts';

interface SimQdisc {
  kind: string;
  handle: string;
  /** 'root' or the class / mq slot it hangs under. */
  parent: string;
  args: string;
}
interface SimClass {
  parent: string;
  rateKbit: number;
  ceilKbit: number;
}
interface Dev {
  qdiscs: Map<string, SimQdisc>;
  classes: Map<string, SimClass>;
}

const CLIENT = `const net = require('node:net');
const [sock, ...argv] = process.argv.slice(2);
const send = (input) => {
  const c = net.connect(sock, () => c.end(JSON.stringify({ argv, input })));
  let out = '';
  c.on('data', (d) => (out += d));
  c.on('end', () => { const r = JSON.parse(out); process.stdout.write(r.stdout); process.stderr.write(r.stderr); process.exitCode = r.code; });
};
if (argv.includes('-batch')) { let input = ''; process.stdin.on('data', (d) => (input += d)).on('end', () => send(input)); } else send('');
`;

class TcError extends Error {}

const UNIT: Record<string, number> = { bit: 0.001, kbit: 1, mbit: 1000, gbit: 1e6 };
function kbit(text: string): number {
  const m = /^([\d.]+)(bit|kbit|mbit|gbit)$/i.exec(text);
  if (!m) throw new TcError(`Illegal "rate" ${text}`);
  return Number(m[1]) * UNIT[m[2]!.toLowerCase()]!;
}
const major = (id: string) => id.split(':')[0]!;

export class SimKernel {
  readonly devs = new Map<string, Dev>();
  /** Every `-batch` run: its lines, in order. */
  readonly batches: string[][] = [];
  /** Mutating lines (not `show`) to fail, numbered from 1 over all batches. */
  failAt = new Set<number>();
  /** Mutating lines run (or failed) so far: what failAt counts. */
  mutations = 0;
  private server?: Server;
  /** The engine's `wrap`: runs `tc …` through the simulation. */
  wrap: string[] = [];
  /** A directory holding a `tc` that runs through the simulation (put it first in PATH). */
  binDir = '';

  constructor(devices: string[]) {
    for (const d of devices) this.devs.set(d, { qdiscs: new Map(), classes: new Map() });
  }

  async start(dir: string): Promise<void> {
    const sock = join(dir, 'tc.sock');
    const client = join(dir, 'client.cjs');
    this.binDir = join(dir, 'bin');
    mkdirSync(this.binDir, { recursive: true });
    writeFileSync(client, CLIENT);
    writeFileSync(join(this.binDir, 'tc'), `#!/bin/sh\nexec ${process.execPath} ${client} ${sock} "$@"\n`);
    chmodSync(join(this.binDir, 'tc'), 0o755);
    this.wrap = [process.execPath, client, sock];
    this.server = createServer((c) => {
      let data = '';
      c.on('data', (d) => (data += d));
      c.on('end', () => {
        const { argv, input } = JSON.parse(data) as { argv: string[]; input: string };
        c.end(JSON.stringify(this.invoke(argv[0] === 'tc' ? argv.slice(1) : argv, input)));
      });
    });
    await new Promise<void>((ok) => this.server!.listen(sock, ok));
  }

  stop(): Promise<void> {
    return new Promise((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }

  /** The state, ordered: equal snapshots mean the same qdiscs and classes with the same rates. */
  snapshot(): Record<string, { qdiscs: string[]; classes: string[] }> {
    const out: Record<string, { qdiscs: string[]; classes: string[] }> = {};
    for (const [name, d] of [...this.devs].sort(([a], [b]) => a.localeCompare(b))) {
      out[name] = {
        qdiscs: [...d.qdiscs.values()].map((q) => `${q.handle} ${q.kind} parent ${q.parent} ${q.args}`.trim()).sort(),
        classes: [...d.classes].map(([id, c]) => `${id} parent ${c.parent} rate ${c.rateKbit}kbit ceil ${c.ceilKbit}kbit`).sort(),
      };
    }
    return out;
  }

  /** Runs lines on this simulation directly (to build the reference state of a plan). */
  load(lines: string[]): void {
    for (const l of lines) this.exec(l.split(/\s+/));
  }

  private invoke(args: string[], input: string): { code: number; stdout: string; stderr: string } {
    if (args[0] === '-batch') {
      const lines = input.split('\n').filter((l) => l.trim());
      this.batches.push(lines);
      let stdout = '';
      for (let i = 0; i < lines.length; i++) {
        const words = lines[i]!.trim().split(/\s+/);
        try {
          if (!words.includes('show') && this.failAt.has(++this.mutations)) throw new TcError('Invalid argument (injected failure)');
          stdout += this.exec(words);
        } catch (e) {
          if (!(e instanceof TcError)) throw e;
          return { code: 1, stdout, stderr: `RTNETLINK answers: ${e.message}\nCommand failed -:${i + 1}\n` };
        }
      }
      return { code: 0, stdout, stderr: '' };
    }
    try {
      return { code: 0, stdout: this.exec(args), stderr: '' };
    } catch (e) {
      if (!(e instanceof TcError)) throw e;
      return { code: 2, stdout: '', stderr: `${e.message}\n` };
    }
  }

  private dev(words: string[]): Dev {
    const name = words[words.indexOf('dev') + 1]!;
    const d = this.devs.get(name);
    if (!d) throw new TcError(`Cannot find device "${name}"`);
    return d;
  }

  private exec(words: string[]): string {
    const json = words[0] === '-j';
    const [obj, verb] = json ? words.slice(1) : words;
    const d = this.dev(words);
    const arg = (k: string) => (words.includes(k) ? words[words.indexOf(k) + 1]! : undefined);
    if (obj === 'qdisc' && verb === 'show') {
      if (!json) throw new TcError('simulated tc: qdisc show only with -j');
      return JSON.stringify([...d.qdiscs.values()].map((q) => (q.parent === 'root' ? { kind: q.kind, handle: q.handle, root: true } : { kind: q.kind, handle: q.handle, parent: q.parent })));
    }
    if (obj === 'class' && verb === 'show') {
      const only = arg('classid');
      return [...d.classes]
        .filter(([id]) => !only || id === only)
        .map(([id, c]) => {
          const leaf = [...d.qdiscs.values()].find((q) => q.parent === id);
          return `class htb ${id} ${c.parent.endsWith(':') ? 'root' : `parent ${c.parent}`}${leaf ? ` leaf ${leaf.handle}` : ''} prio 0 rate ${c.rateKbit}Kbit ceil ${c.ceilKbit}Kbit burst 1600b cburst 1600b \n`;
        })
        .join('');
    }
    if (obj === 'qdisc') return this.qdisc(d, verb!, words, arg), '';
    if (obj === 'class') return this.klass(d, verb!, words, arg), '';
    throw new TcError(`simulated tc does not know: ${words.join(' ')}`);
  }

  private qdisc(d: Dev, verb: string, words: string[], arg: (k: string) => string | undefined): void {
    const parent = words.includes('root') ? 'root' : arg('parent');
    if (!parent) throw new TcError('qdisc without parent');
    const existing = [...d.qdiscs.values()].find((q) => q.parent === parent);
    if (verb === 'del') {
      if (!existing) throw new TcError('No such file or directory');
      this.dropQdisc(d, existing);
      return;
    }
    const handle = arg('handle');
    const at = words.indexOf('handle') + 2;
    const kind = words[at]!;
    const q: SimQdisc = { kind, handle: handle!, parent, args: words.slice(at + 1).join(' ') };
    if (verb === 'replace' && parent === 'root') {
      if (existing?.kind === kind && existing.handle === handle) return;
      if (existing) this.dropQdisc(d, existing);
    } else if (verb === 'add') {
      if (existing) throw new TcError('Exclusivity flag on, cannot modify.');
      if (d.qdiscs.has(q.handle)) throw new TcError('File exists');
      const mq = [...d.qdiscs.values()].find((x) => x.kind === 'mq' && x.handle === `${major(parent)}:`);
      if (!mq && !d.classes.has(parent)) throw new TcError(`parent ${parent} does not exist: No such file or directory`);
    } else throw new TcError(`simulated tc does not know: ${words.join(' ')}`);
    d.qdiscs.set(q.handle, q);
  }

  private klass(d: Dev, verb: string, words: string[], arg: (k: string) => string | undefined): void {
    const id = arg('classid');
    if (!id) throw new TcError('class without classid');
    if (verb === 'del') {
      if (!d.classes.has(id)) throw new TcError('No such file or directory');
      if ([...d.classes.values()].some((c) => c.parent === id)) throw new TcError('Device or resource busy');
      const leaf = [...d.qdiscs.values()].find((q) => q.parent === id);
      if (leaf) this.dropQdisc(d, leaf);
      d.classes.delete(id);
      return;
    }
    const parent = arg('parent')!;
    const c: SimClass = { parent, rateKbit: kbit(arg('rate')!), ceilKbit: kbit(arg('ceil') ?? arg('rate')!) };
    if (verb === 'change') {
      const old = d.classes.get(id);
      if (!old) throw new TcError('No such file or directory');
      if (old.parent !== parent) throw new TcError('Invalid argument (class change may not move a class)');
      d.classes.set(id, c);
      return;
    }
    if (verb !== 'add') throw new TcError(`simulated tc does not know: ${words.join(' ')}`);
    if (d.classes.has(id)) throw new TcError('File exists');
    const parentOk = parent.endsWith(':') ? d.qdiscs.get(parent)?.kind === 'htb' : d.classes.has(parent);
    if (!parentOk || major(parent) !== major(id)) throw new TcError(`parent ${parent} of ${id}: No such file or directory`);
    d.classes.set(id, c);
  }

  /** A qdisc and everything under it (its classes and their qdiscs). */
  private dropQdisc(d: Dev, q: SimQdisc): void {
    d.qdiscs.delete(q.handle);
    const m = major(q.handle);
    for (const other of [...d.qdiscs.values()]) if (other.parent !== 'root' && major(other.parent) === m && d.qdiscs.has(other.handle)) this.dropQdisc(d, other);
    for (const id of [...d.classes.keys()]) if (major(id) === m) d.classes.delete(id);
  }
}

/** What runShapingOnSim needs besides the fixed bridge config (eth0/eth1, 2 queues, no dry run). */
export type SimRunArgs = Omit<ShapingRunArgs, 'config' | 'ifaces' | 'queues' | 'log' | 'dryRun' | 'updateonly' | 'verbose'> & { dryRun?: boolean };

/**
 * runShaping on a two-port bridge config (eth0 → Internet, eth1 → customers, 2 queues) with the
 * simulated kernel's `tc` first in PATH; the run's log records come back with its result.
 */
export async function runShapingOnSim(k: SimKernel, args: SimRunArgs) {
  const config = parseConfigText('[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n', 'lqos.conf').config;
  const { log, records } = capturingLogger('info');
  const path = process.env.PATH;
  process.env.PATH = `${k.binDir}:${path}`;
  try {
    const r = await runShaping({ config, ifaces: interfacesOf(config)!, queues: 2, log, updateonly: false, verbose: false, ...args, dryRun: args.dryRun ?? false });
    return { ...r, records };
  } finally {
    process.env.PATH = path;
  }
}
