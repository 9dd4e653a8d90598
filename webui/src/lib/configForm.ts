/**
 * The values of a configuration form: from the config as GET /api/config returns it, checked, and
 * turned into the PUT /api/config patch (only what changed; PUT merges key by key).
 */
import ipaddr from 'ipaddr.js';
import { getPath, setPath, type Field } from './configFields';

type Config = Record<string, unknown>;

const isNumeric = (f: Field) => f.type === 'int' || f.type === 'number';
const isBlank = (v: unknown) => v === '' || v === null || v === undefined;

/** The form value of a field (the schema default while the key is unset). */
export function fromConfig(f: Field, c: Config): unknown {
  const v = getPath(c, f.key) ?? f.default;
  if (f.type === 'bool') return Boolean(v);
  if (f.numeric) return v === undefined || v === null ? '' : String(v);
  if (f.type === 'list') return Array.isArray(v) ? v.join('\n') : '';
  if (f.type === 'json') return v === undefined || v === null ? '[]' : JSON.stringify(v, null, 2);
  if (v === undefined || v === null) return '';
  return v;
}

/** The value to send, or an Error for input that cannot be sent. undefined = leave unset; null = remove. */
export function normalise(f: Field, v: unknown): unknown {
  if (isNumeric(f)) {
    if (isBlank(v)) return f.optional ? null : undefined;
    return Number(v);
  }
  if (f.type === 'list') return String(v ?? '').split('\n').map((x) => x.trim()).filter(Boolean);
  if (f.type === 'json') {
    try {
      return JSON.parse(String(v ?? '').trim() || '[]');
    } catch (err) {
      return new Error(`${f.label}: not valid JSON (${(err as Error).message})`);
    }
  }
  if (f.type === 'text' || f.type === 'select') {
    const s = String(v ?? '').trim();
    if (s === '' && f.optional) return null;
    return f.numeric && s !== '' ? Number(s) : s;
  }
  return v;
}

function numberProblem(f: Field, n: number): string | undefined {
  if (!Number.isFinite(n)) return `${f.label} must be a number.`;
  if (f.type === 'int' && !Number.isInteger(n)) return `${f.label} must be a whole number.`;
  if (f.min !== undefined && n < f.min) return `${f.label} must be at least ${f.min}.`;
  if (f.max !== undefined && n > f.max) return `${f.label} must be at most ${f.max}.`;
  if (f.above !== undefined && n <= f.above) return `${f.label} must be more than ${f.above}.`;
  if (f.below !== undefined && n >= f.below) return `${f.label} must be less than ${f.below}.`;
  return undefined;
}

const parses = (parse: (s: string) => unknown) => (s: string) => {
  try {
    parse(s);
    return true;
  } catch {
    return false;
  }
};
/** The formats the server checks (lib/config/schema.ts), checked here first to name the field and the value. */
const FORMATS = {
  cidr: { ok: parses((s) => ipaddr.parseCIDR(s)), what: 'a subnet in CIDR form such as 10.0.0.0/8 or 2001:db8::/32' },
  ip: { ok: (s: string) => ipaddr.isValid(s), what: 'an IP address such as 192.0.2.10 or 2001:db8::10' },
};

/** Values of a field that are not in its format (`format`), one sentence each. */
function formatProblems(f: Field, n: unknown): string[] {
  if (!f.format) return [];
  const { ok, what } = FORMATS[f.format];
  const items = Array.isArray(n) ? n.map(String) : typeof n === 'string' && n !== '' ? [n] : [];
  return items.filter((x) => !ok(x)).map((x) => `${f.label}: "${x}" is not ${what}.`);
}

/** What keeps one field from being saved, one sentence each naming the field. */
export function fieldProblems(f: Field, v: unknown): string[] {
  const p: string[] = [];
  const n = normalise(f, v);
  if (n instanceof Error) p.push(n.message);
  if (isNumeric(f) && !f.optional && isBlank(v)) p.push(`${f.label} is required.`);
  if (f.required && f.type === 'text' && String(v ?? '').trim() === '') p.push(`${f.label} is required.`);
  const bad = isNumeric(f) && typeof n === 'number' ? numberProblem(f, n) : undefined;
  if (bad) p.push(bad);
  if (f.type === 'json' && !(n instanceof Error) && !Array.isArray(n)) p.push(`${f.label} must be a JSON list ([...]).`);
  p.push(...formatProblems(f, n));
  return p;
}

/** What keeps the form from being saved, one sentence each. */
export function problemsOf(fields: Field[], values: Record<string, unknown>): string[] {
  return fields.flatMap((f) => fieldProblems(f, values[f.key]));
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The changed keys as a PUT /api/config patch. Secrets are sent only when a new value was typed;
 * `all` sends every value (a section that is new to the file).
 */
export function patchOf(fields: Field[], values: Record<string, unknown>, secrets: Record<string, string | undefined>, config: Config, all = false): Config {
  const out: Config = {};
  for (const f of fields) {
    if (f.type === 'secret') {
      const s = secrets[f.key];
      if (s !== undefined) setPath(out, f.key, s);
      continue;
    }
    const now = normalise(f, values[f.key]);
    if (now === undefined || now instanceof Error) continue;
    if (!all && same(now, normalise(f, fromConfig(f, config)))) continue;
    // an optional key that was never set stays unset
    if (now === null && getPath(config, f.key) === undefined) continue;
    setPath(out, f.key, now);
  }
  return out;
}
