/**
 * network.json saved from the web editor, changed only where the document changed. Pure.
 *
 * Every value that is still the same keeps its text (indentation, line endings, key order, number
 * spelling such as `1000.0` or `5e2`, `\u00e9` escapes, integers beyond 2^53); a changed value is
 * written in its place. Structural edits are made in place too:
 *   - a removed key goes with its comma, the lines around it left as they were;
 *   - an added key goes after the object's last entry, laid out like its siblings (same indentation,
 *     separator, line ending; on one line inside a one-line object);
 *   - a renamed key (one key gone and one new at the same place, as the tree editor renames) changes
 *     only its name, and its value keeps its text;
 *   - a node moved to another parent (the same key gone from one object and added to another) takes
 *     its own text along, re-indented for its new depth;
 *   - a value that became an object or array, or an array of another length, is written in its place
 *     in the file's indentation.
 * Numeric keys (`"42"`) keep their place in the file: JavaScript objects list them first, so their
 * order in `after` says nothing. The result is read back and must equal `after`; undefined when it
 * does not (or the file is not JSON, or has duplicate keys, or `after` is not an object): the caller
 * then writes the whole document.
 */
import { isDeepStrictEqual } from 'node:util';
import { parseJsonWithLines, type JsonEntry, type JsonValue } from './network.ts';

type JsonObjectValue = Extract<JsonValue, { kind: 'object' }>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A key JavaScript lists first in an object (an array index), whatever its place in the text. */
const isIndexKey = (k: string): boolean => /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 2 ** 32 - 1;

class NotInPlace extends Error {}

/** How the file is laid out, for text it did not have before. */
interface Style {
  eol: string;
  /** One level of indentation. */
  unit: string;
}

function styleOf(text: string): Style {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  let unit: string | undefined;
  for (const m of text.matchAll(/\n([ \t]+)\S/g)) {
    const ws = m[1]!;
    if (ws.startsWith('\t')) {
      unit = '\t';
      break;
    }
    if (unit === undefined || ws.length < unit.length) unit = ws;
  }
  return { eol, unit: unit ?? '  ' };
}

/** One entry of an object as it will be written: an entry of the file (maybe renamed) or a new one. */
type Item = { old: JsonEntry; index: number; key: string } | { key: string; value: unknown };

class Editor {
  private readonly style: Style;
  /** Entries removed from their object, by key: a node moved elsewhere takes its text from here. */
  private readonly movable = new Map<string, { entry: JsonEntry; used: boolean }[]>();
  private collecting = true;

  constructor(private readonly text: string) {
    this.style = styleOf(text);
  }

  /** The edited text of the whole document. */
  document(root: JsonValue, after: unknown): string {
    this.render(root, after, true); // first pass: what was removed where
    this.collecting = false;
    for (const list of this.movable.values()) for (const m of list) m.used = false;
    return this.text.slice(0, root.start) + this.render(root, after, true) + this.text.slice(root.end);
  }

  /** The leading whitespace of the line that holds `pos`. */
  private indentAt(pos: number): string {
    const lineStart = this.text.lastIndexOf('\n', pos - 1) + 1;
    return /^[ \t]*/.exec(this.text.slice(lineStart, pos))![0];
  }

