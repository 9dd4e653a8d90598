/**
 * `LibreQoS support-bundle` (bin/supportBundle.ts): one tar.gz with what a support person needs to
 * see — versions, system and interface state, tc dumps, pinned maps, lqosd's status and urgent
 * issues, recent logs, the state directory's listing and lqos.conf — and no credentials: every
 * value of a secret key (lib/config/secrets.ts) and of a secret-named environment variable is
 * replaced by `***` in every file, and secret lines of lqos.conf are rewritten whole. The web users
 * file and the setup token are never read; the input files go in only with --include-inputs.
 */
import { chmodSync, constants as fsConstants, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { loadConfig, resolveConfigPath } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';
import { hideSecrets, isSecretKey, secretValues } from '../config/secrets.ts';
import * as collect from './supportCollect.ts';
import type { BundleFile } from './supportCollect.ts';

export interface SupportBundleOptions {
  config?: string;
  /** The archive to write (default /tmp/lqos-support-<host>-<time>.tar.gz). */
  out?: string;
  includeInputs?: boolean;
  /** journalctl --since (default "-24h"). */
  since?: string;
  /** Where the scheduler keeps failed-integration logs (default /tmp). */
  schedulerLogDir?: string;
}

/**
 * lqos.conf with the value of every secret key replaced by `"***"`, comments and layout kept. It
 * reads the text, not the TOML, so that a file that does not parse (the usual reason for a bundle)
 * is redacted as well: a key at the start of a line or inside an inline table (`{ token = "…" }`),
 * bare or quoted, with a basic, literal or multi-line string value (whose other lines are replaced
 * by a comment, so line numbers in the parse error still point at the same lines).
 */
export function redactConfText(text: string): string {
  const NOTE = '# value removed by the support bundle';
  let closing: string | undefined; // in a secret's multi-line string: its closing delimiter
  return text
    .split('\n')
    .map((line) => {
      if (closing !== undefined) {
        const end = line.indexOf(closing);
        if (end < 0) return NOTE;
        closing = undefined;
        return `${NOTE} ${line.slice(end + 3).trim()}`.trimEnd();
      }
      let out = '';
      let at = 0;
      const keyRe = /(^\s*|[{,]\s*)(["']?)([A-Za-z0-9_.-]+)\2(\s*=\s*)/g;
      for (let m = keyRe.exec(line); m; m = keyRe.exec(line)) {
        const valueStart = m.index + m[0].length;
        if (!isSecretKey(m[3]!.split('.').pop()!)) continue;
        const rest = line.slice(valueStart);
        const multi = rest.startsWith('"""') ? '"""' : rest.startsWith("'''") ? "'''" : undefined;
        let valueEnd: number;
        if (multi !== undefined) {
          const end = rest.indexOf(multi, 3);
          if (end < 0) {
            closing = multi;
            return `${out}${line.slice(at, valueStart)}"***" ${NOTE}`;
          }
          valueEnd = valueStart + end + 3;
        } else if (rest.startsWith('"')) {
          const end = /^"(?:[^"\\]|\\.)*"?/.exec(rest)![0].length;
          valueEnd = valueStart + end;
        } else if (rest.startsWith("'")) {
          const end = rest.indexOf("'", 1);
          valueEnd = end < 0 ? line.length : valueStart + end + 1;
        } else {
          valueEnd = valueStart + /^[^,}#]*/.exec(rest)![0].trimEnd().length;
        }
        if (m.index === 0 && m[1]!.trim() === '') {
          // `key = value  # comment`: the whole rest of the line goes, with a note.
          return `${line.slice(0, valueStart)}"***" ${NOTE}`;
        }
        out += `${line.slice(at, valueStart)}"***"`;
        at = valueEnd;
        keyRe.lastIndex = valueEnd;
      }
      return out + line.slice(at);
    })
    .join('\n');
}

interface LoadedConf {
  path: string;
  text?: string;
  config?: LqosConfig;
  problem?: string;
  secrets: string[];
}

function loadConf(explicit?: string): LoadedConf {
  const path = resolveConfigPath(explicit);
  const c: LoadedConf = { path, secrets: secretValues({}, process.env) };
  try {
    c.text = readFileSync(path, 'utf8');
    c.secrets.push(...secretValues(parseToml(c.text)));
  } catch (err) {
    c.problem = `${path}: ${(err as Error).message.split('\n')[0]}`;
  }
  try {
    c.config = loadConfig({ path }).config;
    c.secrets.push(...secretValues(c.config));
  } catch (err) {
    c.problem ??= (err as Error).message.split('\n')[0];
  }
  return c;
}

async function gather(c: LoadedConf, o: SupportBundleOptions): Promise<BundleFile[]> {
  const stateDir = c.config?.state_directory;
  const files: BundleFile[] = [
    { name: 'lqos.conf', text: c.text === undefined ? `(${c.problem})\n` : redactConfText(c.text) },
    ...(c.problem ? [{ name: 'lqos.conf.problem.txt', text: `${c.problem}\n` }] : []),
    await collect.versions(),
    await collect.systemState(),
    ...(await collect.interfaceState(c.config)),
    await collect.dataplaneState(),
    ...(await collect.daemonState(stateDir)),
    ...(await collect.logs(o.since ?? '-24h', o.schedulerLogDir)),
    ...(stateDir ? collect.stateFiles(stateDir) : []),
    ...(c.config ? collect.inputSummary(c.config, !!o.includeInputs) : []),
  ];
  return files;
}

function readme(c: LoadedConf, files: BundleFile[], o: SupportBundleOptions): BundleFile {
  const text =
    `lqos-ts support bundle, made ${new Date().toISOString()} on ${hostname()} from ${c.path}.\n` +
    `Credentials from lqos.conf and secret-named environment variables are replaced by ***; the web users\n` +
    `file is not included; inputs (network.json, ShapedDevices.csv) ${o.includeInputs ? 'are included' : 'are summarised only (sizes, hashes)'}.\n\n` +
    files.map((f) => `${f.name}  ${Buffer.byteLength(f.text)} bytes`).join('\n') +
    '\n';
  return { name: 'README.txt', text };
}

function defaultOut(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return join('/tmp', `lqos-support-${hostname()}-${t}.tar.gz`);
}

export async function runSupportBundle(o: SupportBundleOptions): Promise<number> {
  const c = loadConf(o.config);
  const collected = await gather(c, o);
  const files = [readme(c, collected, o), ...collected].map((f) => ({ name: f.name, text: hideSecrets(f.text, c.secrets) }));
  const out = resolve(o.out ?? defaultOut());
  const work = mkdtempSync(join(tmpdir(), 'lqos-support-'));
  const base = 'lqos-support';
  try {
    for (const f of files) {
      const p = join(work, base, f.name);
      mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
      writeFileSync(p, f.text, { mode: 0o600 });
    }
    // Packed in the private work directory (mode 0700), then copied to `out` only if nothing is
    // there: in /tmp anyone may have created that name first, as a link to a file we would overwrite.
    const packed = join(work, 'bundle.tar.gz');
    const r = await execa('tar', ['-czf', packed, '-C', work, base], { reject: false, all: true });
    if (r.exitCode !== 0) {
      process.stderr.write(`support-bundle: could not pack the bundle: ${r.all}\n`);
      return 8;
    }
    chmodSync(packed, 0o600); // the copy takes this mode
    try {
      copyFileSync(packed, out, fsConstants.COPYFILE_EXCL);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EEXIST' ? 'something (a file or a link) already has that name; nothing was overwritten' : (err as Error).message;
      process.stderr.write(`support-bundle: could not write ${out}: ${why}. Pass another --out path.\n`);
      return 8;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const size = (statSync(out).size / 1024).toFixed(0);
  process.stdout.write(`support-bundle: wrote ${out} (${size} KiB, ${files.length} files, mode 0600)\n`);
  if (c.problem) process.stdout.write(`support-bundle: note: ${c.problem} (the bundle says so)\n`);
  process.stdout.write(`Credentials are replaced by ***; look through it before you send it (tar -tzf ${out}).\n`);
  return 0;
}
