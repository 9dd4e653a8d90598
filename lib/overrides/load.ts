/**
 * Reading and validating `lqos_overrides.json`. Every problem becomes an OverridesError whose message
 * names the file, the JSON path and what is wrong, e.g.
 *   /opt/libreqos/src/lqos_overrides.json: circuit_adjustments[2].max_download_bandwidth: expected a number > 0, got "fast"
 * A missing file means "no overrides" (not an error); an empty file is an error (as upstream).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { JsonSyntaxError, parseJsonWithLines } from '../inputs/network.ts';
import { overridesSchemas, type Overrides } from './schema.ts';


export class OverridesError extends Error {
  constructor(
    message: string,
    readonly file: string,
    /** One line per problem: `<json path>: <what is wrong>`. */
    readonly details: string[],
  ) {
    super(message);
    this.name = 'OverridesError';
  }
}

export type LoadedOverrides = { present: false; file: string } | { present: true; file: string; overrides: Overrides; text: string };

function jsonPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const t = JSON.stringify(v) ?? String(v);
  return t.length > 60 ? `${t.slice(0, 57)}...` : t;
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let v = raw;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

const TYPE_NAMES: Record<string, string> = { number: 'a number', string: 'a string', boolean: 'true or false', array: 'a list', object: 'an object', int: 'an integer' };

function describe(issue: z.core.$ZodIssue, raw: unknown): string {
  const where = jsonPath(issue.path);
  const found = valueAt(raw, issue.path);
  switch (issue.code) {
    case 'invalid_type':
      return found === undefined
        ? `${where}: missing (expected ${TYPE_NAMES[issue.expected] ?? issue.expected})`
        : `${where}: expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${show(found)}`;
    case 'too_small':
      if (issue.origin === 'number') return `${where}: expected a number ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}, got ${show(found)}`;
      if (issue.origin === 'string') return `${where}: must not be empty`;
      return `${where}: ${issue.message}`;
    case 'too_big':
      return `${where}: expected at most ${String(issue.maximum)}, got ${show(found)}`;
    case 'unrecognized_keys':
      return `${where}: unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (check the spelling)`;
    case 'invalid_union': {
      const t = (found as { type?: unknown } | undefined)?.type;
      if (found && typeof found === 'object' && 'type' in found) {
        return `${where}.type: unknown adjustment type ${show(t)}`;
      }
      return `${where}: ${issue.message}, got ${show(found)}`;
    }
    case 'invalid_value':
      return `${where}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${show(found)}`;
    default:
      return `${where}: ${issue.message}`;
  }
}

/** Validates parsed JSON; throws OverridesError. Pure. */
export function parseOverrides(raw: unknown, file: string): Overrides {
  const r = overridesSchemas().overridesSchema.safeParse(raw);
  if (r.success) return r.data;
  const details = r.error.issues.map((i) => describe(i, raw));
  const shown = details.slice(0, 10);
  const more = details.length > shown.length ? `\n  … and ${details.length - shown.length} more problem(s)` : '';
  throw new OverridesError(`${file}: invalid overrides, nothing from this file was applied:\n  ${shown.map((d) => `${file}: ${d}`).join('\n  ')}${more}`, file, details);
}

/** Parses overrides text; throws OverridesError (syntax errors name line and column). */
export function parseOverridesText(text: string, file: string): Overrides {
  if (text.trim() === '') {
    throw new OverridesError(`${file}: the overrides file is empty; write {} for "no overrides" or delete the file`, file, ['(top level): file is empty']);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    let where = '';
    try {
      parseJsonWithLines(text);
    } catch (e2) {
      if (e2 instanceof JsonSyntaxError) where = `line ${e2.line}, column ${e2.column}: ${e2.message}`;
    }
    const msg = where || (e as Error).message;
    throw new OverridesError(`${file}: not valid JSON (${msg}); nothing from this file was applied`, file, [`(syntax) ${msg}`]);
  }
  return parseOverrides(raw, file);
}

/** Reads `file` (the config's inputPaths().overrides); absent → `{present: false}`. Throws OverridesError. */
export function loadOverrides(file: string): LoadedOverrides {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { present: false, file };
    throw new OverridesError(`${file}: cannot read the overrides file: ${(e as Error).message}`, file, [(e as Error).message]);
  }
  return { present: true, file, text, overrides: parseOverridesText(text, file) };
}
