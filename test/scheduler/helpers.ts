/**
 * Helpers for the scheduler tests: a temporary workspace (dry-run config shaping on `lo`, the example
 * inputs, run/state/log dirs) and an in-process lqosd whose `refresh` runs the real LibreQoS (dry run)
 * through a wrapper that records when each refresh request arrived.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDaemon, type RunningDaemon, type StartDaemonOptions } from '../../lib/daemon/daemon.ts';
import { createLogger } from '../../lib/util/log.ts';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const quiet = createLogger('test', process.env.LQOS_TEST_LOG ? 'debug' : 'silent');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SchedWorkspace {
  dir: string;
  config: string;
  stateDir: string;
  runDir: string;
  busPath: string;
  logDir: string;
  refreshLog: string;
  devices: string;
  network: string;
  overrides: string;
  /** Times (ms since epoch) at which lqosd started a refresh. */
  refreshes(): number[];
  /** Atomic save (temp + rename), like an editor or the web UI. */
  save(name: string, text: string): void;
  cleanup(): void;
}

export function configText(dir: string, extra = ''): string {
  return (
    `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n` +
    `[single_interface]\ninterface = "lo"\n[queues]\noverride_available_queues = 2\ndry_run = true\n${extra}`
  );
}

export function makeWorkspace(extraConf = ''): SchedWorkspace {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-sched-'));
  const runDir = join(dir, 'run');
  const logDir = join(dir, 'logs');
  mkdirSync(runDir);
  mkdirSync(logDir);
  const config = join(dir, 'lqos.conf');
  writeFileSync(config, configText(dir, extraConf));
  copyFileSync(join(repoRoot, 'conf/example/ShapedDevices.csv'), join(dir, 'ShapedDevices.csv'));
  copyFileSync(join(repoRoot, 'conf/example/network.json'), join(dir, 'network.json'));
  const refreshLog = join(dir, 'refreshes.log');
  return {
    dir,
    config,
    stateDir: join(dir, 'state'),
    runDir,
    busPath: join(runDir, 'bus'),
    logDir,
    refreshLog,
    devices: join(dir, 'ShapedDevices.csv'),
    network: join(dir, 'network.json'),
    overrides: join(dir, 'lqos_overrides.json'),
    refreshes: () =>
      existsSync(refreshLog)
        ? readFileSync(refreshLog, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map(Number)
        : [],
    save: (name, text) => {
      const tmp = join(dir, `.${name}.tmp`);
      writeFileSync(tmp, text);
      renameSync(tmp, join(dir, name));
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** lqosd in-process; `refresh` runs the real LibreQoS (dry run) after recording the time. */
export function startTestDaemon(ws: SchedWorkspace, extra: Partial<StartDaemonOptions> = {}): Promise<RunningDaemon> {
  return startDaemon({
    configPath: ws.config,
    runDir: ws.runDir,
    busPath: ws.busPath,
    log: quiet,
    web: false,
    refreshCommand: {
      file: '/bin/sh',
      args: ['-c', `date +%s%3N >> "${ws.refreshLog}"; exec "${join(repoRoot, 'LibreQoS')}" --config "${ws.config}"`],
      env: { LQOS_RUN_DIR: ws.runDir },
    },
    ...extra,
  });
}

/** sha256 of every file under `dir` (relative path → hash). */
export function treeHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p, `${rel}${e}/`);
      else out[`${rel}${e}`] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir, '');
  return out;
}

export function fileHash(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A small executable script (fake integration). */
export function script(ws: SchedWorkspace, name: string, body: string): string {
  const f = join(ws.dir, name);
  writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return f;
}
