/**
 * Reading and replacing ShapedDevices.csv / network.json from the web API. Every write is validated
 * with validateInputs together with the other (current) file; when the file being written has errors
 * nothing is written. A write whose circuits would leave out more than `[safety] max_removed_percent`
 * of the circuits in force is refused too (MassRemovalRefused, lib/shaping/massRemoval.ts) unless
 * the admin confirmed it (`force`).
 */
import { basename } from 'node:path';
import type { Circuit, InputIssue, ShapingPlan, SqmKind } from '../model.ts';
import { massRemovalVerdict, refusalMessage, type MassRemovalVerdict } from '../shaping/massRemoval.ts';
import { formatIssue, validateInputs } from '../inputs/validate.ts';
import { formatSqm, writeShapedDevices } from '../inputs/writeShapedDevices.ts';
import { CellEditError, setCsvCells } from '../inputs/csvCellEdit.ts';
import { editNetworkText } from '../inputs/networkTextEdit.ts';
import { rewriteInOperatorsLayout } from '../inputs/rewriteShapedDevices.ts';
import { parseShapedDevices } from '../inputs/shapedDevices.ts';
import { unknownParentsAsErrors } from '../shaping/runInputs.ts';
import { orphansOf, reparentEdits, type OrphanDecision, type OrphanReport } from './orphans.ts';
import { readInputFile } from '../shaping/inputs.ts';
import { encodeInputText, type InputEncoding } from '../inputs/encoding.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import { DATA_FILE_MODE, modeAtMost } from '../util/fileModes.ts';

export interface InputFiles {
  devices: string;
  network: string;
}

/** What a missing network.json reads as. */
const EMPTY_NETWORK = '{}\n';

/** Text of network.json as validation sees it: a missing file is a flat network. */
function networkText(path: string): string {
  return readInputFile(path, { name: basename(path) })?.text ?? EMPTY_NETWORK;
}

const EMPTY_DEVICES = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n';

function devicesText(path: string): string | undefined {
  return readInputFile(path, { name: basename(path) })?.text;
}

/**
 * Writes an input file in the encoding the current file has (a UTF-8 BOM, UTF-16 or a Windows-1252
 * export stays so: an edit of one row does not re-encode the others). A character the file's
 * encoding cannot hold makes it UTF-8, with the warning returned.
 */
function writeInputText(path: string, text: string, encoding: InputEncoding): InputIssue | undefined {
  const bytes = encodeInputText(text, encoding);
  writeFileAtomic(path, bytes ?? text, { backup: true, mode: modeAtMost(path, DATA_FILE_MODE) });
  if (bytes) return undefined;
  return {
    severity: 'warning',
    code: 'input-encoding',
    file: basename(path),
    message: `${basename(path)} was ${encoding}; a new value has a character ${encoding} cannot hold, so the file was written as UTF-8 (the previous file is ${basename(path)}.bak)`,
  };
}

function validate(files: InputFiles, devices: string, network: string) {
  return validateInputs({
    devicesText: devices,
    devicesFile: basename(files.devices),
    networkText: network,
    networkFile: basename(files.network),
  });
}

/** An issue as the API returns it: structured plus the one-line text. */
export function issueOut(i: InputIssue) {
  return { ...i, text: formatIssue(i) };
}

export function readShapedDevicesPayload(files: InputFiles) {
  const file = readInputFile(files.devices, { name: basename(files.devices) });
  if (file === undefined) return { exists: false, circuits: [] as Circuit[], issues: [] };
  const r = validate(files, file.text, networkText(files.network));
  return { exists: true, circuits: r.inputs.circuits, issues: [...file.issues, ...r.issues].map(issueOut) };
}

export function readNetworkPayload(files: InputFiles) {
  const file = readInputFile(files.network, { name: basename(files.network) });
  if (file === undefined) return { exists: false, network: {}, issues: [] };
  const text = file.text;
  const r = validate(files, devicesText(files.devices) ?? EMPTY_DEVICES, text);
  const issues = [...file.issues, ...r.issues.filter((i) => i.file === basename(files.network))].map(issueOut);
  let network: unknown = null;
  try {
    network = JSON.parse(text);
  } catch {
    // reported in issues; the raw text lets an editor show it
    return { exists: true, network: null, text, issues };
  }
  return { exists: true, network, issues };
}

