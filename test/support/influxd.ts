/** Debian's InfluxDB (1.6) on loopback for the tests: started in a temp directory, queried over HTTP, stopped and restarted at will. */
import { spawn, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Influxd {
  url: string;
  port: number;
  /** Starts (again) on the same port and data directory. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** InfluxQL against `db`: the first series' rows as objects (column → value). */
  query(db: string, q: string): Promise<Record<string, unknown>[]>;
  createDatabase(db: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** An HTTP request to the server: fetch, or curl inside `netns` (its loopback is not ours). */
export async function http(netns: string | undefined, url: string, init: { method?: string; body?: string } = {}): Promise<{ status: number; text: string }> {
  if (!netns) {
    const r = await fetch(url, { method: init.method ?? 'GET', ...(init.body !== undefined ? { body: init.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}) });
    return { status: r.status, text: await r.text() };
  }
  const args = ['netns', 'exec', netns, 'curl', '-s', '-o', '-', '-w', '\n%{http_code}', '-X', init.method ?? 'GET', ...(init.body !== undefined ? ['--data', init.body] : []), url];
  const r = await execa('ip', args, { reject: false });
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)) || 0, text: r.stdout.slice(0, Math.max(0, nl)) };
}

/** influxd on 127.0.0.1 (of network namespace `netns` when given: lqosd in a lab writes to it there). */
export async function startInfluxd(opts: { netns?: string } = {}): Promise<Influxd> {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-influxd-'));
  const [port, rpc] = [await freeTcpPort(), await freeTcpPort()];
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(
    conf,
    `reporting-enabled = false\nbind-address = "127.0.0.1:${rpc}"\n[meta]\n  dir = "${dir}/meta"\n[data]\n  dir = "${dir}/data"\n  wal-dir = "${dir}/wal"\n  query-log-enabled = false\n` +
      `[monitor]\n  store-enabled = false\n[http]\n  bind-address = "127.0.0.1:${port}"\n  log-enabled = false\n[logging]\n  level = "error"\n`,
  );
  const url = `http://127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;
  let log = '';
  const h: Influxd = {
    url,
    port,
    async start() {
      proc = opts.netns
        ? spawn('ip', ['netns', 'exec', opts.netns, 'influxd', '-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('influxd', ['-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout!.on('data', (d) => (log = (log + d).slice(-4000)));
      proc.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
      for (let i = 0; i < 200; i++) {
        if (proc.exitCode !== null) throw new Error(`influxd exited at start (${proc.exitCode}): ${log}`);
        const ok = await http(opts.netns, `${url}/ping`).then((r) => r.status === 204, () => false);
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`influxd did not answer /ping within 20 s: ${log}`);
    },
    async stop() {
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
    async query(db, q) {
      const r = await http(opts.netns, `${url}/query?${new URLSearchParams({ db, q, epoch: 's' })}`);
      const body = JSON.parse(r.text) as { results: { series?: { columns: string[]; values: unknown[][] }[]; error?: string }[] };
      const res = body.results[0]!;
      if (res.error) throw new Error(`InfluxQL ${q}: ${res.error}`);
      const s = res.series?.[0];
      return s ? s.values.map((row) => Object.fromEntries(s.columns.map((c, i) => [c, row[i]]))) : [];
    },
    async createDatabase(db) {
      const r = await http(opts.netns, `${url}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE DATABASE "${db}"` }).toString() });
      if (r.status !== 200) throw new Error(`CREATE DATABASE ${db}: ${r.status} ${r.text}`);
    },
    async cleanup() {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await h.start();
  return h;
}
