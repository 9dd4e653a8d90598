/**
 * network.json saved from the web editor, changed only where a value changed: every value that is
 * still the same keeps its text (indentation, line endings, key order, number spelling such as
 * `1000.0` or `5e2`, `\u00e9` escapes, integers beyond 2^53), and a changed value is written in its
 * place. Pure.
 *
 * Only value changes are made in place. A save that adds, removes or renames a key or an array item,
 * or turns a value into an object or array, returns undefined: the caller writes the whole document.
 */
import { isDeepStrictEqual } from 'node:util';
import { parseJsonWithLines, type JsonValue } from './network.ts';

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `text` edited to hold `after`, or undefined when that is not a change of values only (see above). */
export function editNetworkText(text: string, after: unknown): string | undefined {
  let root: JsonValue;
  try {
    root = parseJsonWithLines(text);
  } catch {
    return undefined;
  }
  const splices: { start: number; end: number; text: string }[] = [];
  const replace = (v: JsonValue, a: unknown): boolean => {
    if (typeof a === 'object' && a !== null) return false; // a value that became a structure
    if (a === undefined || (typeof a === 'number' && !Number.isFinite(a))) return false;
    splices.push({ start: v.start, end: v.end, text: JSON.stringify(a) });
    return true;
  };
  const walk = (v: JsonValue, a: unknown): boolean => {
    switch (v.kind) {
      case 'object': {
        if (!isPlainObject(a)) return false;
        const keys = v.entries.map((e) => e.key);
        const unique = new Set(keys);
        // Duplicate keys (the reader reports them), or keys added or removed: not values only.
        if (unique.size !== keys.length || Object.keys(a).length !== keys.length || Object.keys(a).some((k) => !unique.has(k))) return false;
        return v.entries.every((e) => walk(e.value, a[e.key]));
      }
      case 'array':
        return Array.isArray(a) && a.length === v.items.length && v.items.every((item, i) => walk(item, a[i]));
      case 'number':
      case 'string':
      case 'boolean':
        return a === v.value || replace(v, a);
      case 'null':
        return a === null || replace(v, a);
    }
  };
  if (!walk(root, after)) return undefined;
  let out = text;
  for (const s of splices.sort((x, y) => y.start - x.start)) out = out.slice(0, s.start) + s.text + out.slice(s.end);
  // The edit must read back as the document asked for (JSON's own reading).
  try {
    return isDeepStrictEqual(JSON.parse(out), JSON.parse(JSON.stringify(after))) ? out : undefined;
  } catch {
    return undefined;
  }
}