// ---------------------------------------------------------------------------------------------
// JSON schemas of the PUT bodies

/** CSV cells cannot hold line breaks (they would shift every line number after them). */
const cell = (max = 1024) => ({ type: 'string', maxLength: max, pattern: '^[^\\r\\n]*$' });
const rate = { type: 'number' };
const sqmKind = { type: 'string', enum: ['cake', 'fq_codel', 'none'] };

const deviceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: cell(256),
    name: cell(),
    mac: cell(128),
    ipv4: { type: 'array', maxItems: 4096, items: cell(64) },
    ipv6: { type: 'array', maxItems: 4096, items: cell(64) },
    comment: cell(),
    line: { type: 'integer' },
  },
};

const circuitSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'downloadMinMbps', 'uploadMinMbps', 'downloadMaxMbps', 'uploadMaxMbps', 'devices'],
  properties: {
    id: cell(256),
    name: cell(),
    parentNode: cell(),
    parentNodeId: cell(256),
    anchorNodeId: cell(256),
    downloadMinMbps: rate,
    uploadMinMbps: rate,
    downloadMaxMbps: rate,
    uploadMaxMbps: rate,
    sqm: {
      type: 'object',
      additionalProperties: false,
      properties: { download: sqmKind, upload: sqmKind },
    },
    comment: cell(),
    line: { type: 'integer' },
    devices: { type: 'array', maxItems: 4096, items: deviceSchema },
  },
};

export const shapedDevicesBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['circuits'],
  properties: { circuits: { type: 'array', maxItems: 1_000_000, items: circuitSchema }, force: { type: 'boolean' } },
};

export const networkBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['network'],
  properties: { network: { type: 'object' }, force: { type: 'boolean' }, orphans: { type: 'string', enum: ['reparent', 'keep'] } },
};

// ---------------------------------------------------------------------------------------------
// Writes

interface DeviceBody {
  id: string;
  name?: string;
  mac?: string;
  ipv4?: string[];
  ipv6?: string[];
  comment?: string;
}
export interface CircuitBody {
  id: string;
  name: string;
  parentNode?: string;
  parentNodeId?: string;
  anchorNodeId?: string;
  downloadMinMbps: number;
  uploadMinMbps: number;
  downloadMaxMbps: number;
  uploadMaxMbps: number;
  sqm?: { download?: SqmKind; upload?: SqmKind };
  comment?: string;
  devices: DeviceBody[];
}

export class InputsRejected extends Error {
  constructor(
    message: string,
    readonly issues: ReturnType<typeof issueOut>[],
  ) {
    super(message);
  }
}

/** The mass-removal guard of a save: the plan in force and `[safety] max_removed_percent`. */
export interface RemovalGuard {
  /** The plan in force (undefined: nothing applied, nothing to guard). */
  inForce: ShapingPlan | undefined;
  maxRemovedPercent: number;
  /** The admin confirmed the removal. */
  force: boolean;
}

/** A save refused because it would unshape too many circuits; nothing was written. */
export class MassRemovalRefused extends Error {
  constructor(readonly verdict: MassRemovalVerdict) {
    super(`saving this would unshape ${verdict.removed} of the ${verdict.total} shaped circuits; nothing was written — ${refusalMessage(verdict).replace(/^refused: /, '')}`);
  }
}

/** What a save removes (circuits in force that the saved inputs no longer have). */
export interface RemovalCheck {
  verdict: MassRemovalVerdict;
  /** Every removed circuit id (the verdict has the first ones). */
  removedIds: string[];
}

/** Throws MassRemovalRefused when the guard refuses; the check when the removal is over the limit but forced. */
function checkRemoval(guard: RemovalGuard | undefined, circuits: readonly { id: string }[]): RemovalCheck | undefined {
  if (!guard?.inForce) return undefined;
  const ids = new Set(circuits.map((c) => c.id));
  const verdict = massRemovalVerdict(guard.inForce.circuits, ids, { maxRemovedPercent: guard.maxRemovedPercent, force: guard.force });
  if (verdict.refuse) throw new MassRemovalRefused(verdict);
  if (!verdict.allowedBy) return undefined;
  return { verdict, removedIds: guard.inForce.circuits.filter((c) => !ids.has(c.id)).map((c) => c.id) };
}

