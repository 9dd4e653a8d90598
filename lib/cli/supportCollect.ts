/**
 * What a support bundle holds, one collector per file (lib/cli/supportBundle.ts writes and packs
 * them). Each collector returns text and never throws: a command that is missing or fails is
 * recorded with its error, so a bundle from a half-broken box still says what was tried.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { hostname, cpus, totalmem, freemem, uptime } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { LqosConfig } from '../config/schema.ts';
import { interfacesOf } from '../config/load.ts';
import { inputPaths, statePaths } from '../config/paths.ts';
import { busRequest } from '../bus/client.ts';
import { REPO_ROOT, VERSION, pinRoot } from '../util/paths.ts';

/** One file of the bundle: its name inside the archive and its text. */
export interface BundleFile {
  name: string;
  text: string;
}

/** No command's output is kept beyond this (a tc class dump of 100k circuits is ~60 MB). */
export const MAX_OUTPUT_CHARS = 8 * 1024 * 1024;
const COMMAND_TIMEOUT_MS = 20_000;

/** `$ cmd args`, then its output (capped) and exit status, or why it could not run. */
export async function commandText(cmd: string, args: string[]): Promise<string> {
  const head = `$ ${[cmd, ...args].join(' ')}\n`;
  try {
    const r = await execa(cmd, args, { reject: false, all: true, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_CHARS * 2, stdin: 'ignore' });
    const all = String(r.all ?? '');
    const out = all.length > MAX_OUTPUT_CHARS ? `${all.slice(0, MAX_OUTPUT_CHARS)}\n… cut at ${MAX_OUTPUT_CHARS} characters` : all;
    const status = r.timedOut ? `timed out after ${COMMAND_TIMEOUT_MS / 1000} s` : r.failed && r.exitCode === undefined ? (r.shortMessage ?? 'failed') : `exit ${r.exitCode}`;
    return `${head}${out}${out.endsWith('\n') || out === '' ? '' : '\n'}(${status})\n\n`;
  } catch (err) {
    return `${head}(could not run: ${(err as Error).message})\n\n`;
  }
}

async function commands(list: [string, string[]][]): Promise<string> {
  let text = '';
  for (const [cmd, args] of list) text += await commandText(cmd, args);
  return text;
}

function fileOrWhy(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    return `(${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})\n`;
  }
}

function installMarker(): string {
  const marker = join(REPO_ROOT, '.lqos-install');
  return existsSync(marker) ? fileOrWhy(marker) : '(not an installed copy: no .lqos-install)\n';
}

export async function versions(): Promise<BundleFile> {
  const text =
    `lqos-ts ${VERSION} at ${REPO_ROOT}\n${installMarker()}\nnode ${process.version}\nhost ${hostname()}\n` +
    `CPUs ${cpus().length} × ${cpus()[0]?.model ?? '?'}; memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB, free ${(freemem() / 2 ** 30).toFixed(1)} GiB; ` +
    `up ${(uptime() / 3600).toFixed(1)} h\n\n` +
    fileOrWhy('/etc/os-release') +
    '\n' +
    (await commands([
      ['uname', ['-a']],
      ['git', ['-C', REPO_ROOT, 'log', '-1', '--format=%H %cI']],
      ['tc', ['-V']],
      ['ip', ['-V']],
      ['bpftool', ['version']],
      ['ethtool', ['--version']],
    ]));
  return { name: 'versions.txt', text };
}

export async function systemState(): Promise<BundleFile> {
  const text = await commands([
    ['uptime', []],
    ['free', ['-m']],
    ['df', ['-h']],
    ['systemctl', ['status', '--no-pager', '--lines=0', 'lqosd', 'lqos_scheduler']],
    ['ip', ['-d', 'link', 'show']],
    ['ip', ['addr', 'show']],
  ]);
  return { name: 'system.txt', text };
}

/** Queues, filters, offloads and channels of the shaping interfaces (every interface when unknown). */
export async function interfaceState(config: LqosConfig | undefined): Promise<BundleFile[]> {
  const ifs = config ? interfacesOf(config) : null;
  const names = ifs ? [...new Set([ifs.download, ifs.upload])] : [];
  const out: BundleFile[] = [];
  if (names.length === 0) {
    out.push({ name: 'tc/all.txt', text: await commands([['tc', ['-s', '-d', 'qdisc', 'show']]]) });
    return out;
  }
  for (const dev of names) {
    const text = await commands([
      ['ip', ['-d', '-s', 'link', 'show', 'dev', dev]],
      ['ethtool', ['-k', dev]],
      ['ethtool', ['-l', dev]],
      ['tc', ['-s', '-d', 'qdisc', 'show', 'dev', dev]],
      ['tc', ['filter', 'show', 'dev', dev, 'ingress']],
      ['tc', ['filter', 'show', 'dev', dev, 'egress']],
      ['tc', ['-s', 'class', 'show', 'dev', dev]],
    ]);
    out.push({ name: `tc/${dev}.txt`, text });
  }
  return out;
}

export async function dataplaneState(): Promise<BundleFile> {
  const root = pinRoot();
  let pinned: string;
  try {
    pinned = readdirSync(root).sort().map((f) => `${root}/${f}`).join('\n') + '\n';
  } catch (err) {
    pinned = `(${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})\n`;
  }
  const text = `pinned under ${root}:\n${pinned}\n` + (await commands([['bpftool', ['prog', 'show']], ['bpftool', ['map', 'show']]]));
  return { name: 'dataplane.txt', text };
}

