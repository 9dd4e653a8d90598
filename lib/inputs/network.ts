/**
 * network.json reader: the site/AP tree. A small position-tracking JSON parser keeps the line of every
 * key (for issue reporting) and sees duplicate keys that JSON.parse would silently collapse.
 */
import type { Circuit, InputIssue, NetworkNode } from '../model.ts';

// ---------------------------------------------------------------------------------------------
// Position-tracking JSON

type JsonValueKind =
  | { kind: 'object'; entries: JsonEntry[]; line: number }
  | { kind: 'array'; items: JsonValue[]; line: number }
  | { kind: 'string'; value: string; line: number }
  | { kind: 'number'; value: number; raw: string; line: number }
  | { kind: 'boolean'; value: boolean; line: number }
  | { kind: 'null'; line: number };

/** A value with its line and its place in the text: `start` at its first character, `end` just after its last. */
export type JsonValue = JsonValueKind & { start: number; end: number };

export interface JsonEntry {
  key: string;
  /** 1-based line of the key. */
  line: number;
  /** The key's place in the text: its opening quote, and just after its closing quote. */
  keyStart: number;
  keyEnd: number;
  value: JsonValue;
}

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
    readonly offset: number,
  ) {
    super(message);
  }
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Strict RFC 8259 parser producing values with line numbers. Throws JsonSyntaxError. */
export function parseJsonWithLines(text: string): JsonValue {
  return new JsonReader(text).readDocument();
}

/** Scanner state of parseJsonWithLines: the text, the position and the line at that position. */
class JsonReader {
  private pos = 0;
  private line = 1;
  private readonly n: number;

  constructor(private readonly text: string) {
    this.n = text.length;
  }

  /** One value and nothing but blanks after it. */
  readDocument(): JsonValue {
    const v = this.parseValue(0);
    this.skipWs();
    if (this.pos < this.n) this.fail(`unexpected ${this.describe(this.pos)} after the end of the JSON value`);
    return v;
  }

  private fail(message: string, at = this.pos): never {
    // Recompute line/column for `at` (may differ from the scan position).
    const text = this.text;
    let l = 1;
    let ls = 0;
    for (let p = text.indexOf('\n'); p >= 0 && p < at; p = text.indexOf('\n', p + 1)) {
      l++;
      ls = p + 1;
    }
    throw new JsonSyntaxError(message, l, at - ls + 1, at);
  }

  private describe(p: number): string {
    const text = this.text;
    return p >= this.n ? 'the end of the file' : text[p] === '"' ? 'a string' : `"${text[p]}"`;
  }

  /** Blanks and line breaks (counting lines). */
  private skipWs(): void {
    const text = this.text;
    while (this.pos < this.n) {
      const c = text.charCodeAt(this.pos);
      if (c === 10) {
        this.line++;
        this.pos++;
      } else if (c === 32 || c === 9 || c === 13) this.pos++;
      else break;
    }
  }

  /** A string starting at the opening quote at `pos`. */
  private parseString(): string {
    const text = this.text;
    const startPos = this.pos;
    let pos = startPos + 1; // opening quote
    let simple = true;
    while (pos < this.n) {
      const c = text.charCodeAt(pos);
      if (c === 34) {
        const raw = text.slice(startPos, pos + 1);
        this.pos = pos + 1;
        if (simple) return raw.slice(1, -1);
        try {
          return JSON.parse(raw) as string;
        } catch {
          return this.fail('invalid escape sequence in string', startPos);
        }
      }
      if (c === 92) {
        simple = false;
        const e = text[pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) this.fail('invalid \\u escape in string', pos);
          pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail('invalid escape sequence in string', pos);
        pos += 2;
        continue;
      }
      if (c < 0x20) this.fail(c === 10 ? 'unterminated string (strings cannot span lines)' : 'control character inside a string', pos);
      pos++;
    }
    return this.fail('unterminated string', startPos);
  }

  private parseValue(depth: number): JsonValue {
    if (depth > 512) this.fail('nesting is too deep');
    this.skipWs();
    const vLine = this.line;
    const start = this.pos;
    const c = this.text[this.pos];
    const v: JsonValueKind =
      c === '{' ? this.parseObject(depth, vLine) : c === '[' ? this.parseArray(depth, vLine) : c === '"' ? { kind: 'string', value: this.parseString(), line: vLine } : this.parseScalar(c, vLine);
    return Object.assign(v, { start, end: this.pos });
  }

