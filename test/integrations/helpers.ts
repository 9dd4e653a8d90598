/** Helpers for the integration tests: configs, temp dirs, goldens, log capture, failure checks. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { parseConfigText } from '../../lib/config/load.ts';
import type { LqosConfig } from '../../lib/config/schema.ts';
import { IntegrationError } from '../../lib/integrations/common/errors.ts';
import type { IntegrationLogger, LogFn } from '../../lib/integrations/common/log.ts';
import { validateIntegrationOutput } from '../../lib/integrations/common/output.ts';
import type { RunOptions, RunResult } from '../../lib/integrations/common/run.ts';
import type { FakeControl } from '../fixtures/crm/server.ts';
import { compareGolden } from '../support/golden.ts';

export const GOLDEN_ROOT = resolve(import.meta.dirname, '../fixtures/crm/golden');
/** Short timeouts/backoff so failure tests stay fast. */
export const FAST_HTTP = { timeoutMs: 250, retries: 2, backoffMs: 5, maxBackoffMs: 20 };

export function config(toml: string): LqosConfig {
  return parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n${toml}`, 'test.conf').config;
}

/**
 * The fake CRM server of a test file: started before the file's tests and closed after them. The
 * returned object is filled in on start (the fake servers are plain objects of references, so it then
 * is the server).
 */
export function useFakeServer<T extends { close(): Promise<void> }>(start: () => Promise<T>): T {
  const srv = {} as T;
  before(async () => {
    Object.assign(srv, await start());
  });
  after(() => srv.close());
  return srv;
}

/** What every CRM test config starts with; a test's own lines for the same section come after these. */
const CRM_DEFAULTS: Record<string, string[]> = {
  queues: ['downlink_bandwidth_mbps = 10000', 'uplink_bandwidth_mbps = 10000'],
  ip_ranges: ['ignore_subnets = ["100.64.99.0/24"]'],
};

/** lqos.conf of a CRM test: a 10000/10000 Mbps link and ignore_subnets 100.64.99.0/24, plus `toml`. */
export function crmConfig(toml: string): LqosConfig {
  let text = toml;
  for (const [section, lines] of Object.entries(CRM_DEFAULTS)) {
    const header = `[${section}]\n`;
    const defaults = `${header}${lines.join('\n')}\n`;
    text = text.includes(header) ? text.replace(header, defaults) : `${defaults}${text}`;
  }
  return config(text);
}

export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-integ-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger that keeps every line (object + message) as text. */
export function captureLogger(): IntegrationLogger & { lines: string[] } {
  const lines: string[] = [];
  const fn: LogFn = ((a: unknown, b?: string) => {
    lines.push(typeof a === 'string' ? a : `${JSON.stringify(a)} ${b ?? ''}`);
  }) as LogFn;
  return { lines, debug: fn, info: fn, warn: fn, error: fn };
}

export function runOpts(outDir: string, log = captureLogger()): RunOptions {
  return { log, outDir, http: FAST_HTTP };
}

/** A run's shape: how many sites, APs, circuits and devices it produced. */
export function counts(r: RunResult): { sites: number; aps: number; circuits: number; devices: number } {
  return { sites: r.sites, aps: r.aps, circuits: r.circuits, devices: r.devices };
}

export interface GoldenRun {
  r: RunResult;
  log: ReturnType<typeof captureLogger>;
  /** The requests the fake server saw during the run. */
  calls: FakeControl['requests'];
  /** Skipped circuit id → reason. */
  reasons: Record<string, string>;
}

/** Runs an integration into a fresh temp dir with a capturing logger, then checks the pair against golden/<name>/. */
export async function runGolden(
  t: { after(fn: () => void): void },
  name: string,
  srv: { control: FakeControl },
  run: (opts: RunOptions) => Promise<RunResult>,
): Promise<GoldenRun> {
  const dir = tempDir(t);
  const log = captureLogger();
  const before = srv.control.requests.length;
  const r = await run(runOpts(dir, log));
  const calls = srv.control.requests.slice(before);
  checkGolden(name, dir);
  return { r, log, calls, reasons: Object.fromEntries(r.skipped.map((s) => [s.id, s.reason])) };
}

/**
 * Compares the produced pair with golden/<name>/ and validates it. A missing golden fails;
 * UPDATE_GOLDEN=1 rewrites (refused when CI is set: test/support/golden.ts).
 */
export function checkGolden(name: string, outDir: string, root = GOLDEN_ROOT): void {
  const net = readFileSync(join(outDir, 'network.json'), 'utf8');
  const csv = readFileSync(join(outDir, 'ShapedDevices.csv'), 'utf8');
  const issues = validateIntegrationOutput(net, csv);
  const errors = issues.filter((i) => i.severity === 'error');
  assert.deepEqual(errors, [], 'the produced pair must pass validateInputs');
  const gdir = join(root, name);
  const how = `UPDATE_GOLDEN=1 scripts/run-tests test/integrations/${name.split('/')[0]}.test.ts`;
  compareGolden(join(gdir, 'network.json'), net, how);
  compareGolden(join(gdir, 'ShapedDevices.csv'), csv, how);
}

export const OLD_NETWORK = '{\n  "Old Site": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 100 }\n}\n';
export const OLD_CSV = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\nold,Old,old-d,Old,Old Site,,100.64.0.1,,1,1,10,10,\n';

/**
 * Runs `run` in a dir holding an old pair; asserts an IntegrationError whose message matches every
 * pattern, and that the old files are byte-identical afterwards (and nothing else appeared).
 */
export async function expectFailureKeepsFiles(
  t: { after(fn: () => void): void },
  run: (opts: RunOptions) => Promise<RunResult>,
  patterns: RegExp[],
  secrets: string[] = [],
): Promise<IntegrationError> {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'network.json'), OLD_NETWORK);
  writeFileSync(join(dir, 'ShapedDevices.csv'), OLD_CSV);
  const log = captureLogger();
  let caught: unknown;
  try {
    await run(runOpts(dir, log));
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof IntegrationError, `expected an IntegrationError, got ${String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
  assert.equal(readFileSync(join(dir, 'network.json'), 'utf8'), OLD_NETWORK);
  assert.equal(readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'), OLD_CSV);
  assert.deepEqual(readdirSync(dir).sort(), ['ShapedDevices.csv', 'network.json']);
  for (const s of secrets) {
    assert.ok(!caught.message.includes(s), 'error message leaks a credential');
    for (const l of log.lines) assert.ok(!l.includes(s), `log line leaks a credential: ${l}`);
  }
  return caught;
}
