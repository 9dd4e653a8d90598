/**
 * Helpers for the lqosd tests: temporary workspaces (config with dry_run = true, run dir, state
 * dir), an in-process daemon, raw socket access and a real `lqosd` child process.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { startDaemon, type StartDaemonOptions, type RunningDaemon } from '../../lib/daemon/daemon.ts';
import { createLogger } from '../../lib/util/log.ts';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const quiet = createLogger('test', 'silent');

export interface DaemonWorkspace {
  dir: string;
  config: string;
  stateDir: string;
  runDir: string;
  busPath: string;
  lockPath: string;
  writeConfig(text: string): void;
  cleanup(): void;
}

/** A config shaping on `lo` (exists everywhere) in single-interface mode, dry run. */
export function okConfig(dir: string): string {
  return `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n[single_interface]\ninterface = "lo"\n[queues]\noverride_available_queues = 2\ndry_run = true\n`;
}

/** A config naming interfaces that do not exist: the preflight fails. */
export function missingIfConfig(dir: string): string {
  return `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n[bridge]\nto_internet = "lqt-nope0"\nto_network = "lqt-nope1"\n[queues]\ndry_run = true\n`;
}

export function makeDaemonWorkspace(conf?: (dir: string) => string): DaemonWorkspace {
  const dir = mkdtempSync(join(tmpdir(), 'lqosd-'));
  const config = join(dir, 'lqos.conf');
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  writeFileSync(config, (conf ?? okConfig)(dir));
  return {
    dir,
    config,
    stateDir: join(dir, 'state'),
    runDir,
    busPath: join(runDir, 'bus'),
    lockPath: join(runDir, 'lqosd.lock'),
    writeConfig: (text) => writeFileSync(config, text),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function startTestDaemon(ws: DaemonWorkspace, extra: Partial<StartDaemonOptions> = {}): Promise<RunningDaemon> {
  return startDaemon({ configPath: ws.config, runDir: ws.runDir, busPath: ws.busPath, log: quiet, web: false, ...extra });
}

/** A raw connection: write text, read reply lines. */
export class RawConn {
  private lines: string[] = [];
  private waiters: ((l: string | undefined) => void)[] = [];
  private buf = '';
  closed = false;
  readonly sock: Socket;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
  }

  static open(path: string): Promise<RawConn> {
    return new Promise((res, rej) => {
      const s = createConnection(path);
      s.once('connect', () => res(new RawConn(s)));
      s.once('error', rej);
    });
  }

  write(text: string): void {
    this.sock.write(text);
  }

  /** Next reply, parsed; undefined when the connection closed first. */
  next(timeoutMs = 5000): Promise<any> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l));
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('no reply in time')), timeoutMs);
      this.waiters.push((line) => {
        clearTimeout(t);
        res(line === undefined ? undefined : JSON.parse(line));
      });
    });
  }

  waitClosed(timeoutMs = 5000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((res) => {
      const t = setTimeout(() => res(false), timeoutMs);
      this.sock.once('close', () => {
        clearTimeout(t);
        res(true);
      });
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Starts the real `lqosd` launcher as a child process with JSON logs. */
export function spawnLqosd(ws: DaemonWorkspace, args: string[] = []): ResultPromise<{ reject: false; all: true; env: Record<string, string> }> {
  return execa(join(repoRoot, 'lqosd'), ['--config', ws.config, '--no-web', ...args], {
    reject: false,
    all: true,
    env: { LQOS_LOG_FORMAT: 'json', LQOS_RUN_DIR: ws.runDir, LQOS_BUS_PATH: ws.busPath },
  });
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
