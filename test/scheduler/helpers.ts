/**
 * Helpers for the scheduler tests: a workspace with the example inputs and a log dir (test/support's
 * workspace on `lo`, dry run), and an in-process lqosd whose real shaping service records when each
 * refresh of lqos_directory started.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { busRequest } from '../../lib/bus/client.ts';
import type { RunningDaemon, StartDaemonOptions } from '../../lib/daemon/daemon.ts';
import { Scheduler, type SchedulerOptions } from '../../lib/scheduler/scheduler.ts';
import { ShapingService } from '../../lib/shaping/service.ts';
import { loConfig } from '../support/configs.ts';
import { quiet } from '../support/log.ts';
import { startTestDaemon as startDaemonOn } from '../support/daemon.ts';
import { repoRoot } from '../support/paths.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

export interface SchedWorkspace extends Workspace {
  logDir: string;
  refreshLog: string;
  devices: string;
  network: string;
  overrides: string;
  /** Times (ms since epoch) at which lqosd started a refresh. */
  refreshes(): number[];
}

export function makeSchedWorkspace(extraConf = ''): SchedWorkspace {
  const w = makeWorkspace({ prefix: 'lqos-sched-', conf: (dir) => loConfig(dir, extraConf), runDir: true });
  const logDir = join(w.dir, 'logs');
  mkdirSync(logDir);
  copyFileSync(join(repoRoot, 'conf/example/ShapedDevices.csv'), join(w.dir, 'ShapedDevices.csv'));
  copyFileSync(join(repoRoot, 'conf/example/network.json'), join(w.dir, 'network.json'));
  const refreshLog = join(w.dir, 'refreshes.log');
  return {
    ...w,
    logDir,
    refreshLog,
    devices: join(w.dir, 'ShapedDevices.csv'),
    network: join(w.dir, 'network.json'),
    overrides: join(w.dir, 'lqos_overrides.json'),
    refreshes: () => (existsSync(refreshLog) ? readFileSync(refreshLog, 'utf8').split('\n').filter(Boolean).map(Number) : []),
  };
}

/** lqosd in-process with its real shaping service (dry run); every refresh of lqos_directory is recorded. */
export function startTestDaemon(ws: SchedWorkspace, extra: Partial<StartDaemonOptions> = {}): Promise<RunningDaemon> {
  const real = new ShapingService();
  return startDaemonOn(ws, {
    shaping: {
      run: (req, env) => {
        if (req.inputs.devicesFile === ws.devices) appendFileSync(ws.refreshLog, `${Date.now()}\n`);
        return real.run(req, env);
      },
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

/** A small executable script (fake integration). */
export function script(ws: SchedWorkspace, name: string, body: string): string {
  const f = join(ws.dir, name);
  writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return f;
}

/**
 * The real scheduler process (`./scheduler` → bin/launch → bin/scheduler.ts) on `config`, against the
 * workspace's lqosd bus, JSON logs. `output()` is everything it logged so far.
 */
export function spawnScheduler(ws: SchedWorkspace, config: string, env: Record<string, string> = {}) {
  const child = execa(join(repoRoot, 'scheduler'), ['--config', config, '--bus-wait', '30'], {
    cwd: repoRoot,
    reject: false,
    all: true,
    buffer: true,
    env: { LQOS_LOG_FORMAT: 'json', LQOS_BUS_PATH: ws.busPath, LQOS_RUN_DIR: ws.runDir, LQOS_SCHEDULER_LOG_DIR: ws.logDir, ...env },
  });
  let out = '';
  child.all?.on('data', (b: Buffer) => (out += b.toString()));
  return Object.assign(child, { output: () => out });
}

/** An in-process scheduler on `w` (quiet log, no integration, hourly cycle), stopped by `cleanups`. */
export function inProcessScheduler(w: SchedWorkspace, cleanups: (() => unknown)[], opts: Partial<SchedulerOptions> = {}): Scheduler {
  const s = new Scheduler({ configPath: w.config, busPath: w.busPath, log: quiet, busWaitMs: 15_000, logDir: w.logDir, intervalMs: 3_600_000, integrations: () => [], ...opts });
  cleanups.push(() => s.stop());
  return s;
}

/** lqosd's `scheduler_status` for `w`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const schedulerStatus = (w: SchedWorkspace) => busRequest<'scheduler_status', any>('scheduler_status', {}, { path: w.busPath });
