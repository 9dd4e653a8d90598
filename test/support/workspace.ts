/**
 * Temporary LibreQoS workspaces for tests: a config file + input files in a fresh directory, with
 * the run/state paths lqosd and LibreQoS use, plus the real `LibreQoS` command as a child process.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { execa } from 'execa';
import { bridgeConfig } from './configs.ts';
import { repoRoot } from './paths.ts';

/** A fresh directory under the system temp dir, named `<prefix>XXXXXX`. */
export function tempDir(prefix = 'lqos-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A temp directory removed when the test `t` ends. */
export function testDir(t: { after(fn: () => void): void }, prefix?: string): string {
  const dir = tempDir(prefix);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Workspace {
  dir: string;
  /** lqos.conf */
  config: string;
  stateDir: string;
  /** LQOS_RUN_DIR for LibreQoS / lqosd (created only with the `runDir` option). */
  runDir: string;
  busPath: string;
  lockPath: string;
  /** Writes a file in the workspace. */
  write(name: string, text: string): void;
  /** Atomic save (temp + rename), like an editor or the web UI. */
  save(name: string, text: string): void;
  writeConfig(text: string): void;
  cleanup(): void;
}

export interface WorkspaceOptions {
  /** Temp directory prefix (default `lqos-ws-`). */
  prefix?: string;
  /** lqos.conf text, or a function of the directory (default bridgeConfig). */
  conf?: string | ((dir: string) => string);
  /** ShapedDevices.csv text (not written when undefined). */
  devices?: string;
  /** network.json text (not written when undefined). */
  network?: string;
  /** Create the run dir (lqosd needs it). */
  runDir?: boolean;
}

export function makeWorkspace(opts: WorkspaceOptions = {}): Workspace {
  const dir = tempDir(opts.prefix ?? 'lqos-ws-');
  const config = join(dir, 'lqos.conf');
  const runDir = join(dir, 'run');
  const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
  writeFileSync(config, typeof opts.conf === 'function' ? opts.conf(dir) : (opts.conf ?? bridgeConfig(dir)));
  if (opts.devices !== undefined) write('ShapedDevices.csv', opts.devices);
  if (opts.network !== undefined) write('network.json', opts.network);
  if (opts.runDir) mkdirSync(runDir);
  return {
    dir,
    config,
    stateDir: join(dir, 'state'),
    runDir,
    busPath: join(runDir, 'bus'),
    lockPath: join(runDir, 'lqosd.lock'),
    write,
    save: (name, text) => {
      const tmp = join(dir, `.${name}.tmp`);
      writeFileSync(tmp, text);
      renameSync(tmp, join(dir, name));
    },
    writeConfig: (text) => writeFileSync(config, text),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** makeWorkspace for one test file: every workspace it makes is removed after the file's tests. */
export function workspaceFactory(): (opts?: WorkspaceOptions) => Workspace {
  const made: Workspace[] = [];
  after(() => made.forEach((w) => w.cleanup()));
  return (opts) => {
    const w = makeWorkspace(opts);
    made.push(w);
    return w;
  };
}

/**
 * Runs ./LibreQoS with JSON logs; returns exit code, raw stderr and parsed log records. Hermetic:
 * unless `env` says otherwise, its run directory (lock file, lqosd's bus) is a fresh temp directory,
 * never /run/lqos.
 */
export async function runCli(args: string[], env: Record<string, string> = {}) {
  const ownRunDir = env.LQOS_RUN_DIR === undefined ? mkdtempSync(join(tmpdir(), 'lqos-cli-run-')) : undefined;
  const r = await execa(join(repoRoot, 'LibreQoS'), args, {
    reject: false,
    env: { LQOS_LOG_FORMAT: 'json', ...(ownRunDir ? { LQOS_RUN_DIR: ownRunDir } : {}), ...env },
    cwd: repoRoot,
  }).finally(() => ownRunDir && rmSync(ownRunDir, { recursive: true, force: true }));
  const logs = String(r.stderr)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string });
  return { code: r.exitCode ?? -1, stderr: String(r.stderr), stdout: String(r.stdout), logs };
}