function toCircuit(b: CircuitBody): Circuit {
  const c: Circuit = {
    id: b.id,
    name: b.name,
    parentNode: b.parentNode ?? '',
    parentNodeId: b.parentNodeId ?? '',
    anchorNodeId: b.anchorNodeId ?? '',
    downloadMinMbps: b.downloadMinMbps,
    uploadMinMbps: b.uploadMinMbps,
    downloadMaxMbps: b.downloadMaxMbps,
    uploadMaxMbps: b.uploadMaxMbps,
    comment: b.comment ?? '',
    line: 0,
    devices: b.devices.map((d) => ({
      id: d.id,
      name: d.name ?? '',
      mac: d.mac ?? '',
      ipv4: d.ipv4 ?? [],
      ipv6: d.ipv6 ?? [],
      comment: d.comment ?? '',
      line: 0,
    })),
  };
  if (b.sqm && (b.sqm.download || b.sqm.upload)) c.sqm = { ...b.sqm };
  return c;
}

function reject(fileLabel: string, issues: InputIssue[], annotate?: (i: InputIssue) => Record<string, unknown>): never {
  const errors = issues.filter((i) => i.severity === 'error');
  const first = formatIssue(errors[0]);
  throw new InputsRejected(
    `${fileLabel} has ${errors.length} error${errors.length === 1 ? '' : 's'}; nothing was written. First: ${first}`,
    issues.map((i) => ({ ...issueOut(i), ...(annotate?.(i) ?? {}) })),
  );
}

/**
 * The editor saves the circuits it could read. A line of the current file that does not read (a
 * wrong cell count, a bad address, …) is not among them, and a whole-file rewrite would drop it: such
 * a save is refused (422, nothing written), naming the lines to fix by hand first.
 */
function refuseOverUnreadableRows(label: string, current: string | undefined): void {
  if (current === undefined) return;
  const errors = parseShapedDevices(current, label).issues.filter((i) => i.severity === 'error');
  if (errors.length === 0) return;
  throw new InputsRejected(
    `${label} has ${errors.length} line${errors.length === 1 ? '' : 's'} the editor cannot read (first: ${formatIssue(errors[0]!)}); saving would drop ${errors.length === 1 ? 'it' : 'them'}, so nothing was written. ` +
      `Fix or remove ${errors.length === 1 ? 'that line' : 'those lines'} in the file (the Reload button or LibreQoS --validate lists them), then reload this page`,
    errors.map(issueOut),
  );
}

/** Validates, checks the removal (`guard`) and writes a full replacement list of circuits. Returns the warnings. */
export function replaceShapedDevices(files: InputFiles, body: CircuitBody[], guard?: RemovalGuard) {
  const label = basename(files.devices);
  // Each file read once for the whole save.
  const current = readInputFile(files.devices, { name: label });
  const network = networkText(files.network);
  refuseOverUnreadableRows(label, current?.text);
  const circuits = body.map(toCircuit);
  const text = writeShapedDevices(circuits);
  const r = validate(files, text, network);
  // A parent that is not in network.json would leave the circuit unshaped: refused here (a file
  // edited by hand is triaged by the run instead, lib/shaping/runInputs.ts).
  const mine = unknownParentsAsErrors(r.issues, label).filter((i) => i.file === label);
  if (mine.some((i) => i.severity === 'error')) {
    // Line 1 is the header, then one line per device (a device-less circuit takes one line).
    const rowOf: { circuit: string; device?: string }[] = [];
    for (const c of circuits) {
      if (c.devices.length === 0) rowOf.push({ circuit: c.id });
      for (const d of c.devices) rowOf.push({ circuit: c.id, device: d.id });
    }
    reject(label, mine, (i) => {
      const row = i.line !== undefined && i.file === label ? rowOf[i.line - 2] : undefined;
      return row ? { circuitId: row.circuit, ...(row.device !== undefined ? { deviceId: row.device } : {}) } : {};
    });
  }
  const removal = checkRemoval(guard, r.inputs.circuits);
  const out = inOperatorsLayout(files, current?.text, network, text, circuits, r.inputs.circuits);
  const reencoded = writeInputText(files.devices, out.text, current?.encoding ?? 'utf-8');
  const issues = r.issues.map(issueOut);
  if (reencoded) issues.push(issueOut(reencoded));
  if (out.notKept !== undefined) {
    issues.push(
      issueOut({
        severity: 'warning',
        code: 'layout-not-kept',
        file: label,
        message:
          `${label} was written whole in the standard 16-column layout, so its comment lines, column order and the spelling of untouched rows ` +
          `were not kept (the previous file is kept as ${label}.bak): ${out.notKept}`,
      }),
    );
  }
  return { circuits: r.inputs.circuits.length, issues, removal };
}

