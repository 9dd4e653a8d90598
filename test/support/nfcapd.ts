/** Debian's nfcapd on loopback as the collector under test, and nfdump to read back what it stored. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export interface Collector {
  port: number;
  /** Stops nfcapd (it writes its file on the way out) and returns every flow nfdump reads back. */
  stopAndRead(): Promise<NfdumpFlow[]>;
  /** After stopAndRead: the sequence failures nfcapd counted (lost or out-of-order packets). */
  sequenceFailures(): Promise<number>;
  cleanup(): void;
}

/** The fields of nfdump's JSON output this project checks. */
export interface NfdumpFlow {
  src4_addr?: string;
  dst4_addr?: string;
  src6_addr?: string;
  dst6_addr?: string;
  src_port: number;
  dst_port: number;
  proto: number;
  tcp_flags?: string;
  in_bytes: number;
  in_packets: number;
  first: string;
  last: string;
  [k: string]: unknown;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** nfcapd on 127.0.0.1 (of network namespace `netns` when given) at `port` (default: a free one). */
export async function startNfcapd(opts: { netns?: string; port?: number } = {}): Promise<Collector> {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-nfcapd-'));
  const port = opts.port ?? (await freeUdpPort());
  const args = ['-b', '127.0.0.1', '-p', String(port), '-w', dir, '-t', '3600'];
  const proc: ChildProcess = opts.netns
    ? spawn('ip', ['netns', 'exec', opts.netns, 'nfcapd', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('nfcapd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  // Ready once the socket is bound: poll with ss.
  for (let i = 0; i < 100; i++) {
    const ss = await execa(opts.netns ? 'ip' : 'ss', [...(opts.netns ? ['netns', 'exec', opts.netns, 'ss'] : []), '-Hnul', `sport = :${port}`], { reject: false });
    if (ss.stdout.includes(`:${port}`)) break;
    if (proc.exitCode !== null) throw new Error(`nfcapd exited at start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    async stopAndRead() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      const files = readdirSync(dir).filter((f) => f.startsWith('nfcapd.') && !f.includes('current'));
      if (files.length === 0) throw new Error(`nfcapd wrote no file in ${dir} (${readdirSync(dir).join(', ')}); its log: ${log}`);
      const flows: NfdumpFlow[] = [];
      for (const f of files) {
        const r = await execa('nfdump', ['-r', join(dir, f), '-o', 'json'], { reject: false, all: true });
        if (r.exitCode !== 0) throw new Error(`nfdump -r ${f}: ${r.all}`);
        const text = r.stdout.trim();
        if (text !== '' && text !== '[]') flows.push(...(JSON.parse(text) as NfdumpFlow[]));
      }
      return flows;
    },
    async sequenceFailures() {
      let total = 0;
      for (const f of readdirSync(dir).filter((n) => n.startsWith('nfcapd.') && !n.includes('current'))) {
        const r = await execa('nfdump', ['-r', join(dir, f), '-I'], { reject: false, all: true });
        const m = /^Sequence failures: (\d+)$/m.exec(r.stdout);
        if (!m) throw new Error(`nfdump -I ${f} printed no sequence failures line: ${r.all}`);
        total += Number(m[1]);
      }
      return total;
    },
    cleanup() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
