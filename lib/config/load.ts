// Loader for /etc/lqos.conf: reads the TOML file, reports unknown or legacy keys
// and keys lqos-ts accepts but does not honour at their value (./fidelity.ts) as
// warnings, validates against the schema and turns every problem into a
// ConfigError whose text names the file, the key path and the offending value.
import { readFileSync } from 'node:fs';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { fidelityWarnings } from './fidelity.ts';
import { isSecretKey, isSecretPath } from './secrets.ts';
import { valueAt } from './valueAt.ts';
import { configSchema, type LqosConfig } from './schema.ts';

export const DEFAULT_CONFIG_PATH = '/etc/lqos.conf';

export interface LoadOptions {
  /** Explicit file; otherwise $LQOS_CONFIG, otherwise /etc/lqos.conf. */
  path?: string;
  /** Fail when neither [bridge] nor [single_interface] is present (needed to shape). */
  requireInterfaces?: boolean;
}

export interface LoadedConfig {
  config: LqosConfig;
  path: string;
  warnings: string[];
}

export class ConfigError extends Error {
  readonly path: string;
  readonly details: string[];
  constructor(message: string, path: string, details: string[] = []) {
    super(message);
    this.name = 'ConfigError';
    this.path = path;
    this.details = details;
  }
}

/** Which file loadConfig would read for these options. */
export function resolveConfigPath(explicit?: string): string {
  return explicit || process.env.LQOS_CONFIG || DEFAULT_CONFIG_PATH;
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const path = resolveConfigPath(opts.path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(
        `configuration file ${path} not found: copy conf/lqos.conf.example to /etc/lqos.conf and edit it, ` +
          `or point to another file with --config <file> (or the LQOS_CONFIG environment variable)`,
        path,
      );
    }
    throw new ConfigError(`cannot read configuration file ${path}: ${(err as Error).message}`, path);
  }
  return parseConfigText(text, path, opts);
}

/** Parses and validates lqos.conf text. Pure: touches neither disk nor environment. */
export function parseConfigText(text: string, path: string, opts: Pick<LoadOptions, 'requireInterfaces'> = {}): LoadedConfig {
  let raw: Table;
  try {
    raw = parseToml(text) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.split('\n')[0].replace(/^Invalid TOML document:\s*/, '');
      const where = `line ${err.line}, column ${err.column}`;
      throw new ConfigError(`${path}: TOML syntax error at ${where}: ${reason}`, path, [
        `${where}: ${reason}`,
        ...hideSecretLines(err.codeblock.split('\n').filter((l) => l.trim() !== '')),
      ]);
    }
    throw err;
  }

  const warnings: string[] = [];
  applyLegacyAliases(raw, path, warnings);
  findUnknownKeys(raw, configSchema, [], path, warnings);

  // Without zod's eval fast path: it compiles a parser per object schema (40 sections), which costs
  // more than it saves on a file parsed once per process (~10 ms of every LibreQoS start).
  const result = configSchema.safeParse(raw, { jitless: true });
  if (!result.success) {
    const details = result.error.issues.map((issue) => describeIssue(issue, raw));
    throw new ConfigError(`${path}: invalid configuration:\n  ${details.join('\n  ')}`, path, details);
  }
  const config = result.data;

  if (opts.requireInterfaces && !config.bridge && !config.single_interface) {
    const detail =
      'no interfaces configured: add a [bridge] table (to_internet, to_network) ' +
      'or a [single_interface] table (interface, internet_vlan, network_vlan)';
    throw new ConfigError(`${path}: invalid configuration:\n  ${detail}`, path, [detail]);
  }
  if (config.version.trim() !== '1.5') {
    warnings.push(`version = ${JSON.stringify(config.version)} in ${path}: this loader understands version "1.5"`);
  }
  // Keys lqos-ts accepts but does not honour at these values (lib/config/fidelity.ts).
  warnings.push(...fidelityWarnings(raw, config, path));
  return { config, path, warnings };
}

/** The interfaces shaping happens on: download leaves via `download`, upload via `upload`. */
export interface ShapingInterfaces {
  download: string;
  upload: string;
  onAStick: boolean;
  /**
   * Who forwards frames between the two sides: a Linux bridge the operator built (`linux-bridge`;
   * our programs only classify), our tc-ingress redirect between two unbridged NICs (`xdp-bridge`,
   * `[bridge] use_xdp_bridge = true`), or the VLAN swap + hairpin on one trunk NIC (`stick`).
   */
  forwarding: ForwardingMode;
}