/**
 * What to write for a save: the same circuits written into the current file's own layout
 * (lib/inputs/rewriteShapedDevices.ts: comments, column order, untouched rows kept) when that is
 * possible and the result reads back as exactly the circuits validated from `canonical` (`want`);
 * otherwise the validated `canonical` text, with the reason in `notKept`. (The in-place edit itself is
 * checked cell by cell in lib/inputs/csvCellEdit.ts; this checks the circuits it amounts to.)
 */
function inOperatorsLayout(files: InputFiles, current: string | undefined, network: string, canonical: string, circuits: Circuit[], want: readonly Circuit[]): { text: string; notKept?: string } {
  if (current === undefined) return { text: canonical };
  // Circuits the save does not change keep every row as it is (see rewriteInOperatorsLayout).
  const before = new Map(validate(files, current, network).inputs.circuits.map((c) => [c.id, circuitSignature(c)]));
  const kept = rewriteInOperatorsLayout(current, circuits, (c) => before.get(c.id) === circuitSignature(c));
  if (!('text' in kept)) return { text: canonical, notKept: kept.reason };
  const label = basename(files.devices);
  const check = validate(files, kept.text, network);
  const error = unknownParentsAsErrors(check.issues, label).find((i) => i.file === label && i.severity === 'error');
  if (error) return { text: canonical, notKept: `in the file's own layout it would read back with an error: ${formatIssue(error)}` };
  const diff = firstDifference(want, check.inputs.circuits);
  if (diff !== undefined) return { text: canonical, notKept: `in the file's own layout ${diff}` };
  return { text: kept.text };
}

