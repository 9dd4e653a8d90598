/**
 * The Network Layout editor's checks, run on every edit: each finding names the node and the field.
 * They follow what lqosd does with the file (lib/inputs/network.ts, lib/plan/tree.ts):
 * - errors lqosd refuses the file for: a node that is not an object, `children` that is not an
 *   object, a name (key, `name`, `id`, `active_attachment_name`) that identifies two nodes, a rate
 *   that is not a number or is negative, a `type` that is not a string;
 * - warnings it accepts the file with: a missing or 0 rate (the node inherits its parent's), a rate
 *   above its parent's (clamped to the parent when planned);
 * - coordinates: lqosd ignores one outside −90..90 / −180..180 or not a number (a warning there);
 *   the editor holds the save back instead, since a typed one is almost always a typo.
 */
import { aliasesOf, describe, fieldKey, isObject, isVirtual, type NetworkObject, type NodePath, pathKey, RATE_FIELDS } from './networkTree.ts';

export interface TreeIssue {
  severity: 'error' | 'warning';
  path: string[];
  /** The field the finding is about (`name`, `downloadBandwidthMbps`, `latitude`, …; `node` for the node itself). */
  field: string;
  message: string;
}

/** Effective rate of the nearest real node above (undefined at the top: the link rate, unknown here). */
type Ceilings = Partial<Record<(typeof RATE_FIELDS)[number], { mbps: number; from: NodePath }>>;

/** Every finding of the tree, parents first, in file order. */
export function checkNetwork(net: NetworkObject): TreeIssue[] {
  const issues: TreeIssue[] = [];
  const claims = new Map<string, string[]>();
  const walk = (level: NetworkObject, parent: string[], ceilings: Ceilings) => {
    for (const [key, node] of Object.entries(level)) {
      const path = [...parent, key];
      if (!isObject(node)) {
        issues.push(error(path, 'node', `${describe(path)} is not a node object (it is ${kindOf(node)}); fix it in the JSON view`));
        continue;
      }
      checkNames(path, node, claims, issues);
      checkType(path, node, issues);
      const own = checkRates(path, node, ceilings, issues);
      checkCoordinates(path, node, issues);
      if (isObject(node.children)) walk(node.children, path, isVirtual(node) ? ceilings : { ...ceilings, ...own });
      else if (node.children !== undefined && node.children !== null) {
        issues.push(error(path, 'children', `${describe(path)}: children must be an object of nodes, not ${kindOf(node.children)}; fix it in the JSON view`));
      }
    }
  };
  walk(net, [], {});
  return issues;
}

const error = (path: string[], field: string, message: string): TreeIssue => ({ severity: 'error', path, field, message });
const warning = (path: string[], field: string, message: string): TreeIssue => ({ severity: 'warning', path, field, message });

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'string' ? `the text "${v}"` : `a ${typeof v}`;
}

/** An empty name, or one another node already goes by (claims: alias → the path that claimed it first). */
function checkNames(path: string[], node: Record<string, unknown>, claims: Map<string, string[]>, issues: TreeIssue[]): void {
  const key = path[path.length - 1]!;
  if (key.trim() === '') issues.push(error(path, 'name', `a node under ${path.length > 1 ? describe(path.slice(0, -1)) : 'the top level'} has an empty name`));
  for (const alias of aliasesOf(key, node)) {
    const owner = claims.get(alias);
    if (!owner) {
      claims.set(alias, path);
      continue;
    }
    const field = alias === key ? 'name' : (['name', 'id', 'active_attachment_name'].find((f) => String(node[f]).trim() === alias) ?? 'name');
    issues.push(error(path, field, `${describe(path)}: ${field} "${alias}" is already used by node ${describe(owner)}; node names must be unique across the whole tree`));
  }
}

function checkType(path: string[], node: Record<string, unknown>, issues: TreeIssue[]): void {
  if (node.type !== undefined && node.type !== null && typeof node.type !== 'string') {
    issues.push(error(path, 'type', `${describe(path)}: type must be text such as "site", "ap" or "virtual"`));
  }
}

/** Checks both rates; returns the node's effective ceilings for its children. */
function checkRates(path: string[], node: Record<string, unknown>, ceilings: Ceilings, issues: TreeIssue[]): Ceilings {
  const own: Ceilings = {};
  for (const field of RATE_FIELDS) {
    const v = node[field];
    const above = ceilings[field];
    if (v === undefined || v === null || v === 0) {
      if (!isVirtual(node)) {
        issues.push(warning(path, field, `${describe(path)}: ${field} is ${v === 0 ? '0' : 'missing'}; the node inherits ${above ? `its parent's ${above.mbps} Mbps` : 'the link rate'} — set the site's real capacity`));
      }
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      issues.push(error(path, field, `${describe(path)}: ${field} must be a number of Mbps (e.g. 500), not ${kindOf(v)}`));
      continue;
    }
    if (v < 0) {
      issues.push(error(path, field, `${describe(path)}: ${field} is negative (${v}); write the capacity in Mbps`));
      continue;
    }
    if (isVirtual(node)) continue; // Not shaped itself: its rates are not compared (nor passed down).
    if (above && v > above.mbps) {
      issues.push(warning(path, field, `${describe(path)}: ${field} ${v} Mbps is more than ${describe(above.from)} allows (${above.mbps} Mbps); lqosd clamps it to the parent's`));
    }
    own[field] = above && above.mbps < v ? above : { mbps: v, from: path };
  }
  return own;
}

const COORDINATE_LIMITS = [
  ['latitude', 90],
  ['longitude', 180],
] as const;

function checkCoordinates(path: string[], node: Record<string, unknown>, issues: TreeIssue[]): void {
  for (const [field, limit] of COORDINATE_LIMITS) {
    const key = fieldKey(node, field);
    const v = node[key];
    if (v === undefined || v === null) continue;
    const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (!Number.isFinite(x) || Math.abs(x) > limit) {
      issues.push(error(path, field, `${describe(path)}: ${key} must be a number between -${limit} and ${limit}${Number.isFinite(x) ? ` (it is ${x})` : ''}`));
    }
  }
}

export interface FieldProblem {
  severity: 'error' | 'warning';
  text: string;
}

/** The findings about one field of a node, joined, with the worst severity (undefined: none). */
export function fieldProblem(issues: readonly TreeIssue[], field: string): FieldProblem | undefined {
  const mine = issues.filter((i) => i.field === field);
  if (!mine.length) return undefined;
  return { severity: mine.some((i) => i.severity === 'error') ? 'error' : 'warning', text: mine.map((i) => i.message).join(' ') };
}

/** pathKey → the worst severity among the node's findings (the tree's badges). */
export function worstByNode(issues: readonly TreeIssue[]): Map<string, 'error' | 'warning'> {
  const out = new Map<string, 'error' | 'warning'>();
  for (const i of issues) {
    const k = pathKey(i.path);
    if (out.get(k) !== 'error') out.set(k, i.severity);
  }
  return out;
}
