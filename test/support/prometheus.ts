/**
 * Prometheus for the tests: a parser of the text exposition format (what /metrics serves), and
 * Debian's `prometheus` server started with a temporary config and storage directory, scraping one
 * target every second, queried through its HTTP API (/api/v1/query), stopped and removed after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, http as nsHttp } from './influxd.ts';

export interface ExpositionSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Family name → `# TYPE` (counter, gauge, ...). */
  types: Map<string, string>;
  helps: Map<string, string>;
  samples: ExpositionSample[];
}

/** Label pairs of `{a="x",b="y\"z"}` (the braces' content), unescaping \\, \" and \n. */
function parseLabels(text: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
    if (!m) throw new Error(`bad label set in: ${line}`);
    i += m[0].length;
    let v = '';
    for (; i < text.length && text[i] !== '"'; i++) {
      if (text[i] !== '\\') v += text[i];
      else {
        const e = text[++i];
        if (e !== '\\' && e !== '"' && e !== 'n') throw new Error(`bad escape \\${e} in: ${line}`);
        v += e === 'n' ? '\n' : e;
      }
    }
    if (text[i] !== '"') throw new Error(`unterminated label value in: ${line}`);
    out[m[1]!] = v;
    i++;
    if (text[i] === ',') i++;
  }
  return out;
}

/** Parses the text format strictly: any line it does not understand throws. */
export function parseExposition(text: string): Exposition {
  const e: Exposition = { types: new Map(), helps: new Map(), samples: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? e.helps : e.types).set(meta[2]!, meta[3]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    e.samples.push({ name: m[1]!, labels: m[2] ? parseLabels(m[2], line) : {}, value: Number(m[3]) });
  }
  return e;
}

/** The sample of `name` whose labels include `labels`, or undefined. */
export function sampleOf(e: Exposition, name: string, labels: Record<string, string> = {}): ExpositionSample | undefined {
  return e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

export interface PromServer {
  url: string;
  /** Instant query (at `time`, unix seconds; default now): the result vector ([] when nothing matches). */
  query(q: string, time?: number): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Prometheus's own view of the scrape target (health, lastError). */
  targets(): Promise<Array<{ health: string; lastError: string; scrapeUrl: string }>>;
  cleanup(): Promise<void>;
}

/**
 * `prometheus` on 127.0.0.1 (of network namespace `netns` when given, beside lqosd there), scraping
 * `target` (host:port) at /metrics every second, with `bearer` as the scrape's bearer token.
 */
export async function startPrometheus(opts: { target: string; netns?: string; bearer?: string }): Promise<PromServer> {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-prometheus-'));
  const port = await freeTcpPort();
  const auth = opts.bearer ? `    authorization:\n      type: Bearer\n      credentials_file: ${join(dir, 'token')}\n` : '';
  if (opts.bearer) writeFileSync(join(dir, 'token'), opts.bearer, { mode: 0o600 });
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: lqosd\n    metrics_path: /metrics\n${auth}    static_configs:\n      - targets: ['${opts.target}']\n`,
  );
  const args = [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ];
  const proc: ChildProcess = opts.netns ? spawn('ip', ['netns', 'exec', opts.netns, 'prometheus', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn('prometheus', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (d) => (log = (log + d).slice(-4000)));
  proc.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const api = async (path: string) => {
    const r = await nsHttp(opts.netns, `${url}${path}`);
    const body = JSON.parse(r.text) as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? r.text}`);
    return body.data;
  };
  const server: PromServer = {
    url,
    query: async (q, time) => ((await api(`/api/v1/query?${new URLSearchParams({ query: q, ...(time === undefined ? {} : { time: String(time) }) })}`)) as { result: Array<{ metric: Record<string, string>; value: [number, string] }> }).result,
    targets: async () => ((await api('/api/v1/targets')) as { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }).activeTargets,
    async cleanup() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) break;
    if (await nsHttp(opts.netns, `${url}/-/ready`).then((r) => r.status === 200, () => false)) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.cleanup();
  throw new Error(`prometheus did not become ready within 30 s (exit ${proc.exitCode}): ${log}`);
}