/** A circuit as it reads from ShapedDevices.csv, devices by id; spellings that read the same (MAC case, address order) are the same. */
function circuitSignature(c: Circuit): string {
  const devices = c.devices
    .map((d) => [d.id, d.name, d.mac.toLowerCase(), [...d.ipv4].sort(), [...d.ipv6].sort(), d.comment] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const rates = [c.downloadMinMbps, c.uploadMinMbps, c.downloadMaxMbps, c.uploadMaxMbps];
  return JSON.stringify([c.name, c.parentNode, c.parentNodeId, c.anchorNodeId, rates, formatSqm(c.sqm), devices]);
}

/** How `got` differs from `want` (circuits by id), or undefined when they read the same. */
function firstDifference(want: readonly Circuit[], got: readonly Circuit[]): string | undefined {
  const byId = new Map(got.map((c) => [c.id, c]));
  for (const c of want) {
    const g = byId.get(c.id);
    if (g === undefined) return `circuit "${c.id}" would be missing`;
    if (circuitSignature(g) !== circuitSignature(c)) return `circuit "${c.id}" would not read back as intended`;
  }
  if (got.length !== want.length) return `${got.length} circuits would read back instead of ${want.length}`;
  return undefined;
}

/** A network.json save that would leave circuits without their parent node; nothing was written. */
export class OrphansRefused extends Error {
  constructor(readonly report: OrphanReport) {
    const names = report.groups.map((g) => `"${g.parent}"`).join(', ');
    super(
      `this network.json removes ${names}, which ${report.count} circuit${report.count === 1 ? '' : 's'} hang under; nothing was written — ` +
        'say where they go: move them to the nearest remaining node above (orphans: "reparent"), or save anyway and leave them without a parent (orphans: "keep")',
    );
  }
}

/**
 * Validates, checks the removal (`guard`: circuits that no longer validate) and writes network.json
 * (pretty-printed). Circuits the save leaves without their parent node are refused (OrphansRefused)
 * unless `orphans` says what to do: `reparent` also rewrites their rows of ShapedDevices.csv in place
 * (./orphans.ts, lib/inputs/csvCellEdit.ts), `keep` saves anyway. Returns the warnings.
 */
export function replaceNetwork(files: InputFiles, network: Record<string, unknown>, guard?: RemovalGuard, orphans?: OrphanDecision) {
  // Each file read once for the whole save.
  const networkFile = readInputFile(files.network, { name: basename(files.network) });
  const devicesFile = readInputFile(files.devices, { name: basename(files.devices) });
  // Value changes in place (the operator's layout, key order and number spelling kept), else the whole document.
  const text = (networkFile ? editNetworkText(networkFile.text, network) : undefined) ?? `${JSON.stringify(network, null, 2)}\n`;
  const devices = devicesFile?.text ?? EMPTY_DEVICES;
  let r = validate(files, devices, text);
  const label = basename(files.network);
  if (r.issues.some((i) => i.file === label && i.severity === 'error')) {
    reject(label, r.issues.filter((i) => i.file === label));
  }
  const current = validate(files, devices, networkFile?.text ?? EMPTY_NETWORK);
  const report = orphansOf(r.inputs.circuits, r.issues, basename(files.devices), current.inputs.network, r.inputs.network);
  if (report.count > 0 && orphans === undefined) throw new OrphansRefused(report);
  let moved: string | undefined;
  if (report.count > 0 && orphans === 'reparent') {
    const m = moveOrphans(files, devices, text, r.inputs.circuits, report);
    moved = m.text;
    r = m.result;
  }
  // Circuits that already fail with the current network.json are not this save's doing.
  const before = guard?.inForce ? new Set(current.inputs.circuits.map((c) => c.id)) : undefined;
  const removal = checkRemoval(guard, before ? [...r.inputs.circuits, ...guard!.inForce!.circuits.filter((c) => !before.has(c.id))] : r.inputs.circuits);
  const reencoded = moved === undefined ? undefined : writeInputText(files.devices, moved, devicesFile?.encoding ?? 'utf-8');
  const networkReencoded = writeInputText(files.network, text, networkFile?.encoding ?? 'utf-8');
  const extra = [reencoded, networkReencoded].filter((i): i is InputIssue => i !== undefined);
  return { nodes: countNodes(r.inputs.network), issues: [...r.issues, ...extra].map(issueOut), removal, ...(moved !== undefined ? { reparented: report } : {}) };
}

/**
 * ShapedDevices.csv with the rows of the orphans of `report` moved to their new parent, edited in place
 * (./orphans.ts reparentEdits, lib/inputs/csvCellEdit.ts, which checks the edit cell by cell), and
 * its validation against the new network.json. Checked here circuit by circuit as well: the moved
 * circuits must read back under their new parent and every other circuit exactly as before. A
 * whole-file rewrite is no fallback for this edit (it would drop the operator's comments, layout and
 * every row that does not validate), so anything else refuses the save with CellEditError (422,
 * nothing written), saying why.
 */
function moveOrphans(files: InputFiles, devices: string, network: string, circuits: readonly Circuit[], report: OrphanReport) {
  const label = basename(files.devices);
  const refuse = (why: string): never => {
    throw new CellEditError(
      `nothing was written: the ${report.count} circuit${report.count === 1 ? '' : 's'} left without a parent cannot be moved in ${label} — ${why}; ` +
        'move them by hand, or save with the orphans kept (orphans: "keep")',
    );
  };
  const edits = reparentEdits(circuits, report);
  let text = '';
  try {
    text = setCsvCells(devices, edits);
  } catch (err) {
    if (err instanceof CellEditError) refuse(err.message);
    throw err;
  }
  const result = validate(files, text, network);
  const want = circuits.map((c) => {
    const e = edits.get(c.line);
    if (e === undefined) return c;
    return { ...c, parentNode: e.parentNode.trim(), ...(e.parentNodeId !== undefined ? { parentNodeId: e.parentNodeId.trim() } : {}) };
  });
  const diff = firstDifference(want, result.inputs.circuits);
  if (diff !== undefined) refuse(`after the edit ${diff}`);
  return { text, result };
}

function countNodes(nodes: { children: unknown[] }[]): number {
  let n = 0;
  for (const node of nodes) n += 1 + countNodes(node.children as { children: unknown[] }[]);
  return n;
}
