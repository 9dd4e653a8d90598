/** lqosd for tests: in-process on a workspace (no web server), or the real `lqosd` command as a child process. */
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { startDaemon, type RunningDaemon, type StartDaemonOptions } from '../../lib/daemon/daemon.ts';
import { quiet } from './log.ts';
import { repoRoot } from './paths.ts';
import type { Workspace } from './workspace.ts';

/** startDaemon on the workspace's config, run dir and bus socket, silent, without the web server. */
export function startTestDaemon(ws: Workspace, extra: Partial<StartDaemonOptions> = {}): Promise<RunningDaemon> {
  return startDaemon({ configPath: ws.config, runDir: ws.runDir, busPath: ws.busPath, log: quiet, web: false, ...extra });
}

/** Starts the real `lqosd` launcher (no web server) as a child process with JSON logs. */
export function spawnLqosd(ws: Workspace, args: string[] = []): ResultPromise<{ reject: false; all: true; env: Record<string, string> }> {
  return execa(join(repoRoot, 'lqosd'), ['--config', ws.config, '--no-web', ...args], {
    reject: false,
    all: true,
    env: { LQOS_LOG_FORMAT: 'json', LQOS_RUN_DIR: ws.runDir, LQOS_BUS_PATH: ws.busPath },
  });
}
