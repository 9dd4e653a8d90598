/**
 * The Network Layout editor's model: tree edits on the network.json object itself (add, rename,
 * move and delete nodes, set a field) and the checks shown while the admin types. Pure: no Vue, no
 * DOM, no fetch. Every edit returns a new object and leaves the input unchanged; what an edit does
 * not touch is kept as it was: the order of keys, keys of a node the editor does not know, the
 * `children` of a renamed or moved node.
 *
 * A node is addressed by its path: the keys from the top level down (`['Downtown', 'Tower_North']`).
 * Node names are unique across the whole tree (lqosd refuses a file where a key, `name`, `id` or
 * `active_attachment_name` identifies two nodes: lib/inputs/network.ts), so add and rename refuse a
 * name another node already uses.
 */

/** network.json: the top-level object of nodes. */
export type NetworkObject = Record<string, unknown>;
export type NodePath = readonly string[];
type NodeObject = Record<string, unknown>;

/** An edit the tree cannot make (unknown node, name in use, move under itself); the message says why. */
export class TreeEditError extends Error {}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const SEP = '\u001f';

/** A stable string for a path (Map keys, Vue keys): the keys joined by a separator no name carries. */
export function pathKey(path: NodePath): string {
  return path.join(SEP);
}

/** Path keys (open nodes) after the node at `from` became `to` (renamed or moved): its subtree's keys follow it. */
export function movedKeys(keys: Iterable<string>, from: NodePath, to: NodePath): Set<string> {
  const prefix = pathKey(from);
  const out = new Set<string>();
  for (const k of keys) out.add(k === prefix || k.startsWith(prefix + SEP) ? pathKey(to) + k.slice(prefix.length) : k);
  return out;
}

/** The node at `path`, or undefined. */
export function nodeAt(net: NetworkObject, path: NodePath): NodeObject | undefined {
  let level: unknown = net;
  let node: unknown;
  for (const key of path) {
    if (!isObject(level) || !Object.hasOwn(level, key)) return undefined;
    node = level[key];
    if (!isObject(node)) return undefined;
    level = node.children;
  }
  return path.length > 0 ? (node as NodeObject) : undefined;
}

/** The object of nodes under `path` ([] = the top level): the node's `children` (empty when it has none). */
function childrenOf(net: NetworkObject, path: NodePath): NetworkObject {
  if (path.length === 0) return net;
  const node = nodeAt(net, path);
  if (!node) throw new TreeEditError(`there is no node ${describe(path)}`);
  return isObject(node.children) ? node.children : {};
}

/** `"Tower_North" (under "Downtown")` for messages. */
export function describe(path: NodePath): string {
  const name = `"${path[path.length - 1] ?? ''}"`;
  return path.length > 1 ? `${name} (under "${path[path.length - 2]}")` : name;
}

/** A copy of `net` with the object of nodes under `parent` replaced by `edit(it)`; the objects on the way are copied, the rest shared. */
function withChildren(net: NetworkObject, parent: NodePath, edit: (level: NetworkObject) => NetworkObject): NetworkObject {
  if (parent.length === 0) return edit(net);
  const [head, ...rest] = parent;
  const node = net[head!];
  if (!isObject(node)) throw new TreeEditError(`there is no node ${describe(parent)}`);
  const children = isObject(node.children) ? node.children : {};
  return replaceEntry(net, head!, head!, { ...node, children: withChildren(children, rest, edit) });
}

/** `level` with the entry `key` replaced by `newKey: value` at the same position. */
function replaceEntry(level: NetworkObject, key: string, newKey: string, value: unknown): NetworkObject {
  return Object.fromEntries(Object.entries(level).map(([k, v]) => (k === key ? [newKey, value] : [k, v])));
}

/** `level` without the entry `key`. */
function withoutEntry(level: NetworkObject, key: string): NetworkObject {
  return Object.fromEntries(Object.entries(level).filter(([k]) => k !== key));
}

// ---------------------------------------------------------------------------------------------
// Names

/** The strings that identify a node to a circuit's Parent Node / Parent Node ID: its key, `name`, `id`, `active_attachment_name`. */
export function aliasesOf(key: string, node: NodeObject): string[] {
  const out = [key];
  for (const field of ['name', 'id', 'active_attachment_name']) {
    const v = node[field];
    const s = typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '';
    if (s !== '' && !out.includes(s)) out.push(s);
  }
  return out;
}

export interface NodeEntry {
  path: string[];
  key: string;
  node: NodeObject;
  depth: number;
}