  /** An object starting at the `{` at `pos`. */
  private parseObject(depth: number, vLine: number): JsonValueKind {
    const text = this.text;
    this.pos++;
    const entries: JsonEntry[] = [];
    this.skipWs();
    if (text[this.pos] === '}') {
      this.pos++;
      return { kind: 'object', entries, line: vLine };
    }
    for (;;) {
      this.skipWs();
      if (text[this.pos] !== '"') {
        if (text[this.pos] === '}' && entries.length > 0) this.fail('trailing comma before "}" is not allowed in JSON');
        this.fail(`expected a property name in double quotes but found ${this.describe(this.pos)}`);
      }
      const kLine = this.line;
      const keyStart = this.pos;
      const key = this.parseString();
      const keyEnd = this.pos;
      this.skipWs();
      if (text[this.pos] !== ':') this.fail(`expected ":" after property name "${key}" but found ${this.describe(this.pos)}`);
      this.pos++;
      const value = this.parseValue(depth + 1);
      entries.push({ key, line: kLine, keyStart, keyEnd, value });
      this.skipWs();
      if (text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      if (text[this.pos] === '}') {
        this.pos++;
        return { kind: 'object', entries, line: vLine };
      }
      this.fail(
        `expected "," or "}" after the value of "${key}" but found ${this.describe(this.pos)}${text[this.pos] === '"' ? ' (a comma is probably missing)' : ''}`,
      );
    }
  }

  /** An array starting at the `[` at `pos`. */
  private parseArray(depth: number, vLine: number): JsonValueKind {
    const text = this.text;
    this.pos++;
    const items: JsonValue[] = [];
    this.skipWs();
    if (text[this.pos] === ']') {
      this.pos++;
      return { kind: 'array', items, line: vLine };
    }
    for (;;) {
      this.skipWs();
      if (text[this.pos] === ']' && items.length > 0) this.fail('trailing comma before "]" is not allowed in JSON');
      items.push(this.parseValue(depth + 1));
      this.skipWs();
      if (text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      if (text[this.pos] === ']') {
        this.pos++;
        return { kind: 'array', items, line: vLine };
      }
      this.fail(`expected "," or "]" in array but found ${this.describe(this.pos)}${text[this.pos] === '"' ? ' (a comma is probably missing)' : ''}`);
    }
  }

  /** true, false, null or a number, whose first character `c` is at `pos`. */
  private parseScalar(c: string | undefined, vLine: number): JsonValueKind {
    const text = this.text;
    if (c === 't' && text.startsWith('true', this.pos)) {
      this.pos += 4;
      return { kind: 'boolean', value: true, line: vLine };
    }
    if (c === 'f' && text.startsWith('false', this.pos)) {
      this.pos += 5;
      return { kind: 'boolean', value: false, line: vLine };
    }
    if (c === 'n' && text.startsWith('null', this.pos)) {
      this.pos += 4;
      return { kind: 'null', line: vLine };
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.parseNumber(vLine);
    if (this.pos >= this.n) return this.fail('unexpected end of file; a value, "}" or "]" is missing');
    if (c === "'") return this.fail('strings must use double quotes, not single quotes');
    return this.fail(`unexpected ${this.describe(this.pos)}`);
  }

  private parseNumber(vLine: number): JsonValueKind {
    const text = this.text;
    NUMBER_RE.lastIndex = this.pos;
    const m = NUMBER_RE.exec(text);
    if (!m) return this.fail(`invalid number`);
    const raw = m[0];
    this.pos += raw.length;
    const next = text[this.pos];
    if (next !== undefined && /[0-9A-Za-z.+\-]/.test(next)) this.fail(`invalid number "${raw}${next}"`, this.pos);
    return { kind: 'number', value: Number(raw), raw, line: vLine };
  }
}

// ---------------------------------------------------------------------------------------------
// network.json → NetworkNode[]

const BANDWIDTH_FIELDS = [
  ['downloadBandwidthMbps', 'downloadMbps'],
  ['uploadBandwidthMbps', 'uploadMbps'],
] as const;
const MIN_FIELDS = [
  ['downloadBandwidthMbpsMin', 'downloadMinMbps', 'downloadBandwidthMbps'],
  ['uploadBandwidthMbpsMin', 'uploadMinMbps', 'uploadBandwidthMbps'],
] as const;

function kindName(v: JsonValue): string {
  switch (v.kind) {
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return 'null';
  }
}

function shortValue(v: JsonValue): string {
  switch (v.kind) {
    case 'object':
      return '{…}';
    case 'array':
      return '[…]';
    case 'string':
      return JSON.stringify(v.value);
    case 'number':
      return v.raw;
    case 'boolean':
      return String(v.value);
    default:
      return 'null';
  }
}

function lastEntries(obj: { entries: JsonEntry[] }): Map<string, JsonEntry> {
  const m = new Map<string, JsonEntry>();
  for (const e of obj.entries) m.set(e.key, e);
  return m;
}

/**
 * Parse network.json text. `{}` is a flat network (no nodes); an empty file is an error. Issue codes:
 * `json-syntax`, `invalid-network`, `no-valid-nodes`, `invalid-node`, `duplicate-node`,
 * `invalid-bandwidth`, `min-above-max`, `invalid-children`, `invalid-field`, `duplicate-node-alias`
 * (a key, `name`, `id` or `active_attachment_name` that identifies two different nodes), warnings
 * `missing-bandwidth`, `duplicate-key`, `invalid-coordinate`.
 */
export function parseNetworkJson(text: string, file: string): { nodes: NetworkNode[]; issues: InputIssue[] } {
  const issues: InputIssue[] = [];
  const root = readRootObject(text, file, issues);
  if (!root) return { nodes: [], issues };
  const nodes = new NetworkReader(file, issues).readLevel(root.entries, '');
  if (root.entries.length > 0 && !root.entries.some((e) => e.value.kind === 'object')) {
    issues.push({
      severity: 'error',
      code: 'no-valid-nodes',
      file,
      line: root.line,
      message: 'network.json has entries but none of them is a node object; describe the sites as {"Site_1": {...}} or use {} for a flat network',
    });
  }
  return { nodes, issues };
}

type JsonObject = Extract<JsonValue, { kind: 'object' }>;

/** The top-level object of network.json, or undefined (with an error in `issues`) when there is none. */
function readRootObject(text: string, file: string, issues: InputIssue[]): JsonObject | undefined {
  const body = text.charCodeAt(0) === 0xfeff ? ' ' + text.slice(1) : text;
  if (body.trim() === '') {
    issues.push({
      severity: 'error',
      code: 'json-syntax',
      file,
      line: 1,
      message: 'the file is empty; write {} for a flat network (no sites)',
    });
    return undefined;
  }
  let root: JsonValue;
  try {
    root = parseJsonWithLines(body);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    const lineText = body.split('\n')[e.line - 1] ?? '';
    issues.push({
      severity: 'error',
      code: 'json-syntax',
      file,
      line: e.line,
      value: lineText.trim().slice(0, 80),
      message: `invalid JSON at line ${e.line}, column ${e.column}: ${e.message}; fix the syntax (a missing or extra comma is the usual cause)`,
    });
    return undefined;
  }
  if (root.kind === 'object') return root;
  issues.push({
    severity: 'error',
    code: 'invalid-network',
    file,
    line: root.line,
    value: shortValue(root),
    message: `the top level must be an object of nodes ({"Site_1": {...}}), not ${kindName(root)}; use {} for a flat network`,
  });
  return undefined;
}

const NAME_KEYS = ['name', 'active_attachment_name'] as const;

/**
 * Every string that identifies a node to a circuit's Parent Node / Parent Node ID: its key, `name`,
 * `id` and `active_attachment_name` (validation makes sure no string identifies two nodes).
 */
export function nodeAliases(n: NetworkNode): string[] {
  const out = [n.name];
  for (const a of [n.displayName, n.id, n.attachmentName]) if (a !== undefined && a !== '' && !out.includes(a)) out.push(a);
  return out;
}

/** A node as a circuit's Parent Node / Parent Node ID reaches it (see nodesByAlias). */
export interface AliasTarget {
  /** The node the alias names. */
  node: NetworkNode;
  /**
   * The real node a circuit naming it hangs under: the node itself, or for a virtual node its
   * nearest real ancestor (null = none, a virtual node at the top: the generated parent nodes).
   */
  attachTo: NetworkNode | null;
}

/**
 * Every alias (nodeAliases) of every node → the node and the real node a circuit naming it is
 * attached to; the first node claiming an alias (depth first, in file order) keeps it (an alias of
 * two nodes is a `duplicate-node-alias` error). The one resolution of parent names for the validator (conflicting Parent
 * Node / Parent Node ID) and the planner (lib/plan/tree.ts byAlias).
 */
export function nodesByAlias(nodes: readonly NetworkNode[]): Map<string, AliasTarget> {
  const out = new Map<string, AliasTarget>();
  const visit = (list: readonly NetworkNode[], real: NetworkNode | null): void => {
    for (const n of list) {
      const attachTo = n.virtual ? real : n;
      for (const a of nodeAliases(n)) if (!out.has(a)) out.set(a, { node: n, attachTo });
      visit(n.children, attachTo);
    }
  };
  visit(nodes, null);
  return out;
}

/** Names the planner gives its generated parent nodes (one per queue): `Generated_PN_1`, `Generated_PN_2`, … */
export const GENERATED_PN_RE = /^Generated_PN_[1-9]\d*$/;

/**
 * The warning for a circuit with an empty Parent Node whose Parent Node ID matches no node: it is
 * shaped under a generated parent node instead (upstream's fallback). Raised by the validator and
 * the planner alike (same code, line, column and value, so the pipeline keeps one).
 */
export function unknownParentIdIssue(devicesFile: string, c: Circuit, networkFile = 'network.json'): InputIssue {
  return {
    severity: 'warning',
    code: 'unknown-parent-id',
    file: devicesFile,
    line: c.line,
    column: 'Parent Node ID',
    value: c.parentNodeId,
    message: `circuit "${c.id}" has no Parent Node and its Parent Node ID "${c.parentNodeId}" is not a node of ${networkFile}; it is shaped under a generated parent node like an unparented circuit — fix the Parent Node ID or fill in Parent Node`,
  };
}

/** A node that an alias string identifies: where it was claimed (for the conflict message). */
interface AliasClaim {
  node: string;
  /** JSON path of the field (or of the node, for its key). */
  path: string;
  line: number;
}
const COORDINATES = [
  [['latitude', 'lat'], 'latitude', 90],
  [['longitude', 'lon', 'lng'], 'longitude', 180],
] as const;

/** Turns network.json objects into NetworkNodes; holds the names and ids seen so far and the issues. */
class NetworkReader {
  private readonly seenNames = new Map<string, number>();
  /** Alias string (key, name, id, active_attachment_name) → the node that claimed it first. */
  private readonly aliasOwner = new Map<string, AliasClaim>();

  constructor(
    private readonly file: string,
    private readonly issues: InputIssue[],
  ) {}

  private err(code: string, line: number, column: string, value: string | undefined, message: string): void {
    this.issues.push({ severity: 'error', code, file: this.file, line, column, value, message });
  }

  private warn(code: string, line: number, column: string, value: string | undefined, message: string): void {
    this.issues.push({ severity: 'warning', code, file: this.file, line, column, value, message });
  }

  /** The nodes of one object of nodes (the top level or a `children` object). */
  readLevel(entries: JsonEntry[], parentPath: string): NetworkNode[] {
    const out: NetworkNode[] = [];
    const siblings = new Map<string, number>();
    for (const entry of entries) {
      const name = entry.key;
      const path = parentPath === '' ? name : `${parentPath}.children.${name}`;
      const v = entry.value;
      if (v.kind !== 'object') {
        this.err(
          'invalid-node',
          entry.line,
          path,
          shortValue(v),
          `node "${name}" must be an object like {"downloadBandwidthMbps": 100, "uploadBandwidthMbps": 100}, not ${kindName(v)}; fix or remove it`,
        );
        continue;
      }
      const prevLine = this.seenNames.get(name);
      if (prevLine !== undefined) {
        const sameLevel = siblings.has(name);
        this.err(
          'duplicate-node',
          entry.line,
          path,
          name,
          `node name "${name}" is used more than once (lines ${prevLine} and ${entry.line}${sameLevel ? ', in the same object' : ''}); node names must be unique across the whole tree — rename one of them`,
        );
        continue;
      }
      this.seenNames.set(name, entry.line);
      siblings.set(name, entry.line);
      out.push(this.readNode(name, path, entry.line, v));
    }
    return out;
  }

  /** One node and (recursively) its children. */
  private readNode(name: string, path: string, line: number, obj: JsonObject): NetworkNode {
    const node: NetworkNode = { name, downloadMbps: 0, uploadMbps: 0, virtual: false, children: [], line };
    this.warnDuplicateKeys(name, path, obj);
    const f = lastEntries(obj);
    this.readType(node, path, f);
    this.readBandwidths(node, path, line, f);
    this.readMinimums(node, path, f);
    this.readId(node, path, f);
    this.readDisplayName(node, path, f);
    this.claimAliases(node, path, line, f);
    this.readCoordinates(node, path, f);
    const ch = f.get('children');
    if (ch && ch.value.kind !== 'null') {
      if (ch.value.kind === 'object') node.children = this.readLevel(ch.value.entries, path);
      else {
        this.err(
          'invalid-children',
          ch.line,
          `${path}.children`,
          shortValue(ch.value),
          `children of "${name}" must be an object of nodes ({"AP_1": {...}}), not ${kindName(ch.value)}; use {} or remove the key for no children`,
        );
      }
    }
    return node;
  }

  /** Duplicate keys inside one node: the last one wins (like JSON.parse) — say so. */
  private warnDuplicateKeys(name: string, path: string, obj: JsonObject): void {
    const keys = new Map<string, number>();
    for (const e of obj.entries) {
      const prev = keys.get(e.key);
      if (prev !== undefined) {
        this.warn(
          'duplicate-key',
          e.line,
          `${path}.${e.key}`,
          e.key,
          `key "${e.key}" appears twice in node "${name}" (lines ${prev} and ${e.line}); the last one is used — remove the other`,
        );
      }
      keys.set(e.key, e.line);
    }
  }

  /** `type` (a string; "virtual" makes the node virtual) and `virtual` (a boolean). */
  private readType(node: NetworkNode, path: string, f: Map<string, JsonEntry>): void {
    const typeE = f.get('type');
    if (typeE && typeE.value.kind !== 'null') {
      if (typeE.value.kind === 'string') {
        node.type = typeE.value.value;
        if (typeE.value.value.toLowerCase() === 'virtual') node.virtual = true;
      } else {
        this.err('invalid-field', typeE.line, `${path}.type`, shortValue(typeE.value), `type must be a string such as "site", "ap" or "virtual"`);
      }
    }
    const virtE = f.get('virtual');
    if (virtE && virtE.value.kind !== 'null') {
      if (virtE.value.kind === 'boolean') {
        if (virtE.value.value) node.virtual = true;
      } else {
        this.err('invalid-field', virtE.line, `${path}.virtual`, shortValue(virtE.value), `virtual must be true or false (without quotes)`);
      }
    }
  }

  /** Download and upload capacity; missing or 0 inherits the parent's (warned unless virtual). */
  private readBandwidths(node: NetworkNode, path: string, line: number, f: Map<string, JsonEntry>): void {
    const name = node.name;
    for (const [key, prop] of BANDWIDTH_FIELDS) {
      const e = f.get(key);
      const col = `${path}.${key}`;
      if (!e || e.value.kind === 'null') {
        if (!node.virtual) {
          this.warn(
            'missing-bandwidth',
            e?.line ?? line,
            col,
            undefined,
            `node "${name}" has no ${key}; it will inherit its parent's value (the link capacity at the top level) — set it to the site's real capacity`,
          );
        }
        continue;
      }
      if (e.value.kind !== 'number') {
        this.err('invalid-bandwidth', e.line, col, shortValue(e.value), `${key} must be a number of Mbps (e.g. 500), not ${kindName(e.value)}`);
        continue;
      }
      const x = e.value.value;
      if (!Number.isFinite(x)) {
        this.err('invalid-bandwidth', e.line, col, e.value.raw, `${key} is out of range; write the node's capacity in Mbps`);
        continue;
      }
      if (x < 0) {
        this.err('invalid-bandwidth', e.line, col, e.value.raw, `${key} is negative; write the node's capacity in Mbps (0 or missing inherits the parent's value)`);
        continue;
      }
      if (x === 0) {
        if (!node.virtual) {
          this.warn(
            'missing-bandwidth',
            e.line,
            col,
            e.value.raw,
            `node "${name}" has ${key} 0; it will inherit its parent's value (the link capacity at the top level) — set it to the site's real capacity`,
          );
        }
        continue;
      }
      node[prop] = x;
    }
  }

  /** Optional guaranteed rates (`…Min`), at most the node's own capacity. */
  private readMinimums(node: NetworkNode, path: string, f: Map<string, JsonEntry>): void {
    for (const [key, prop, maxKey] of MIN_FIELDS) {
      const e = f.get(key);
      if (!e || e.value.kind === 'null') continue;
      const col = `${path}.${key}`;
      if (e.value.kind !== 'number') {
        this.err('invalid-bandwidth', e.line, col, shortValue(e.value), `${key} must be a number of Mbps (e.g. 100), not ${kindName(e.value)}`);
        continue;
      }
      const x = e.value.value;
      if (!Number.isFinite(x) || x < 0) {
        this.err('invalid-bandwidth', e.line, col, e.value.raw, `${key} must be a number of Mbps ≥ 0; write the guaranteed rate in Mbps or remove the key`);
        continue;
      }
      const max = prop === 'downloadMinMbps' ? node.downloadMbps : node.uploadMbps;
      if (max > 0 && x > max) {
        this.err(
          'min-above-max',
          e.line,
          col,
          e.value.raw,
          `${key} (${x}) is greater than ${maxKey} (${max}); the guaranteed rate cannot exceed the maximum — lower ${key} or raise ${maxKey}`,
        );
        continue;
      }
      node[prop] = x;
    }
  }

  /** `id` (string or number); an id another node also carries is reported by claimAliases. */
  private readId(node: NetworkNode, path: string, f: Map<string, JsonEntry>): void {
    const idE = f.get('id');
    if (!idE || idE.value.kind === 'null') return;
    const iv = idE.value;
    if (iv.kind !== 'string' && iv.kind !== 'number') {
      this.err('invalid-field', idE.line, `${path}.id`, shortValue(iv), `id must be a string or a number`);
      return;
    }
    const id = iv.kind === 'string' ? iv.value.trim() : iv.raw;
    if (id !== '') node.id = id;
  }

  /** Display name: the first non-empty of `name`, `active_attachment_name`; the latter is also kept as attachmentName. */
  private readDisplayName(node: NetworkNode, path: string, f: Map<string, JsonEntry>): void {
    for (const key of NAME_KEYS) {
      const e = f.get(key);
      if (!e || e.value.kind === 'null') continue;
      if (e.value.kind !== 'string') {
        this.err('invalid-field', e.line, `${path}.${key}`, shortValue(e.value), `${key} must be a string`);
        continue;
      }
      const s = e.value.value.trim();
      if (s === '') continue;
      if (node.displayName === undefined) node.displayName = s;
      if (key === 'active_attachment_name') node.attachmentName = s;
    }
  }

  /**
   * Records the node's aliases (key, `name`, `id`, `active_attachment_name`); one that another node
   * already carries is an error naming both nodes, since a circuit naming it could mean either.
   */
  private claimAliases(node: NetworkNode, path: string, line: number, f: Map<string, JsonEntry>): void {
    const fieldOf = (key: string, value: string | undefined): AliasClaim & { value: string; field: string } | undefined => {
      const e = f.get(key);
      return value === undefined || !e ? undefined : { value, field: key, node: node.name, path: `${path}.${key}`, line: e.line };
    };
    const name = f.get('name')?.value;
    const claims = [
      { value: node.name, field: 'key', node: node.name, path, line },
      fieldOf('name', name?.kind === 'string' && name.value.trim() !== '' ? name.value.trim() : undefined),
      fieldOf('id', node.id),
      fieldOf('active_attachment_name', node.attachmentName),
    ];
    for (const c of claims) {
      if (!c) continue;
      const owner = this.aliasOwner.get(c.value);
      if (!owner) {
        this.aliasOwner.set(c.value, c);
        continue;
      }
      if (owner.node === node.name) continue;
      this.err(
        'duplicate-node-alias',
        c.line,
        c.path,
        c.value,
        `"${c.value}" identifies two nodes: "${owner.node}" (${this.file} line ${owner.line}, ${owner.path}) and "${node.name}" (${this.file} line ${c.line}, ${c.path}); a circuit's Parent Node or Parent Node ID naming it could mean either — every key, name, id and active_attachment_name must identify one node, so rename or remove one of them`,
      );
    }
  }

  /** Latitude and longitude for the site map: the first key present of each; invalid ones are ignored. */
  private readCoordinates(node: NetworkNode, path: string, f: Map<string, JsonEntry>): void {
    for (const [keys, prop, limit] of COORDINATES) {
      for (const key of keys) {
        const e = f.get(key);
        if (!e || e.value.kind === 'null') continue;
        const v = e.value;
        const x = v.kind === 'number' ? v.value : v.kind === 'string' && v.value.trim() !== '' ? Number(v.value) : NaN;
        if (!Number.isFinite(x) || Math.abs(x) > limit) {
          this.warn(
            'invalid-coordinate',
            e.line,
            `${path}.${key}`,
            shortValue(v),
            `${key} must be a number between -${limit} and ${limit}; it is ignored (only the site map uses it)`,
          );
          break;
        }
        node[prop] = x;
        break;
      }
    }
  }
}