/** lqosd's own view over the bus (status, urgent issues), or why it could not be asked. */
export async function daemonState(stateDir: string | undefined): Promise<BundleFile[]> {
  const ask = async (type: 'status' | 'urgent_list') => {
    try {
      return `${JSON.stringify(await busRequest(type, {}, { timeoutMs: 5000 }), null, 2)}\n`;
    } catch (err) {
      return `(lqosd did not answer "${type}": ${(err as Error).message})\n`;
    }
  };
  const urgent = await ask('urgent_list');
  const files = [{ name: 'lqosd/status.json', text: await ask('status') }, { name: 'lqosd/urgent_issues.json', text: urgent }];
  if (urgent.startsWith('(') && stateDir) files.push({ name: 'lqosd/urgent_issues.saved.json', text: fileOrWhy(join(stateDir, 'urgent_issues.json')) });
  return files;
}

/** The journal of both services, and the newest failed-integration logs the scheduler kept in /tmp. */
/**
 * A kept scheduler log from a shared directory (/tmp by default), read only when it is what the
 * scheduler wrote: a regular file owned by the user we run as. Anyone can create names in /tmp, so a
 * link there (to /etc/shadow, say) is not followed, a FIFO does not block the bundle (opened
 * non-blocking, then refused as not a regular file), and a file another user planted is left out.
 * Returns the text (at most `maxChars`) or why it was left out.
 */
export function readKeptLog(path: string, maxChars = MAX_OUTPUT_CHARS): { text: string } | { skipped: string } {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { skipped: code === 'ELOOP' ? 'a symbolic link, not followed' : `cannot be opened (${code ?? (err as Error).message})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { skipped: 'not a regular file' };
    const me = process.geteuid?.() ?? 0;
    if (st.uid !== me) return { skipped: `owned by uid ${st.uid}, not by the scheduler's user (uid ${me})` };
    const buf = Buffer.alloc(Math.min(st.size, maxChars * 4));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return { text: buf.subarray(0, got).toString('utf8').slice(0, maxChars) };
  } finally {
    closeSync(fd);
  }
}

export async function logs(since: string, tmpDir = '/tmp'): Promise<BundleFile[]> {
  const journal = await commandText('journalctl', ['-u', 'lqosd', '-u', 'lqos_scheduler', '--since', since, '-o', 'short-iso', '--no-pager', '-n', '50000']);
  const out: BundleFile[] = [{ name: 'logs/journal.txt', text: journal }];
  let names: string[] = [];
  try {
    names = readdirSync(tmpDir).filter((f) => f.startsWith('lqos_scheduler__') && f.endsWith('.log'));
  } catch {
    // No listing: nothing to add.
  }
  // lstat: the entry itself, so a link's target does not decide which logs are the newest.
  const newest = names
    .map((f) => ({ f, t: lstatSync(join(tmpDir, f), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => b.t - a.t)
    .slice(0, 10);
  const skipped: string[] = [];
  for (const { f } of newest) {
    const r = readKeptLog(join(tmpDir, f));
    if ('text' in r) out.push({ name: `logs/${f}`, text: r.text });
    else skipped.push(`${f}: ${r.skipped}`);
  }
  if (skipped.length) {
    out.push({ name: 'logs/skipped.txt', text: `Left out of the bundle (in ${tmpDir}, where any user can create files):\n${skipped.join('\n')}\n` });
  }
  return out;
}

/** The state directory's files (names, sizes, times) and its small records; never the users file. */
export function stateFiles(stateDir: string): BundleFile[] {
  const rows: string[] = [];
  const walk = (dir: string, depth: number) => {
    let names: string[] = [];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      rows.push(`(${dir}: ${(err as Error).message})`);
    }
    for (const n of names) {
      const p = join(dir, n);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      rows.push(`${st.isDirectory() ? 'd' : '-'} ${(st.mode & 0o777).toString(8)} ${String(st.size).padStart(11)} ${st.mtime.toISOString()} ${p}`);
      if (st.isDirectory() && depth < 2) walk(p, depth + 1);
    }
  };
  walk(stateDir, 0);
  const sp = statePaths(stateDir);
  return [
    { name: 'state/listing.txt', text: `${rows.join('\n')}\n` },
    { name: 'state/lastGoodConfig.meta.json', text: fileOrWhy(sp.lastGoodMeta) },
  ];
}

/** Sizes, line counts and hashes of the inputs (their content only with --include-inputs). */
export function inputSummary(config: LqosConfig, include: boolean): BundleFile[] {
  const p = inputPaths(config);
  const lines: string[] = [];
  const files: BundleFile[] = [];
  for (const path of [p.network, p.devices, p.overrides]) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      lines.push(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      continue;
    }
    const sha = createHash('sha256').update(text).digest('hex');
    lines.push(`${path}: ${Buffer.byteLength(text)} bytes, ${text.split('\n').length - 1} lines, sha256 ${sha}`);
    if (include) files.push({ name: `inputs/${path.split('/').pop()}`, text });
  }
  const note = include ? '' : '(contents not included: run with --include-inputs to add them)\n';
  return [{ name: 'inputs/summary.txt', text: `${lines.join('\n')}\n${note}` }, ...files];
}