/** Every node object of the tree, parents before their children, in file order. */
export function allNodes(net: NetworkObject): NodeEntry[] {
  const out: NodeEntry[] = [];
  const walk = (level: NetworkObject, parent: string[]) => {
    for (const [key, node] of Object.entries(level)) {
      if (!isObject(node)) continue;
      const path = [...parent, key];
      out.push({ path, key, node, depth: parent.length });
      if (isObject(node.children)) walk(node.children, path);
    }
  };
  walk(net, []);
  return out;
}

export interface TreeRow extends NodeEntry {
  hasChildren: boolean;
}

/** The rows the tree shows: every node whose ancestors are all open (`isOpen(pathKey)`), in file order. */
export function visibleRows(net: NetworkObject, isOpen: (key: string) => boolean): TreeRow[] {
  const out: TreeRow[] = [];
  const walk = (level: NetworkObject, parent: string[]) => {
    for (const [key, node] of Object.entries(level)) {
      if (!isObject(node)) continue;
      const path = [...parent, key];
      const kids = isObject(node.children) ? node.children : undefined;
      const hasChildren = kids !== undefined && Object.values(kids).some(isObject);
      out.push({ path, key, node, depth: parent.length, hasChildren });
      if (hasChildren && isOpen(pathKey(path))) walk(kids!, path);
    }
  };
  walk(net, []);
  return out;
}

/** The pathKeys of `path`'s ancestors (to open them so the node shows). */
export function ancestorKeys(path: NodePath): string[] {
  return path.slice(0, -1).map((_, i) => pathKey(path.slice(0, i + 1)));
}

export const samePath = (a: NodePath, b: NodePath) => a.length === b.length && a.every((k, i) => k === b[i]);

/** Why `name` cannot name a node (empty, or another node already goes by it), or '' when it can. `self`: the node being renamed. */
export function nameProblem(net: NetworkObject, name: string, self?: NodePath): string {
  if (name.trim() === '') return 'a node needs a name';
  if (name !== name.trim()) return 'a name cannot start or end with a space';
  for (const e of allNodes(net)) {
    if (self && samePath(e.path, self)) continue;
    if (aliasesOf(e.key, e.node).includes(name)) {
      return `"${name}" is already used by node ${describe(e.path)}; node names must be unique across the whole tree`;
    }
  }
  return '';
}

// ---------------------------------------------------------------------------------------------
// Edits

/**
 * Adds `name` under `parent` ([] = top level), at the end. Without `fields`, the new node takes
 * its parent's rates (a child may not exceed them) and type "site".
 */
export function addChild(net: NetworkObject, parent: NodePath, name: string, fields?: NodeObject): NetworkObject {
  const problem = nameProblem(net, name);
  if (problem) throw new TreeEditError(problem);
  const node = fields ?? defaultNode(parent.length > 0 ? nodeAt(net, parent) : undefined);
  return withChildren(net, parent, (level) => ({ ...level, [name]: node }));
}

function defaultNode(parent: NodeObject | undefined): NodeObject {
  const out: NodeObject = {};
  for (const key of RATE_FIELDS) if (typeof parent?.[key] === 'number') out[key] = parent[key];
  out.type = 'site';
  return out;
}

/**
 * Renames the node at `path` to `name`: same place among its siblings, same fields and children.
 * A `name` field that repeated the old key follows it (otherwise the old name would still
 * identify the node).
 */
export function renameNode(net: NetworkObject, path: NodePath, name: string): NetworkObject {
  const node = nodeAt(net, path);
  if (!node) throw new TreeEditError(`there is no node ${describe(path)}`);
  const old = path[path.length - 1]!;
  if (name === old) return net;
  const problem = nameProblem(net, name, path);
  if (problem) throw new TreeEditError(problem);
  const renamed = node.name === old ? { ...node, name } : node;
  return withChildren(net, path.slice(0, -1), (level) => replaceEntry(level, old, name, renamed));
}

/** True when `path` is `ancestor` or lies below it. */
export function isWithin(path: NodePath, ancestor: NodePath): boolean {
  return path.length >= ancestor.length && ancestor.every((k, i) => path[i] === k);
}

