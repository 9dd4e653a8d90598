/**
 * Writing a changed lqos.conf the way the operator wrote it: the keys that changed are rewritten
 * on their own lines (a trailing comment kept), removed keys' lines dropped, new keys added at the
 * end of their table (new tables at the end of the file); comments, blank lines, key order and
 * spacing elsewhere stay byte for byte. Handles top-level keys and keys of `[table]` /
 * `[table.sub]` sections; values are written on one line, lists of tables as inline
 * `[{ k = v }, ...]`. A file with anything else (`[[...]]` arrays of tables, dotted keys) returns
 * undefined and the caller writes the whole document instead. The result is checked: it must parse to `after`.
 */
import { parse, stringify } from 'smol-toml';

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Equal as TOML values (smol-toml's tables have no prototype: a deep equality that ignores it, and key order). */
function same(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.toISOString() === b.toISOString();
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (isTable(a) || isTable(b)) {
    if (!isTable(a) || !isTable(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
  }
  return Object.is(a, b);
}

interface KeyLine {
  /** First and last line (inclusive) the key's value spans. */
  first: number;
  last: number;
  /** Offset in `first` where the value starts, and in `last` where it ends (before a comment). */
  valueStart: number;
  valueEnd: number;
}

interface Layout {
  /** By table path ('' = top level) then key. */
  keys: Map<string, Map<string, KeyLine>>;
  /** Line of each table's header, and the last line that belongs to the table. */
  tables: Map<string, { header: number; end: number }>;
}

const HEADER = /^\s*\[\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*\]\s*(#.*)?$/;
const KEY = /^(\s*)([A-Za-z0-9_-]+|"[^"\\]*")(\s*=\s*)/;

/** Where a value starting at (line, col) ends: strings, nested brackets and multi-line strings followed. */
function valueEnd(lines: string[], line: number, col: number): { last: number; end: number } | undefined {
  let depth = 0;
  let l = line;
  let i = col;
  let lastSignificant = { last: line, end: col };
  while (l < lines.length) {
    const s = lines[l]!;
    while (i < s.length) {
      const c = s[i]!;
      if (c === '#') break;
      if (c === '"' || c === "'") {
        const triple = s.startsWith(c.repeat(3), i);
        const close = triple ? c.repeat(3) : c;
        let j = i + close.length;
        for (;;) {
          if (j >= (lines[l] ?? '').length) {
            if (!triple) return undefined;
            l++;
            j = 0;
            if (l >= lines.length) return undefined;
            continue;
          }
          const t = lines[l]!;
          if (c === '"' && t[j] === '\\') {
            j += 2;
            continue;
          }
          if (t.startsWith(close, j)) break;
          j++;
        }
        i = j + close.length;
        lastSignificant = { last: l, end: i };
        continue;
      }
      if (c === '[' || c === '{') depth++;
      if (c === ']' || c === '}') depth--;
      if (!/\s/.test(c)) lastSignificant = { last: l, end: i + 1 };
      i++;
    }
    if (depth <= 0) return lastSignificant;
    l++;
    i = 0;
  }
  return undefined;
}

function layoutOf(lines: string[]): Layout | undefined {
  const keys = new Map<string, Map<string, KeyLine>>([['', new Map()]]);
  const tables = new Map<string, { header: number; end: number }>([['', { header: -1, end: -1 }]]);
  let table = '';
  for (let n = 0; n < lines.length; n++) {
    const s = lines[n]!;
    if (/^\s*(#.*)?$/.test(s)) continue;
    if (/^\s*\[\[/.test(s)) {
      // An array of tables ([[uisp_integration.exception_cpes]] blocks): kept as it is. Its keys go to
      // a table no edit names; an edit of the array itself does not read back and is refused below.
      table = `\u0000${n}`;
      tables.set(table, { header: n, end: n });
      keys.set(table, new Map());
      continue;
    }
    const h = HEADER.exec(s);
    if (h) {
      table = h[1]!.replace(/\s+/g, '');
      if (tables.has(table)) return undefined;
      tables.set(table, { header: n, end: n });
      keys.set(table, new Map());
      continue;
    }
    const k = KEY.exec(s);
    if (!k) return undefined; // dotted keys or something unexpected
    const end = valueEnd(lines, n, k[0].length);
    if (!end) return undefined;
    const key = k[2]!.startsWith('"') ? k[2]!.slice(1, -1) : k[2]!;
    keys.get(table)!.set(key, { first: n, last: end.last, valueStart: k[0].length, valueEnd: end.end });
    tables.get(table)!.end = end.last;
    n = end.last;
  }
  return { keys, tables };
}

/** A key as TOML writes it: bare when it can be, else a quoted (escaped) string. */
const keyText = (k: string): string => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k).replaceAll('\x7f', '\\u007f'));

/**
 * The TOML text of one value (as it would follow `key = `), always on one line: arrays (also of
 * tables, which smol-toml's `stringify` would write as `[[key]]` blocks) as `[ a, b ]`, tables as
 * inline `{ k = v, ... }`. Scalars (strings with their escapes, numbers, dates) as smol-toml writes them.
 */
function valueText(v: unknown): string {
  if (v === null || v === undefined) throw new TypeError('TOML has no null or undefined values');
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[ ${v.map(valueText).join(', ')} ]`;
  if (isTable(v)) {
    const entries = Object.entries(v);
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, x]) => `${keyText(k)} = ${valueText(x)}`).join(', ')} }`;
  }
  const line = stringify({ x: v }).trim();
  return line.slice(line.indexOf('=') + 1).trim();
}

/** Leaf changes between two documents, as [table path, key, new value | undefined]. Undefined: not expressible. */
function changes(before: Table, after: Table): [string, string, unknown][] | undefined {
  const out: [string, string, unknown][] = [];
  const walk = (b: Table, a: Table, path: string): boolean => {
    for (const key of new Set([...Object.keys(b), ...Object.keys(a)])) {
      const bv = b[key];
      const av = a[key];
      if (same(bv, av)) continue;
      if (isTable(av) || isTable(bv)) {
        if (!isTable(av) && av !== undefined) return false;
        if (!isTable(bv) && bv !== undefined) return false;
        if (path.split('.').length >= 2 && path !== '') return false;
        if (!walk((bv as Table) ?? {}, (av as Table) ?? {}, path === '' ? key : `${path}.${key}`)) return false;
        continue;
      }
      out.push([path, key, av]);
    }
    return true;
  };
  return walk(before, after, '') ? out : undefined;
}

/** `text` changed to hold `after` (see the module comment), or undefined when it cannot be done in place. */
export function patchTomlText(text: string, after: Table): string | undefined {
  let before: Table;
  try {
    before = parse(text) as Table;
  } catch {
    return undefined;
  }
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split(/\r?\n/);
  const layout = layoutOf(lines);
  const diff = changes(before, after);
  if (!layout || !diff) return undefined;
  const replace = new Map<number, { last: number; text: string[] }>();
  const addTo = new Map<string, string[]>();
  for (const [table, key, value] of diff) {
    // A value TOML cannot hold (null or undefined inside a list or inline table): left to the caller's whole-document write.
    try {
      if (value !== undefined) valueText(value);
    } catch {
      return undefined;
    }
    const at = layout.keys.get(table)?.get(key);
    if (at) {
      const head = lines[at.first]!.slice(0, at.valueStart);
      const tail = lines[at.last]!.slice(at.valueEnd);
      replace.set(at.first, { last: at.last, text: value === undefined ? [] : [`${head}${valueText(value)}${tail}`] });
    } else if (value !== undefined) {
      const list = addTo.get(table) ?? [];
      list.push(`${keyText(key)} = ${valueText(value)}`);
      addTo.set(table, list);
    }
  }
  const out: string[] = [];
  const endOf = new Map<number, string[]>();
  const appended: string[] = [];
  for (const [table, added] of addTo) {
    const t = layout.tables.get(table);
    if (!t) appended.push('', `[${table}]`, ...added);
    else if (table === '' && t.end < 0) out.push(...added);
    else endOf.set(t.end, [...(endOf.get(t.end) ?? []), ...added]);
  }
  for (let n = 0; n < lines.length; n++) {
    const r = replace.get(n);
    if (r) {
      out.push(...r.text);
      for (let m = n; m <= r.last; m++) if (endOf.has(m)) out.push(...endOf.get(m)!);
      n = r.last;
      continue;
    }
    out.push(lines[n]!);
    if (endOf.has(n)) out.push(...endOf.get(n)!);
  }
  if (appended.length > 0) {
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    out.push(...appended, '');
  }
  const result = out.join(eol);
  try {
    return same(parse(result), after) ? result : undefined;
  } catch {
    return undefined;
  }
}