export type ForwardingMode = 'linux-bridge' | 'xdp-bridge' | 'stick';

/** The shaping interfaces: download leaves via to_network, upload via to_internet. */
export function interfacesOf(config: LqosConfig): ShapingInterfaces | null {
  if (config.bridge) {
    return {
      download: config.bridge.to_network, upload: config.bridge.to_internet, onAStick: false,
      forwarding: config.bridge.use_xdp_bridge ? 'xdp-bridge' : 'linux-bridge',
    };
  }
  if (config.single_interface) {
    const nic = config.single_interface.interface;
    return { download: nic, upload: nic, onAStick: true, forwarding: 'stick' };
  }
  return null;
}

// ---------- legacy spellings ----------

export type Table = Record<string, unknown>;

/** A TOML table (not a list, not a date). */
export const isTable = (v: unknown): v is Table =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Moves a legacy key onto its current name (unless both exist) and warns. */
function rename(table: Table, from: string, to: string, label: (k: string) => string, path: string, warnings: string[]) {
  if (!(from in table)) return;
  if (to in table) {
    warnings.push(`${label(from)} in ${path} is a misspelling of ${label(to)}, which is also set; ${label(from)} ignored`);
  } else {
    table[to] = table[from];
    warnings.push(`${label(from)} in ${path} is deprecated: rename it to ${label(to)}`);
  }
  delete table[from];
}

function applyLegacyAliases(raw: Table, path: string, warnings: string[]) {
  rename(raw, 'spylnx_integration', 'splynx_integration', (k) => `[${k}]`, path, warnings);
  const splynx = raw.splynx_integration;
  if (isTable(splynx)) {
    rename(splynx, 'enable_spylnx', 'enable_splynx', (k) => `splynx_integration.${k}`, path, warnings);
  }
  const queues = raw.queues;
  if (isTable(queues) && 'monitor_only' in queues) {
    // The schema maps the value; here we only tell the operator.
    warnings.push(
      'queue_mode' in queues
        ? `queues.monitor_only in ${path} is deprecated and ignored because queues.queue_mode is set; remove it`
        : `queues.monitor_only in ${path} is deprecated: use queue_mode = "observe" (or "shape") instead`,
    );
  }
}

// ---------- unknown keys ----------

// Upstream sections for features lqos-ts does not implement.
const UPSTREAM_ONLY_SECTIONS = new Set([
  'treeguard',
  'autopilot',
  'dynamic_circuits',
  'radius_accounting',
  'local_api',
  'anonymous_stats',
  'tornado',
  'byte_counters',
]);

/**
 * Names operators reach for that are not ours (nor within a typo of ours), and the key that does
 * that job: the unknown-key warning suggests it.
 */
const KEY_SYNONYMS: Record<string, string> = {
  'web.listen': 'bind_address',
  'web.listen_address': 'bind_address',
  'web.listen_addr': 'bind_address',
  'web.host': 'bind_address',
  'web.bind': 'bind_address',
  'web.address': 'bind_address',
};

/** Strips wrappers (default, optional, pipe input...) down to the schema doing the real work. */
export function coreSchema(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType;
    } else {
      return s;
    }
  }
}

function keyPath(parts: (string | number)[]): string {
  return parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function findUnknownKeys(value: unknown, schema: z.ZodType, at: (string | number)[], path: string, warnings: string[]) {
  const s = coreSchema(schema);
  if (s instanceof z.ZodObject && isTable(value)) {
    const shape = s.shape as Record<string, z.ZodType>;
    for (const [key, child] of Object.entries(value)) {
      const here = [...at, key];
      if (key in shape) {
        findUnknownKeys(child, shape[key], here, path, warnings);
      } else if (at.length === 0 && UPSTREAM_ONLY_SECTIONS.has(key)) {
        warnings.push(`section [${key}] in ${path} configures an upstream LibreQoS feature that lqos-ts does not implement (ignored)`);
      } else {
        const synonym = KEY_SYNONYMS[keyPath(here)];
        // A known synonym first: `host` is also two edits from `port`, which would send the operator astray.
        const hint = (synonym !== undefined && synonym in shape ? synonym : undefined) ?? closest(key, Object.keys(shape));
        warnings.push(`unknown key ${keyPath(here)} in ${path} (ignored)${hint ? `; did you mean ${keyPath([...at, hint])}?` : ''}`);
      }
    }
  } else if (s instanceof z.ZodArray && Array.isArray(value)) {
    value.forEach((item, i) => findUnknownKeys(item, s.element as z.ZodType, [...at, i], path, warnings));
  }
}

/** Known key within edit distance 2 of `key`, if any (nearest wins). */
function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  const lower = key.toLowerCase();
  for (const k of known) {
    // The distance is at least the length difference: skip hopeless candidates (a huge unknown key
    // would otherwise cost a length × length table per known key).
    if (Math.abs(k.length - lower.length) >= bestDist) continue;
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDist) [best, bestDist] = [k, d];
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

// ---------- error text ----------

const EXPECTED: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a table',
};

