/**
 * Runs tc command lists through `tc -batch`, in chunks, reporting the exact failing line.
 */
// Loaded on first use: a dry run (LibreQoS --dry-run) plans but never runs tc.
const loadExeca = () => import('execa');
import type { Log } from '../util/log.ts';

export class TcBatchError extends Error {
  constructor(
    message: string,
    readonly line: string | undefined,
    readonly lineNumber: number | undefined,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export interface TcRunOptions {
  log?: Log;
  /** Lines per `tc -batch` invocation. */
  chunkSize?: number;
  /** Prefix for every command, e.g. ['ip', 'netns', 'exec', 'ns1'] in tests. */
  wrap?: string[];
}

/** Runs the lines; returns what tc printed on stdout (e.g. for `class show` lines in the batch). */
export async function runTcBatch(lines: string[], opts: TcRunOptions = {}): Promise<string> {
  const chunkSize = opts.chunkSize ?? 20000;
  let stdout = '';
  {
    for (let start = 0; start < lines.length; start += chunkSize) {
      const chunk = lines.slice(start, start + chunkSize);
      // Commands go in on stdin (`-batch -`): no temp files, one process per chunk.
      const argv = [...(opts.wrap ?? []), 'tc', '-batch', '-'];
      opts.log?.debug({ cmd: argv.join(' '), lines: chunk.length }, 'running tc batch');
      const { execa } = await loadExeca();
      const r = await execa(argv[0]!, argv.slice(1), { reject: false, all: true, input: chunk.join('\n') + '\n' });
      stdout += String(r.stdout ?? '');
      if (r.exitCode !== 0) {
        const out = String(r.all ?? r.stderr ?? '');
        const m = /Command failed .*?:(\d+)/.exec(out);
        const n = m ? Number(m[1]) : undefined;
        const bad = n !== undefined ? chunk[n - 1] : undefined;
        const where = n !== undefined ? ` at batch line ${start + n}` : '';
        throw new TcBatchError(
          `tc failed${where}: ${bad ?? '(unknown line)'}\n${out.trim()}`,
          bad,
          n !== undefined ? start + n : undefined,
          out,
        );
      }
    }
  }
  return stdout;
}

/** Runs one tc command; returns stdout. */
export async function tc(args: string[], opts: { wrap?: string[]; log?: Log; reject?: boolean } = {}): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const argv = [...(opts.wrap ?? []), 'tc', ...args];
  opts.log?.debug({ cmd: argv.join(' ') }, 'running tc');
  const { execa } = await loadExeca();
  const r = await execa(argv[0]!, argv.slice(1), { reject: false });
  if (r.exitCode !== 0 && opts.reject !== false) {
    throw new TcBatchError(`${argv.join(' ')} failed: ${String(r.stderr).trim()}`, args.join(' '), undefined, String(r.stderr));
  }
  return { ok: r.exitCode === 0, stdout: String(r.stdout), stderr: String(r.stderr) };
}
