/**
 * A real pseudo-terminal for lqtop's tests: a private tmux server (`tmux -L <unique>`, its own socket,
 * never the user's) running one command in a pane of a given size; the screen is read with
 * capture-pane, keys sent with send-keys. After the command the shell prints `[exit N]` and waits, so
 * the terminal's state as the command left it (alternate screen, cursor) can still be read.
 * `kill()` ends the server (and the command, if still running).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** No user configuration; a pane whose shell ended stays readable. */
const CONF = join(tmpdir(), `lqtop-tmux-${process.pid}.conf`);

let serial = 0;

export class Tmux {
  /** The server's socket file (kill-server leaves it behind). */
  private socketPath = '';

  private constructor(readonly socket: string) {}

  /** Starts `command` (a shell command line: quote it) in a `width`×`height` pane, with `env` added. */
  static async start(command: string, opts: { width: number; height: number; env?: Record<string, string>; cwd?: string }): Promise<Tmux> {
    const t = new Tmux(`lqtop-test-${process.pid}-${++serial}`);
    writeFileSync(CONF, 'set -g remain-on-exit on\n');
    const env = Object.entries({ TERM: 'xterm-256color', LANG: 'C.UTF-8', ...(opts.env ?? {}) }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    // On a line of its own, even when the command left the cursor at the end of a line.
    const shell = `${command}; s=$?; printf '\\n[exit %d]\\n' $s; sleep 600`;
    await t.tmux('-f', CONF, 'new-session', '-d', '-s', 'lqtop', '-x', String(opts.width), '-y', String(opts.height), ...(opts.cwd ? ['-c', opts.cwd] : []), ...env, shell);
    t.socketPath = (await t.tmux('display-message', '-p', '#{socket_path}')).trim();
    return t;
  }

  private async tmux(...args: string[]): Promise<string> {
    const r = await execa('tmux', ['-L', this.socket, ...args], { reject: false });
    if (r.exitCode !== 0) throw new Error(`tmux ${args.join(' ')}: ${String(r.stderr)}`);
    return String(r.stdout);
  }

  /** The visible screen, one string per line (trailing blanks trimmed). */
  async screen(): Promise<string[]> {
    return (await this.tmux('capture-pane', '-p', '-t', 'lqtop')).split('\n').map((l) => l.trimEnd());
  }

  /** The screen with its colour (SGR) sequences (capture-pane -e). */
  async screenWithEscapes(): Promise<string> {
    return this.tmux('capture-pane', '-p', '-e', '-t', 'lqtop');
  }

  async keys(...keys: string[]): Promise<void> {
    await this.tmux('send-keys', '-t', 'lqtop', ...keys);
  }

  async resize(width: number, height: number): Promise<void> {
    await this.tmux('resize-window', '-t', 'lqtop', '-x', String(width), '-y', String(height));
  }

  /** Polls the screen until `pred` holds; the error shows the last screen. */
  async waitForScreen(pred: (lines: string[]) => boolean, what: string, timeoutMs = 15_000): Promise<string[]> {
    const end = Date.now() + timeoutMs;
    let last: string[] = [];
    while (Date.now() < end) {
      last = await this.screen();
      if (pred(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; the screen:\n${last.join('\n')}`);
  }

  /** Waits for the command to end; its exit status, and whether it left the alternate screen and showed the cursor again. */
  async waitForExit(timeoutMs = 10_000): Promise<{ status: number; alternate: boolean; cursor: boolean }> {
    const lines = await this.waitForScreen((l) => l.some((x) => /^\[exit \d+\]$/.test(x)), 'the command to exit', timeoutMs);
    const status = Number(/^\[exit (\d+)\]$/.exec(lines.find((x) => /^\[exit \d+\]$/.test(x))!)![1]);
    const [alternate, cursor] = (await this.tmux('display-message', '-p', '-t', 'lqtop', '#{alternate_on} #{cursor_flag}')).trim().split(' ');
    return { status, alternate: alternate === '1', cursor: cursor === '1' };
  }

  async kill(): Promise<void> {
    await execa('tmux', ['-L', this.socket, 'kill-server'], { reject: false });
    if (this.socketPath) rmSync(this.socketPath, { force: true });
    rmSync(CONF, { force: true });
  }
}

/** The fields of the frame line whose first column starts with `name` (split on 2+ spaces), or undefined. */
export function rowOf(lines: string[], name: string): string[] | undefined {
  const l = lines.find((x) => x.startsWith(name));
  return l?.trim().split(/\s{2,}/);
}

/** A rate cell (`48.9 Mbps`, `512 kbps`) in Mbit/s. */
export function mbpsOf(cell: string | undefined): number {
  const m = /^([\d.]+) (bps|kbps|Mbps|Gbps)$/.exec(cell ?? '');
  if (!m) return NaN;
  return Number(m[1]) * { bps: 1e-6, kbps: 1e-3, Mbps: 1, Gbps: 1e3 }[m[2] as 'bps']!;
}