function show(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (isTable(v)) return 'a table';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function bound(kind: 'min' | 'max', issue: { minimum?: unknown; maximum?: unknown; inclusive?: boolean; origin?: string }) {
  const n = kind === 'min' ? issue.minimum : issue.maximum;
  if (issue.origin === 'string') return kind === 'min' && n === 1 ? 'a non-empty string' : `a string of ${kind === 'min' ? 'at least' : 'at most'} ${n} characters`;
  if (issue.origin === 'array') return `a list of ${kind === 'min' ? 'at least' : 'at most'} ${n} items`;
  const op = kind === 'min' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
  return `a number ${op} ${n}`;
}

// The lookbehind makes a bare key start only at the start of a run of key characters: without it a
// long run with no "=" after it is retried from every position (quadratic: seconds for 50k characters).
const ASSIGNMENT = /(?:"([^"]*)"|'([^']*)'|(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]+))\s*=/g;
const NUMBERED = /^(\s*\d+:)/;

/** The line cut after the first `secretKey =` in it (inline tables too), or undefined when it has none. */
function cutAtSecret(line: string): string | undefined {
  for (const m of line.matchAll(ASSIGNMENT)) {
    const key = (m[1] ?? m[2] ?? m[3]).split('.').pop() ?? '';
    if (isSecretKey(key)) return `${line.slice(0, (m.index ?? 0) + m[0].length)} (value hidden)`;
  }
  return undefined;
}

/**
 * The source lines of a TOML syntax error (`N:  key = value`, then a caret line) with the value of
 * every secret key replaced by "(value hidden)", and the lines after such a key (a multi-line
 * value) hidden until the next `key =` or table line.
 */
function hideSecretLines(lines: string[]): string[] {
  let inSecret = false;
  const out: string[] = [];
  for (const line of lines) {
    if (!NUMBERED.test(line)) {
      if (!inSecret) out.push(line); // a caret line: only under a line shown in full
      continue;
    }
    const cut = cutAtSecret(line);
    if (cut !== undefined) {
      inSecret = true;
      out.push(cut);
    } else if (/^\s*\d+:\s+(\[|[A-Za-z0-9_."'-]+\s*=)/.test(line)) {
      inSecret = false;
      out.push(line);
    } else out.push(inSecret ? line.replace(/^(\s*\d+:).*$/, '$1 (value hidden)') : line);
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const where = issue.path.length ? keyPath(issue.path as (string | number)[]) : '(top level)';
  const found = valueAt(raw, issue.path);
  // A credential's value never appears in an error (they reach logs and urgent issues).
  const secret = isSecretPath(issue.path);
  let expected: string;
  switch (issue.code) {
    case 'custom':
      return secret ? `${where}: invalid (value hidden)` : `${where}: ${issue.message}`;
    case 'invalid_type':
      expected = EXPECTED[issue.expected] ?? issue.expected;
      break;
    case 'too_small':
      expected = bound('min', issue);
      break;
    case 'too_big':
      expected = bound('max', issue);
      break;
    case 'invalid_value':
      expected = `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    default:
      return secret ? `${where}: invalid (value hidden): ${issue.code.replace(/_/g, ' ')}` : `${where}: ${issue.message}, got ${show(found)}`;
  }
  const hint = KEY_HINTS[where] ? `; ${KEY_HINTS[where]}` : '';
  if (found === undefined) return `${where}: missing (expected ${expected})${hint}`;
  return secret ? `${where}: invalid (value hidden); expected ${expected}` : `${where}: expected ${expected}, got ${show(found)}${hint}`;
}

const STICK_VLANS =
  'on a stick set internet_vlan and network_vlan in [single_interface] to the two VLAN ids (1-4094, different; 0 means untagged and is not a VLAN) ' +
  'your router trunks to this interface: the one toward the Internet and the one toward the subscribers';

/** What to do, added to a key's type/range error. */
const KEY_HINTS: Record<string, string> = {
  'single_interface.internet_vlan': STICK_VLANS,
  'single_interface.network_vlan': STICK_VLANS,
};
