/**
 * The bus `refresh` request: run the LibreQoS command (`<repo>/LibreQoS --config <path>`) as a
 * child process and report its exit code and the last lines of its log.
 */
import { execa } from 'execa';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const REFRESH_TAIL_LINES = 40;
export const REFRESH_TIMEOUT_MS = 30 * 60_000;

export interface RefreshResult {
  exitCode: number;
  ok: boolean;
  durationMs: number;
  /** Last log lines of the run, as text (`LEVEL message`). */
  lines: string[];
  /** From the run's "applied" log record, when it applied to the kernel (not in a dry run). */
  applied?: { mode: 'full' | 'incremental' | 'none'; commands: number };
}

export interface RefreshCommand {
  file: string;
  args: string[];
  env?: Record<string, string>;
}

export function defaultRefreshCommand(configPath: string): RefreshCommand {
  return { file: join(REPO_ROOT, 'LibreQoS'), args: ['--config', configPath] };
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

export async function runRefresh(cmd: RefreshCommand, timeoutMs = REFRESH_TIMEOUT_MS): Promise<RefreshResult> {
  const t0 = performance.now();
  const r = await execa(cmd.file, cmd.args, {
    reject: false,
    all: true,
    timeout: timeoutMs,
    env: { LQOS_LOG_FORMAT: 'json', ...cmd.env },
    stdin: 'ignore',
  });
  const lines: string[] = [];
  let applied: RefreshResult['applied'];
  for (const raw of String(r.all ?? '').split('\n')) {
    if (!raw.trim()) continue;
    if (raw.startsWith('{')) {
      try {
        const rec = JSON.parse(raw) as { level?: number; msg?: string; mode?: string; tcCommands?: number };
        if (typeof rec.tcCommands === 'number' && (rec.mode === 'full' || rec.mode === 'incremental' || rec.mode === 'none')) {
          applied = { mode: rec.mode, commands: rec.tcCommands };
        }
        lines.push(`${LEVELS[rec.level ?? 30] ?? 'INFO'} ${rec.msg ?? ''}`);
        continue;
      } catch {
        /* not a log record */
      }
    }
    lines.push(raw);
  }
  let exitCode = r.exitCode ?? -1;
  if (r.timedOut) {
    lines.push(`ERROR LibreQoS did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`);
    exitCode = exitCode === 0 ? -1 : exitCode;
  } else if (r.exitCode === undefined) {
    lines.push(`ERROR could not run ${cmd.file}: ${r.shortMessage ?? r.message}`);
  }
  return {
    exitCode,
    ok: exitCode === 0,
    durationMs: Math.round(performance.now() - t0),
    lines: lines.slice(-REFRESH_TAIL_LINES),
    ...(applied ? { applied } : {}),
  };
}
