/**
 * `lqtop` (bin/lqtop.ts parses the arguments, then loads this): a live top of circuits in the
 * terminal from lqosd's bus request `top_circuits`, redrawn every second; `--once` prints one frame
 * without colour and `--json` the reply, for scripts. The screen is lib/cli/lqtopView.ts (pure); this
 * module does the terminal: the alternate screen, raw keys, resizes, and putting the terminal back
 * however lqtop ends. Returns the exit code (see bin/lqtop.ts).
 */
import { BusClient, BusUnavailableError, defaultBusPath } from '../bus/client.ts';
import { BusError, TOP_CIRCUITS_MAX, type TopCircuitsReply, type TopCircuitsSort } from '../bus/protocol.ts';
import { renderFrame, rowsFor, SORT_KEYS, type ViewOptions } from './lqtopView.ts';

export const LQTOP_EXIT = { ok: 0, refused: 1, usage: 2, lqosdDown: 6, notRoot: 77 } as const;

export interface LqtopOptions {
  once?: boolean;
  json?: boolean;
  sort: TopCircuitsSort;
  /** Rows of --once and --json. */
  limit: number;
  ids?: boolean;
  /** Seconds between redraws. */
  interval: number;
  width?: number;
  bus?: string;
}

/** Width of a --once frame when standard output is not a terminal. */
const ONCE_WIDTH = 120;
const REQUEST_TIMEOUT_MS = 3000;

const fail = (s: string, code: number) => {
  process.stderr.write(`lqtop: ${s}\n`);
  return code;
};

/** A failed request → the message and exit code lqtop ends with (or shows while it runs). */
export function problemOf(e: unknown, path: string): { message: string; code: number } {
  if (e instanceof BusUnavailableError) {
    if (e.errno === 'EACCES' || e.errno === 'EPERM') return { message: `permission denied on the lqosd bus ${path}: run lqtop as root`, code: LQTOP_EXIT.notRoot };
    if (e.errno === 'ENOENT' || e.errno === 'ECONNREFUSED') {
      const why = e.errno === 'ENOENT' ? `no socket at ${path}` : `stale socket at ${path}, nothing answers`;
      return { message: `lqosd is not running (${why}): systemctl status lqosd`, code: LQTOP_EXIT.lqosdDown };
    }
    return { message: `${e.message}: systemctl status lqosd`, code: LQTOP_EXIT.lqosdDown };
  }
  if (e instanceof BusError) {
    const hint = e.code === 'unknown_type' ? ' (an lqosd older than this lqtop: restart lqosd)' : '';
    return { message: `lqosd refused top_circuits: ${e.message}${hint}`, code: LQTOP_EXIT.refused };
  }
  return { message: (e as Error).message, code: LQTOP_EXIT.refused };
}

export async function runLqtop(o: LqtopOptions): Promise<number> {
  if (process.getuid?.() !== 0) return fail('the lqosd bus is root-only: run lqtop as root (sudo lqtop)', LQTOP_EXIT.notRoot);
  const path = o.bus ?? defaultBusPath();
  const client = new BusClient({ path });
  const fetch = (limit: number, sortBy: TopCircuitsSort) =>
    client.request<'top_circuits', TopCircuitsReply>('top_circuits', { limit: Math.min(TOP_CIRCUITS_MAX, limit), sortBy }, { timeoutMs: REQUEST_TIMEOUT_MS });
  try {
    let first: TopCircuitsReply;
    try {
      first = await fetch(o.once || o.json || !process.stdout.isTTY ? o.limit : rowsFor(process.stdout.rows ?? 24), o.sort);
    } catch (e) {
      const p = problemOf(e, path);
      return fail(p.message, p.code);
    }
    if (o.json) {
      process.stdout.write(JSON.stringify(first, null, 2) + '\n');
      return LQTOP_EXIT.ok;
    }
    if (o.once || !process.stdout.isTTY) {
      const width = o.width ?? (process.stdout.isTTY ? process.stdout.columns : ONCE_WIDTH);
      const lines = renderFrame(first, { width, height: o.limit + 5, names: !o.ids, colour: false, sortBy: o.sort, now: new Date() });
      process.stdout.write(lines.join('\n') + '\n');
      return LQTOP_EXIT.ok;
    }
    return await live(o, first, fetch, path);
  } finally {
    client.close();
  }
}

type Fetch = (limit: number, sortBy: TopCircuitsSort) => Promise<TopCircuitsReply>;

const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';

/** The live screen until q, Ctrl-C, SIGTERM or SIGHUP. */
function live(o: LqtopOptions, first: TopCircuitsReply, fetch: Fetch, path: string): Promise<number> {
  const out = process.stdout;
  const input = process.stdin;
  const state = { data: first, error: undefined as string | undefined, sortBy: o.sort, names: !o.ids };
  const size = () => ({ width: out.columns || 80, height: out.rows || 24 });
  const draw = () => {
    const view: ViewOptions = { ...size(), names: state.names, colour: true, sortBy: state.sortBy, error: state.error, now: new Date() };
    // Home, each line cleared to its end, then everything below the frame cleared (no scrolling).
    out.write('\x1b[H' + renderFrame(state.data, view).map((l) => l + '\x1b[K').join('\r\n') + '\x1b[J');
  };
  return new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let generation = 0;
    const refresh = async () => {
      clearTimeout(timer);
      const mine = ++generation;
      try {
        const data = await fetch(rowsFor(size().height), state.sortBy);
        if (mine !== generation || stopped) return;
        state.data = data;
        state.error = undefined;
      } catch (e) {
        if (mine !== generation || stopped) return;
        state.error = `${problemOf(e, path).message}; retrying every ${o.interval} s`;
      }
      try {
        draw();
      } catch (e) {
        // A frame that cannot be drawn must not leave the terminal in raw mode on the alternate screen.
        quit(1);
        process.stderr.write(`lqtop: cannot draw the screen: ${(e as Error).message}\n`);
        return;
      }
      timer = setTimeout(() => void refresh(), o.interval * 1000);
    };
    const quit = (code: number) => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      out.off('resize', draw); // (onGone stays: writing LEAVE to a terminal that is gone fails too)
      input.off('data', onKey);
      if (input.isTTY) input.setRawMode(false);
      input.pause();
      for (const [sig, h] of signals) process.off(sig, h);
      out.write(LEAVE);
      resolve(code);
    };
    const onKey = (buf: Buffer) => {
      for (const k of buf.toString('utf8')) {
        if (k === 'q' || k === 'Q' || k === '\x03') return quit(LQTOP_EXIT.ok);
        const sort = SORT_KEYS[k.toLowerCase()];
        if (sort) {
          state.sortBy = sort;
          draw();
          void refresh();
        } else if (k === 'n' || k === 'N') {
          state.names = !state.names;
          draw();
        }
      }
    };
    // The terminal went away (ssh dropped): stop quietly.
    const onGone = () => quit(LQTOP_EXIT.ok);
    const signals: Array<[NodeJS.Signals, () => void]> = (['SIGTERM', 'SIGHUP', 'SIGINT'] as const).map((s) => [s, () => quit(LQTOP_EXIT.ok)]);
    for (const [sig, h] of signals) process.on(sig, h);
    out.write(ENTER);
    out.on('resize', draw);
    out.on('error', onGone);
    if (input.isTTY) input.setRawMode(true);
    input.on('data', onKey);
    input.resume();
    draw();
    timer = setTimeout(() => void refresh(), o.interval * 1000);
  });
}