  /** `value` as new text: indented from `base` over several lines, or on one line. */
  private serialize(value: unknown, base: string, multiline: boolean): string {
    if (value === undefined || (typeof value === 'number' && !Number.isFinite(value))) throw new NotInPlace();
    if (multiline) return JSON.stringify(value, null, this.style.unit).split('\n').join(this.style.eol + base);
    const inline = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
      if (isPlainObject(v)) {
        const entries = Object.entries(v);
        return entries.length ? `{ ${entries.map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(', ')} }` : '{}';
      }
      if (v === undefined || (typeof v === 'number' && !Number.isFinite(v))) throw new NotInPlace();
      return JSON.stringify(v);
    };
    return inline(value);
  }

  /** The text of `v` (the file's value at its place) edited to hold `a`. `multiline`: its surroundings span lines. */
  private render(v: JsonValue, a: unknown, multiline: boolean): string {
    const own = this.text.slice(v.start, v.end);
    const base = this.indentAt(v.start);
    switch (v.kind) {
      case 'object':
        return isPlainObject(a) ? this.renderObject(v, a, multiline) : this.serialize(a, base, own.includes('\n') || (multiline && typeof a === 'object' && a !== null));
      case 'array': {
        if (!Array.isArray(a) || a.length !== v.items.length) return this.serialize(a, base, own.includes('\n') || (multiline && v.items.length === 0));
        const spansLines = own.includes('\n');
        let out = '';
        let at = v.start;
        v.items.forEach((item, i) => {
          out += this.text.slice(at, item.start) + this.render(item, a[i], spansLines);
          at = item.end;
        });
        return out + this.text.slice(at, v.end);
      }
      case 'number':
      case 'string':
      case 'boolean':
        return a === v.value ? own : this.serialize(a, base, multiline);
      case 'null':
        return a === null ? own : this.serialize(a, base, multiline);
    }
  }

  private renderObject(v: JsonObjectValue, a: Record<string, unknown>, multiline: boolean): string {
    const E = v.entries;
    const keys = E.map((e) => e.key);
    if (new Set(keys).size !== keys.length) throw new NotInPlace(); // duplicate keys: the reader reports them
    const afterKeys = Object.keys(a);
    const has = new Set(keys);
    const removed = E.filter((e) => !Object.hasOwn(a, e.key));
    const added = afterKeys.filter((k) => !has.has(k));
    // Named keys in the order `after` lists them; index keys are left out (see the header).
    const wanted = afterKeys.filter((k) => !isIndexKey(k)).join('\0');
    const orderOf = (items: Item[]) => items.map((i) => i.key).filter((k) => !isIndexKey(k)).join('\0');

    let items: Item[] = E.flatMap((old, index) => (Object.hasOwn(a, old.key) ? [{ old, index, key: old.key }] : []));
    let rest = added;
    if (removed.length === 1 && added.length === 1) {
      // A rename keeps its place: the new key where the old one was, if that is where `after` has it.
      const renamed: Item[] = E.map((old, index) => ({ old, index, key: old === removed[0] ? added[0]! : old.key }));
      if (orderOf(renamed) === wanted) {
        items = renamed;
        rest = [];
      }
    }
    if (rest.length === added.length && this.collecting) {
      for (const entry of removed) {
        const list = this.movable.get(entry.key) ?? [];
        list.push({ entry, used: false });
        this.movable.set(entry.key, list);
      }
    }
    items = [...items, ...rest.map((key) => ({ key, value: a[key] }))];
    if (orderOf(items) !== wanted && !afterKeys.some(isIndexKey) && !keys.some(isIndexKey)) {
      const rank = new Map(afterKeys.map((k, i) => [k, i]));
      items.sort((x, y) => rank.get(x.key)! - rank.get(y.key)!);
    }
    if (items.length === 0) return '{}';
    if (E.length > 0 && items.length === E.length && items.every((it, i) => 'old' in it && it.index === i && it.key === it.old.key)) {
      // Same keys in the same order: the file's text between them as it is.
      const spansLines = this.text.slice(v.start, v.end).includes('\n');
      let out = '';
      let at = v.start;
      for (const e of E) {
        out += this.text.slice(at, e.value.start) + this.render(e.value, a[e.key], spansLines);
        at = e.value.end;
      }
      return out + this.text.slice(at, v.end);
    }

    // The object's layout: from its entries, else (it was empty) from where it stands.
    let lead: string, trail: string, sep: string, colon: string, entryIndent: string, lines: boolean;
    if (E.length > 0) {
      lead = this.text.slice(v.start + 1, E[0]!.keyStart);
      trail = this.text.slice(E[E.length - 1]!.value.end, v.end - 1);
      colon = this.text.slice(E[0]!.keyEnd, E[0]!.value.start);
      lines = lead.includes('\n');
      entryIndent = lines ? lead.slice(lead.lastIndexOf('\n') + 1) : '';
      sep = E.length > 1 ? this.text.slice(E[0]!.value.end, E[1]!.keyStart) : `,${lines ? this.style.eol + entryIndent : ' '}`;
    } else {
      lines = multiline;
      const base = this.indentAt(v.start);
      entryIndent = lines ? base + this.style.unit : '';
      lead = lines ? this.style.eol + entryIndent : ' ';
      trail = lines ? this.style.eol + base : ' ';
      sep = `,${lead}`;
      colon = ': ';
    }
    const pieces = items.map((it) => {
      if ('old' in it) {
        const keyText = it.key === it.old.key ? this.text.slice(it.old.keyStart, it.old.keyEnd) : JSON.stringify(it.key);
        return keyText + this.text.slice(it.old.keyEnd, it.old.value.start) + this.render(it.old.value, a[it.key], lines);
      }
      return JSON.stringify(it.key) + colon + this.moved(it.key, it.value, entryIndent, lines);
    });
    let out = `{${lead}${pieces[0]}`;
    for (let i = 1; i < items.length; i++) {
      const p = items[i - 1]!;
      const c = items[i]!;
      // Two entries that were neighbours keep what stood between them.
      const between = 'old' in p && 'old' in c && c.index === p.index + 1 ? this.text.slice(p.old.value.end, c.old.keyStart) : sep;
      out += between + pieces[i];
    }
    return out + trail + '}';
  }

  /** The text of a new entry's value: a node moved from elsewhere keeps its own text, re-indented. */
  private moved(key: string, value: unknown, entryIndent: string, lines: boolean): string {
    const from = this.collecting ? undefined : this.movable.get(key)?.find((m) => !m.used);
    if (from && lines && from.entry.value.kind === 'object' && isPlainObject(value)) {
      const was = this.indentAt(from.entry.keyStart);
      const text = this.render(from.entry.value, value, true);
      const [first, ...next] = text.split('\n');
      if (next.every((l) => l.startsWith(was) || l.trim() === '')) {
        from.used = true;
        return [first, ...next.map((l) => (l.trim() === '' ? l : entryIndent + l.slice(was.length)))].join('\n');
      }
    }
    return this.serialize(value, entryIndent, lines);
  }
}

/** `text` edited to hold `after` (see the header), or undefined: the caller writes the whole document. */
export function editNetworkText(text: string, after: unknown): string | undefined {
  let root: JsonValue;
  try {
    root = parseJsonWithLines(text);
  } catch {
    return undefined;
  }
  if (root.kind !== 'object' || !isPlainObject(after)) return undefined;
  let out: string;
  try {
    out = new Editor(text).document(root, after);
  } catch (e) {
    if (e instanceof NotInPlace) return undefined;
    throw e;
  }
  // The edit must read back as the document asked for (JSON's own reading).
  try {
    return isDeepStrictEqual(JSON.parse(out), JSON.parse(JSON.stringify(after))) ? out : undefined;
  } catch {
    return undefined;
  }
}