/** Moves the node at `path` (with its subtree) to the end of `parent`'s children ([] = top level). */
export function moveNode(net: NetworkObject, path: NodePath, parent: NodePath): NetworkObject {
  const node = nodeAt(net, path);
  if (!node) throw new TreeEditError(`there is no node ${describe(path)}`);
  if (isWithin(parent, path)) {
    throw new TreeEditError(`${describe(path)} cannot move under ${samePath(parent, path) ? 'itself' : `its own descendant ${describe(parent)}`}`);
  }
  if (parent.length > 0 && !nodeAt(net, parent)) throw new TreeEditError(`there is no node ${describe(parent)}`);
  if (samePath(path.slice(0, -1), parent)) return net;
  const key = path[path.length - 1]!;
  if (Object.hasOwn(childrenOf(net, parent), key)) throw new TreeEditError(`${describe(parent)} already has a child "${key}"`);
  const removed = withChildren(net, path.slice(0, -1), (level) => withoutEntry(level, key));
  return withChildren(removed, parent, (level) => ({ ...level, [key]: node }));
}

/** Removes the node at `path` and everything under it. */
export function deleteNode(net: NetworkObject, path: NodePath): NetworkObject {
  if (!nodeAt(net, path)) throw new TreeEditError(`there is no node ${describe(path)}`);
  return withChildren(net, path.slice(0, -1), (level) => withoutEntry(level, path[path.length - 1]!));
}

/** The nodes a move of `path` may go under: every node outside its own subtree except its current parent, and [] (top level) unless it is there. */
export function moveTargets(net: NetworkObject, path: NodePath): string[][] {
  const parent = path.slice(0, -1);
  const nodes = allNodes(net)
    .map((e) => e.path)
    .filter((p) => !isWithin(p, path) && !samePath(p, parent));
  return parent.length > 0 ? [[], ...nodes] : nodes;
}

// ---------------------------------------------------------------------------------------------
// Fields

export const RATE_FIELDS = ['downloadBandwidthMbps', 'uploadBandwidthMbps'] as const;
export type EditableField = 'type' | (typeof RATE_FIELDS)[number] | 'latitude' | 'longitude';

/** The keys lqosd reads a coordinate from (the first present wins: lib/inputs/network.ts). */
const COORDINATE_KEYS = { latitude: ['latitude', 'lat'], longitude: ['longitude', 'lon', 'lng'] } as const;

/** The key of `node` that holds `field`: a coordinate may be spelt `lat`, `lon` or `lng`. */
export function fieldKey(node: NodeObject, field: EditableField): string {
  if (field !== 'latitude' && field !== 'longitude') return field;
  return COORDINATE_KEYS[field].find((k) => node[k] !== undefined && node[k] !== null) ?? field;
}

/** The field as the editor shows it ('' when absent). */
export function fieldText(node: NodeObject, field: EditableField): string {
  const v = node[fieldKey(node, field)];
  return v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * What typed text stores: '' removes the key; a number field stores a number when the text is
 * one, else the text itself (the checks then name it, and the save is held back until it is fixed).
 */
export function fieldValue(field: EditableField, text: string): unknown {
  const t = text.trim();
  if (t === '') return undefined;
  if (field === 'type') return t;
  const n = Number(t);
  return Number.isFinite(n) ? n : text;
}

/** True when two texts of `field` store the same value ("1." and "1"): the editor keeps what is being typed. */
export function sameFieldValue(field: EditableField, a: string, b: string): boolean {
  return fieldValue(field, a) === fieldValue(field, b);
}

/** Sets (or, for '', removes) a field of the node at `path`; an existing key keeps its position. */
export function setField(net: NetworkObject, path: NodePath, field: EditableField, text: string): NetworkObject {
  const node = nodeAt(net, path);
  if (!node) throw new TreeEditError(`there is no node ${describe(path)}`);
  const key = fieldKey(node, field);
  const value = fieldValue(field, text);
  const next = value === undefined ? withoutEntry(node, key) : { ...node, [key]: value };
  return withChildren(net, path.slice(0, -1), (level) => replaceEntry(level, path[path.length - 1]!, path[path.length - 1]!, next));
}

/** True for a virtual node (`type: "virtual"` or `virtual: true`): no rates of its own, its children hang under its parent. */
export function isVirtual(node: NodeObject): boolean {
  return node.virtual === true || (typeof node.type === 'string' && node.type.toLowerCase() === 'virtual');
}

// ---------------------------------------------------------------------------------------------
// Text

/** The JSON view's text of a network object. */
export function networkText(net: NetworkObject): string {
  return JSON.stringify(net, null, 2);
}

/** Parses the JSON view's text: the object, or why it cannot be shown as a tree. */
export function parseNetworkText(text: string): { network: NetworkObject } | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text.trim() === '' ? '{}' : text);
  } catch (e) {
    return { error: `not valid JSON: ${(e as Error).message}` };
  }
  return isObject(v) ? { network: v } : { error: 'network.json must be a JSON object of nodes ({} for a flat network)' };
}
