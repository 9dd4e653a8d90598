/**
 * Temporary LibreQoS workspaces for tests: a config file + input files in a fresh directory,
 * plus helpers to run the real `LibreQoS` command as a child process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

export const repoRoot = resolve(import.meta.dirname, '../..');

export interface Workspace {
  dir: string;
  config: string;
  stateDir: string;
  runDir: string;
  write(name: string, text: string): void;
  cleanup(): void;
}

export function makeWorkspace(opts: { conf?: string; devices?: string; network?: string } = {}): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-ws-'));
  const config = join(dir, 'lqos.conf');
  const stateDir = join(dir, 'state');
  const runDir = join(dir, 'run');
  writeFileSync(
    config,
    opts.conf ??
      `lqos_directory = "${dir}"\nstate_directory = "${stateDir}"\n[bridge]\nto_internet = "lqt-none0"\nto_network = "lqt-none1"\n[queues]\noverride_available_queues = 2\ndry_run = true\n`,
  );
  if (opts.devices !== undefined) writeFileSync(join(dir, 'ShapedDevices.csv'), opts.devices);
  if (opts.network !== undefined) writeFileSync(join(dir, 'network.json'), opts.network);
  return {
    dir,
    config,
    stateDir,
    runDir,
    write: (name, text) => writeFileSync(join(dir, name), text),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs ./LibreQoS with JSON logs; returns exit code, raw stderr and parsed log records. */
export async function runCli(args: string[], env: Record<string, string> = {}) {
  const r = await execa(join(repoRoot, 'LibreQoS'), args, {
    reject: false,
    env: { LQOS_LOG_FORMAT: 'json', ...env },
    cwd: repoRoot,
  });
  const logs = String(r.stderr)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string });
  return { code: r.exitCode ?? -1, stderr: String(r.stderr), stdout: String(r.stdout), logs };
}
