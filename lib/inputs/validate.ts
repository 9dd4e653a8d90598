/**
 * The one validator for ShapedDevices.csv + network.json. Builds ShapingInputs (circuits grouped by
 * Circuit ID in first-occurrence order, network tree) and reports every problem with file, line,
 * column and value. `ok` is false when any issue is an error; callers must then change nothing.
 * Addresses are parsed by ipPrefix.ts; prefixes inside another circuit's wider one are found by
 * prefixNesting.ts.
 */
import type { Circuit, Device, InputIssue, NetworkNode, SqmKind, SqmOverride, ValidationResult } from '../model.ts';
import { type AliasTarget, GENERATED_PN_RE, nodesByAlias, parseNetworkJson, unknownParentIdIssue } from './network.ts';
import { canonicalHeader, readShapedDevices, type ShapedDeviceField, type ShapedDeviceRow } from './shapedDevices.ts';
import { parseIPv4Prefix, parseIPv6Prefix } from './ipPrefix.ts';
import { nestedPrefixes } from './prefixNesting.ts';

export interface ValidateInputsArgs {
  devicesText: string;
  devicesFile: string;
  networkText: string;
  networkFile: string;
}

// ---------------------------------------------------------------------------------------------
// Rates and SQM

const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const COMMA_DECIMAL_RE = /^\d+,\d+$/;
const WS_RE = /\s+/g;

export const MIN_RATE_MBPS = 0.1;

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * Parse a rate cell: plain decimals (`25`, `2.5`, `.5`, `-3`, `1e3`). NaN when not a number.
 * Fast path for up to 15 significant digits: N / 10^k is correctly rounded, i.e. equal to Number(s).
 */
export function parseRate(s: string): number {
  const n = s.length;
  let i = 0;
  let neg = false;
  const c0 = s.charCodeAt(0);
  if (c0 === 45 || c0 === 43) {
    neg = c0 === 45;
    i = 1;
  }
  let mant = 0;
  let digits = 0;
  let frac = -1;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      mant = mant * 10 + (c - 48);
      digits++;
      if (frac >= 0) frac++;
    } else if (c === 46 && frac < 0) frac = 0;
    else break;
  }
  if (i === n && digits > 0 && digits <= 15) {
    const v = frac > 0 ? mant / POW10[frac] : mant;
    return neg ? -v : v;
  }
  return NUMBER_RE.test(s) ? Number(s) : NaN;
}

const SQM_KINDS: ReadonlySet<string> = new Set<SqmKind>(['cake', 'fq_codel', 'none']);

/**
 * Parse an sqm cell: '' → no override; `cake` | `fq_codel` | `none` → both directions; `down/up`
 * with each side empty or one of those. Case-insensitive, blanks around tokens ignored. null when invalid.
 */
export function parseSqm(raw: string): { sqm: SqmOverride | undefined } | null {
  const s = raw.trim().toLowerCase();
  if (s === '') return { sqm: undefined };
  const slash = s.indexOf('/');
  if (slash < 0) {
    if (!SQM_KINDS.has(s)) return null;
    return { sqm: { download: s as SqmKind, upload: s as SqmKind } };
  }
  const d = s.slice(0, slash).trim();
  const u = s.slice(slash + 1).trim();
  if ((d !== '' && !SQM_KINDS.has(d)) || (u !== '' && !SQM_KINDS.has(u))) return null;
  const out: SqmOverride = {};
  if (d !== '') out.download = d as SqmKind;
  if (u !== '') out.upload = u as SqmKind;
  return { sqm: d === '' && u === '' ? undefined : out };
}

function hasBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 32 || c === 0xa0) return true;
  }
  return false;
}

function sameSqm(a: SqmOverride | undefined, b: SqmOverride | undefined): boolean {
  return a?.download === b?.download && a?.upload === b?.upload;
}

// ---------------------------------------------------------------------------------------------
// Validator

/** Per-circuit bookkeeping flags (kept in a number array, one entry per circuit, to stay allocation-free). */
const RATES_OK = 1;
const ANY_IP_ENTRY = 2;
const ANY_IP_ERROR = 4;

const RATE_FIELDS = [
  ['downloadMin', 'downloadMinMbps'],
  ['uploadMin', 'uploadMinMbps'],
  ['downloadMax', 'downloadMaxMbps'],
  ['uploadMax', 'uploadMaxMbps'],
] as const;

const PARENT_FIELDS = [
  ['parentNode', 'parentNode', 'conflicting-parent', 'Parent Node'],
  ['parentNodeId', 'parentNodeId', 'conflicting-parent-id', 'Parent Node ID'],
  ['anchorNodeId', 'anchorNodeId', 'conflicting-anchor-id', 'Anchor Node ID'],
] as const;

const MIN_MAX_PAIRS = [
  [0, 2, 'download'],
  [1, 3, 'upload'],
] as const;

function col(f: ShapedDeviceField): string {
  return canonicalHeader(f);
}

/**
 * Checks ShapedDevices.csv row by row (`onRow`) and groups the devices into circuits. Holds what the
 * checks share across rows: the circuits so far, seen device ids and addresses, and the issues.
 */
class DeviceRowChecker {
  readonly issues: InputIssue[] = [];
  readonly circuits: Circuit[] = [];
  /** Circuit ID → index into `circuits`, `flags` and `sqmLines`. */
  private readonly byId = new Map<string, number>();
  private readonly flags: number[] = [];
  /** Line the circuit's sqm came from (0 = none yet). */
  private readonly sqmLines: number[] = [];
  /** prefix key (see IpParseResult) → the device that first used it. */
  private readonly prefixOwner = new Map<number | string, Device>();
  /** Every /0 taken by a device (checkNestedPrefixes). */
  private readonly catchAll: Array<{ device: Device; prefix: string }> = [];
  private readonly deviceIds = new Map<string, number>();
  /** The current row's rates (by RATE_FIELDS index) and whether each one is valid. */
  private readonly rates = [0, 0, 0, 0];
  private readonly rateOk = [false, false, false, false];
  /** Address entries and address errors of the current row. */
  private ipEntries = 0;
  private ipErrors = 0;
  /** Reused per cell; copied out with exact size (most devices have one address). */
  private readonly scratch: string[] = [];

  constructor(private readonly file: string) {}

  private err(code: string, line: number, field: ShapedDeviceField, value: string, message: string): void {
    this.issues.push({ severity: 'error', code, file: this.file, line, column: col(field), value, message });
  }

  private warn(code: string, line: number, field: ShapedDeviceField, value: string, message: string): void {
    this.issues.push({ severity: 'warning', code, file: this.file, line, column: col(field), value, message });
  }

  /** Checks one row and adds its device to its circuit (a new circuit for a new Circuit ID). */
  onRow(row: ShapedDeviceRow): void {
    this.checkIds(row);
    const allRatesOk = this.readRates(row);
    const sqm = this.readSqm(row);
    const device = this.readDevice(row);
    if (row.circuitId === '') return;
    const parentNode = row.parentNode.length === 4 && row.parentNode.toLowerCase() === 'none' ? '' : row.parentNode;
    const ci = this.byId.get(row.circuitId);
    if (ci === undefined) this.addCircuit(row, device, parentNode, allRatesOk, sqm);
    else this.addToCircuit(ci, row, device, parentNode, allRatesOk, sqm);
  }

  /** Circuit ID and Device ID present; Device IDs unique. */
  private checkIds(row: ShapedDeviceRow): void {
    const line = row.line;
    if (row.circuitId === '') {
      this.err('empty-circuit-id', line, 'circuitId', '', 'Circuit ID is empty; every row needs the ID of the circuit (subscriber) it belongs to');
    }
    if (row.deviceId === '') {
      this.err('empty-device-id', line, 'deviceId', '', 'Device ID is empty; give every device a unique ID (e.g. the CPE serial or CRM device id)');
      return;
    }
    const prev = this.deviceIds.get(row.deviceId);
    if (prev !== undefined) {
      this.warn(
        'duplicate-device-id',
        line,
        'deviceId',
        row.deviceId,
        `Device ID "${row.deviceId}" is also used on line ${prev}; device IDs should be unique — give this device its own ID`,
      );
    } else this.deviceIds.set(row.deviceId, line);
  }

  /** Reads the four rates into `rates`/`rateOk` and checks min ≤ max; true when all four are valid. */
  private readRates(row: ShapedDeviceRow): boolean {
    const { rates, rateOk } = this;
    for (let k = 0; k < 4; k++) {
      const x = this.readRate(row, RATE_FIELDS[k][0]);
      rateOk[k] = x !== null;
      if (x !== null) rates[k] = x;
    }
    for (const [minK, maxK, dir] of MIN_MAX_PAIRS) {
      if (rateOk[minK] && rateOk[maxK] && rates[minK] > rates[maxK]) {
        const minF = RATE_FIELDS[minK][0];
        const maxF = RATE_FIELDS[maxK][0];
        this.err(
          'min-above-max',
          row.line,
          minF,
          row[minF],
          `${col(minF)} (${rates[minK]}) is greater than ${col(maxF)} (${rates[maxK]}); the guaranteed ${dir} rate cannot exceed the maximum — lower the min or raise the max`,
        );
      }
    }
    return rateOk[0] && rateOk[1] && rateOk[2] && rateOk[3];
  }

  /** One rate cell in Mbps, or null (with an error) when it is empty, not a number or too low. */
  private readRate(row: ShapedDeviceRow, field: (typeof RATE_FIELDS)[number][0]): number | null {
    const line = row.line;
    const raw = row[field];
    if (raw === '') {
      this.err('invalid-rate', line, field, raw, `${col(field)} is empty; write a rate in Mbps (at least ${MIN_RATE_MBPS}, e.g. 25 or 2.5)`);
      return null;
    }
    const x = parseRate(raw);
    if (Number.isNaN(x)) {
      const hint = COMMA_DECIMAL_RE.test(raw) ? ' — use a dot as the decimal separator' : '';
      this.err('invalid-rate', line, field, raw, `${col(field)} is not a number; write a rate in Mbps (e.g. 25 or 2.5)${hint}`);
      return null;
    }
    if (!Number.isFinite(x)) {
      this.err('invalid-rate', line, field, raw, `${col(field)} is not a finite number; write a rate in Mbps (e.g. 25 or 2.5)`);
      return null;
    }
    if (x < MIN_RATE_MBPS) {
      this.err(
        'rate-too-low',
        line,
        field,
        raw,
        x < 0
          ? `${col(field)} is negative; rates are Mbps and must be at least ${MIN_RATE_MBPS}`
          : `${col(field)} is below the minimum of ${MIN_RATE_MBPS} Mbps; raise it to at least ${MIN_RATE_MBPS}`,
      );
      return null;
    }
    return x;
  }

  /** The row's sqm override (undefined when empty or invalid; invalid is reported). */
  private readSqm(row: ShapedDeviceRow): SqmOverride | undefined {
    if (row.sqm === '') return undefined;
    const s = parseSqm(row.sqm);
    if (s) return s.sqm;
    this.err(
      'invalid-sqm',
      row.line,
      'sqm',
      row.sqm,
      'unknown SQM override; use cake, fq_codel or none, or "down/up" with each side empty or one of those (e.g. cake/fq_codel), or leave it empty for the default',
    );
    return undefined;
  }

  /** The row's device with its checked addresses; counts them in `ipEntries`/`ipErrors`. */
  private readDevice(row: ShapedDeviceRow): Device {
    const device: Device = {
      id: row.deviceId,
      name: row.deviceName,
      mac: row.mac,
      ipv4: [],
      ipv6: [],
      comment: row.comment,
      line: row.line,
    };
    this.ipEntries = 0;
    this.ipErrors = 0;
    device.ipv4 = this.readIps(row, 'ipv4', device);
    device.ipv6 = this.readIps(row, 'ipv6', device);
    return device;
  }

  /** The canonical prefixes of one address cell; invalid entries and addresses owned by another device are reported. */
  private readIps(row: ShapedDeviceRow, field: 'ipv4' | 'ipv6', device: Device): string[] {
    const raw = row[field];
    if (raw === '') return [];
    const out = this.scratch;
    out.length = 0;
    const cell = hasBlank(raw) ? raw.replace(WS_RE, '') : raw;
    const parse = field === 'ipv4' ? parseIPv4Prefix : parseIPv6Prefix;
    let from = 0;
    while (from <= cell.length) {
      let to = cell.indexOf(',', from);
      if (to < 0) to = cell.length;
      const entry = from === 0 && to === cell.length ? cell : cell.slice(from, to);
      from = to + 1;
      if (entry === '') continue;
      this.ipEntries++;
      const r = parse(entry);
      if (!r.ok) {
        this.ipErrors++;
        this.err(r.code, row.line, field, entry, r.message);
        continue;
      }
      const p = r.prefix;
      if (out.length > 0 && out.includes(p)) {
        this.warn('duplicate-ip-in-device', row.line, field, entry, `${p} is listed more than once for this device; it is used once — remove the repeat`);
        continue;
      }
      if (!this.claimPrefix(r.key, p, row, field, entry, device)) continue;
      out.push(p);
      if (p.endsWith('/0')) this.catchAll.push({ device, prefix: p });
    }
    return out.length === 1 ? [out[0]] : out.slice();
  }

  /** Records `device` as the owner of a prefix; false (with an error) when another device has it. */
  private claimPrefix(key: number | string, p: string, row: ShapedDeviceRow, field: 'ipv4' | 'ipv6', entry: string, device: Device): boolean {
    const owner = this.prefixOwner.get(key);
    if (owner === undefined) {
      this.prefixOwner.set(key, device);
      return true;
    }
    this.ipErrors++;
    this.err(
      'duplicate-ip',
      row.line,
      field,
      entry,
      `${p} is already used on line ${owner.line} (device "${owner.id}"); an address may belong to only one device — remove it from one of the two rows`,
    );
    this.issues[this.issues.length - 1].relatedLine = owner.line;
    return false;
  }

  /** First row of a circuit: the circuit takes its name, parents, rates and sqm from it. */
  private addCircuit(row: ShapedDeviceRow, device: Device, parentNode: string, allRatesOk: boolean, sqm: SqmOverride | undefined): void {
    const { line } = row;
    const { rates, rateOk } = this;
    if (row.circuitName === '') {
      this.warn('empty-circuit-name', line, 'circuitName', '', 'Circuit Name is empty; give the circuit a name (it is shown in the UI and used to sort queues)');
    }
    const circuit: Circuit = {
      id: row.circuitId,
      name: row.circuitName,
      parentNode,
      parentNodeId: row.parentNodeId,
      anchorNodeId: row.anchorNodeId,
      downloadMinMbps: rateOk[0] ? rates[0] : 0,
      uploadMinMbps: rateOk[1] ? rates[1] : 0,
      downloadMaxMbps: rateOk[2] ? rates[2] : 0,
      uploadMaxMbps: rateOk[3] ? rates[3] : 0,
      comment: row.comment,
      devices: [device],
      line,
    };
    if (sqm) circuit.sqm = sqm;
    this.byId.set(row.circuitId, this.circuits.length);
    this.circuits.push(circuit);
    this.flags.push((allRatesOk ? RATES_OK : 0) | (this.ipEntries > 0 ? ANY_IP_ENTRY : 0) | (this.ipErrors > 0 ? ANY_IP_ERROR : 0));
    this.sqmLines.push(sqm ? line : 0);
  }

  /** Another device of an existing circuit: it must agree with the circuit's first row. */
  private addToCircuit(
    ci: number,
    row: ShapedDeviceRow,
    device: Device,
    parentNode: string,
    allRatesOk: boolean,
    sqm: SqmOverride | undefined,
  ): void {
    const c = this.circuits[ci];
    c.devices.push(device);
    if (this.ipEntries > 0) this.flags[ci] |= ANY_IP_ENTRY;
    if (this.ipErrors > 0) this.flags[ci] |= ANY_IP_ERROR;
    this.checkSameParents(c, row, parentNode);
    if (row.circuitName !== '' && row.circuitName !== c.name) {
      this.warn(
        'conflicting-circuit-name',
        row.line,
        'circuitName',
        row.circuitName,
        `circuit "${c.id}" is named "${c.name}" on line ${c.line}; the first name is kept — use the same Circuit Name on every row`,
      );
    }
    if (allRatesOk && (this.flags[ci] & RATES_OK) !== 0) this.checkSameRates(c, row);
    if (sqm) this.mergeSqm(ci, row, sqm);
  }

  /** Parent Node, Parent Node ID and Anchor Node ID must match the circuit's first row. */
  private checkSameParents(c: Circuit, row: ShapedDeviceRow, parentNode: string): void {
    for (const [rf, cf, code, label] of PARENT_FIELDS) {
      const mine = rf === 'parentNode' ? parentNode : row[rf];
      const theirs = c[cf];
      if (mine === theirs || mine === '') continue;
      if (theirs !== '') {
        this.err(
          code,
          row.line,
          rf,
          mine,
          `circuit "${c.id}" has ${label} "${theirs}" on line ${c.line} but "${mine}" here; all devices of a circuit must have the same ${label} — fix one of the rows`,
        );
      } else {
        this.warn(
          code,
          row.line,
          rf,
          mine,
          `circuit "${c.id}" has no ${label} on its first row (line ${c.line}) but "${mine}" here; the first row wins, so this is ignored — put the same ${label} on every row of the circuit`,
        );
      }
    }
  }

  /** Warns when this row's (valid) rates differ from the circuit's. */
  private checkSameRates(c: Circuit, row: ShapedDeviceRow): void {
    const rates = this.rates;
    if (rates[0] === c.downloadMinMbps && rates[1] === c.uploadMinMbps && rates[2] === c.downloadMaxMbps && rates[3] === c.uploadMaxMbps) return;
    this.warn(
      'conflicting-rates',
      row.line,
      'downloadMax',
      `${row.downloadMin}/${row.uploadMin}/${row.downloadMax}/${row.uploadMax}`,
      `rates (min down/up, max down/up) differ from the circuit's first row (line ${c.line}: ${c.downloadMinMbps}/${c.uploadMinMbps}/${c.downloadMaxMbps}/${c.uploadMaxMbps} Mbps); the first row's rates are used — use the same rates on every row of the circuit`,
    );
  }

  /** The first sqm given for a circuit wins; a different later one is warned about. */
  private mergeSqm(ci: number, row: ShapedDeviceRow, sqm: SqmOverride): void {
    const c = this.circuits[ci];
    if (!c.sqm) {
      c.sqm = sqm;
      this.sqmLines[ci] = row.line;
    } else if (!sameSqm(sqm, c.sqm)) {
      this.warn(
        'conflicting-sqm',
        row.line,
        'sqm',
        row.sqm,
        `circuit "${c.id}" already has sqm from line ${this.sqmLines[ci]}; that one is kept — use the same sqm on every row of the circuit`,
      );
    }
  }

  /** Warns about circuits with no address entry (valid or not) on any device. */
  checkCircuitsHaveIps(): void {
    for (let ci = 0; ci < this.circuits.length; ci++) {
      if ((this.flags[ci] & (ANY_IP_ENTRY | ANY_IP_ERROR)) !== 0) continue;
      const c = this.circuits[ci];
      this.warn(
        'no-ip',
        c.line,
        'ipv4',
        '',
        `circuit "${c.id}" has no IPv4 or IPv6 address on any device; it gets a queue but no traffic will reach it — add the subscriber's addresses`,
      );
    }
  }

  /**
   * Warns about a prefix that holds addresses of other circuits (`nested-prefixes`, one warning per
   * wider prefix, naming the first few) and about a /0 (`catch-all-prefix`). The dataplane looks an
   * address up by longest prefix, so each narrower one is shaped by its own circuit and only the rest of
   * the wider one by the wider one's circuit: legal, but often a pool or a test entry covering customers
   * by mistake. Prefixes of one circuit inside each other change nothing and are not reported.
   */
  checkNestedPrefixes(): void {
    const nested = nestedPrefixes(this.prefixOwner);
    const catchAll = this.catchAll;
    if (nested.length === 0 && catchAll.length === 0) return;
    const circuitOf = new Map<Device, Circuit>();
    for (const c of this.circuits) for (const d of c.devices) circuitOf.set(d, c);
    const field = (prefix: string): ShapedDeviceField => (prefix.includes(':') ? 'ipv6' : 'ipv4');
    for (const { device, prefix } of catchAll) {
      const c = circuitOf.get(device);
      if (!c) continue;
      this.warn('catch-all-prefix', device.line, field(prefix), prefix, `${prefix} puts every address that no other circuit has into circuit "${c.id}": all otherwise unshaped traffic, the network's own included — list the subscriber's real prefixes instead`);
    }
    const byOuter = new Map<string, { device: Device; circuit: Circuit; inner: Array<{ prefix: string; device: Device; circuit: Circuit }> }>();
    for (const n of nested) {
      const outerCircuit = circuitOf.get(n.outer.owner);
      const innerCircuit = circuitOf.get(n.inner.owner);
      if (!outerCircuit || !innerCircuit || outerCircuit === innerCircuit) continue;
      let g = byOuter.get(n.outer.prefix);
      if (!g) byOuter.set(n.outer.prefix, (g = { device: n.outer.owner, circuit: outerCircuit, inner: [] }));
      g.inner.push({ prefix: n.inner.prefix, device: n.inner.owner, circuit: innerCircuit });
    }
    for (const [outer, g] of byOuter) {
      g.inner.sort((a, b) => a.device.line - b.device.line);
      const shown = g.inner.slice(0, 3).map((i) => `${i.prefix} of "${i.circuit.id}" on line ${i.device.line}`).join(', ');
      const more = g.inner.length > 3 ? `, and ${g.inner.length - 3} more` : '';
      const count = g.inner.length === 1 ? 'an address' : `${g.inner.length} addresses`;
      this.warn(
        'nested-prefixes',
        g.device.line,
        field(outer),
        outer,
        `${outer} of circuit "${g.circuit.id}" contains ${count} of other circuits (${shown}${more}): addresses are looked up by longest prefix, so ${g.inner.length === 1 ? 'that one is' : 'each of those is'} shaped by its own circuit and only the rest of ${outer} by "${g.circuit.id}" — if "${g.circuit.id}" should not cover them, narrow its prefix`,
      );
      this.issues[this.issues.length - 1].relatedLine = g.inner[0].device.line;
    }
  }

  /**
   * Warns about circuits whose parent is not a node of network.json (call only when it has nodes).
   * Parent Node and Parent Node ID match any alias of a node (key, name, id, active_attachment_name).
   * An unknown Parent Node ID with an empty Parent Node falls back to a generated parent node (as
   * upstream does); a Parent Node naming a `Generated_PN_<n>` that network.json lacks is left to the planner.
   * A known Parent Node ID wins over Parent Node (as upstream); when Parent Node would attach the
   * circuit to a different node that is warned about (`conflicting-parent-columns`): the row reads as
   * one parent and is shaped under another. Nodes compare as the planner attaches to them
   * (nodesByAlias): a virtual node is its nearest real ancestor, so a Parent Node naming a virtual
   * node and a Parent Node ID naming the real node it hangs under agree.
   */
  checkParentsExist(network: NetworkNode[], networkFile: string): void {
    const aliases = nodesByAlias(network);
    for (const c of this.circuits) {
      if (c.parentNode === '' && c.parentNodeId === '') continue;
      const byId = c.parentNodeId !== '' ? aliases.get(c.parentNodeId) : undefined;
      if (byId) {
        const byName = c.parentNode !== '' ? aliases.get(c.parentNode) : undefined;
        if (byName && byName.attachTo !== byId.attachTo) {
          this.warn(
            'conflicting-parent-columns',
            c.line,
            'parentNode',
            c.parentNode,
            `circuit "${c.id}": Parent Node "${c.parentNode}" is node ${nodeText(byName)} but Parent Node ID "${c.parentNodeId}" is node ${nodeText(byId)} of ${networkFile}; the Parent Node ID wins, so the circuit is shaped under ${attachText(byId)} — to move it to ${attachText(byName)}, clear the Parent Node ID or set it to the id of "${byName.node.name}"`,
          );
        }
        continue;
      }
      if (c.parentNode !== '' && aliases.has(c.parentNode)) continue;
      if (c.parentNode === '') {
        this.issues.push(unknownParentIdIssue(this.file, c, networkFile));
        continue;
      }
      if (GENERATED_PN_RE.test(c.parentNode)) continue;
      const byIdCol = c.parentNodeId !== '';
      const value = byIdCol ? c.parentNodeId : c.parentNode;
      this.issues.push({
        severity: 'warning',
        code: 'unknown-parent',
        file: this.file,
        line: c.line,
        column: byIdCol ? 'Parent Node ID' : 'Parent Node',
        value,
        message: `circuit "${c.id}" names parent "${value}", which is not a node in ${networkFile}; this circuit will not be shaped from this row (a run keeps it at its last good shaping, if it had one; the rest applies) — add the node to ${networkFile} or fix the row`,
      });
    }
  }
}

/** `"V" (virtual)` for a node a circuit is not attached to itself, else `"N"`. */
const nodeText = (t: AliasTarget) => `"${t.node.name}"${t.node.virtual ? ' (virtual)' : ''}`;
/** Where a circuit naming the node is shaped: the node, its nearest real ancestor, or a generated parent. */
const attachText = (t: AliasTarget) => (t.attachTo ? `"${t.attachTo.name}"` : 'a generated parent node');

/** Devices-file issues first, then network-file issues; by line within a file (stable). */
function sortIssues(devicesIssues: InputIssue[], networkIssues: InputIssue[], devicesFile: string): InputIssue[] {
  const fileRank = (f: string): number => (f === devicesFile ? 0 : 1);
  const all = [...devicesIssues.map((i, k) => ({ i, k })), ...networkIssues.map((i, k) => ({ i, k: k + devicesIssues.length }))];
  all.sort((a, b) => fileRank(a.i.file) - fileRank(b.i.file) || (a.i.line ?? 0) - (b.i.line ?? 0) || a.k - b.k);
  return all.map((x) => x.i);
}

/**
 * Validate ShapedDevices.csv + network.json together and build ShapingInputs. Issues come sorted
 * (devices file first, then network file; by line). Codes from the devices file:
 *   errors   csv-syntax, missing-header, duplicate-header, field-count, empty-circuit-id, empty-device-id,
 *            invalid-ip, host-bits-set, ipv6-in-ipv4-column, ipv4-in-ipv6-column, ipv4-mapped-ipv6,
 *            duplicate-ip, invalid-rate, rate-too-low, min-above-max, invalid-sqm, conflicting-parent,
 *            conflicting-parent-id, conflicting-anchor-id
 *   warnings empty-circuit-name, duplicate-device-id, duplicate-ip-in-device, no-ip, conflicting-rates,
 *            conflicting-sqm, conflicting-circuit-name, unknown-parent, unknown-parent-id (empty Parent
 *            Node, unknown Parent Node ID: shaped under a generated parent), conflicting-parent-columns
 *            (Parent Node and a known Parent Node ID name different nodes: the ID wins), and conflicting-parent(-id) /
 *            conflicting-anchor-id when the circuit's first row has none, nested-prefixes (a prefix holds
 *            other circuits' addresses: longest prefix wins), catch-all-prefix (a /0)
 * plus the network.json codes of parseNetworkJson. Circuit `parentNode` "none" (any case) means no parent.
 */
export function validateInputs(args: ValidateInputsArgs): ValidationResult {
  const { devicesText, devicesFile, networkText, networkFile } = args;
  const checker = new DeviceRowChecker(devicesFile);
  const parsed = readShapedDevices(devicesText, devicesFile, (row) => checker.onRow(row));
  const issues = checker.issues;
  for (const i of parsed.issues) issues.push(i);
  const net = parseNetworkJson(networkText, networkFile);
  checker.checkCircuitsHaveIps();
  checker.checkNestedPrefixes();
  // Parents must exist in network.json (unless the network is flat).
  if (net.nodes.length > 0) checker.checkParentsExist(net.nodes, networkFile);
  const sorted = sortIssues(issues, net.issues, devicesFile);
  return {
    inputs: { circuits: checker.circuits, network: net.nodes },
    issues: sorted,
    ok: !sorted.some((i) => i.severity === 'error'),
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

function shorten(v: string): string {
  const s = v.replace(/\r?\n/g, '\\n');
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * One line per issue: `error: ShapedDevices.csv:14: column "IPv4" value "100.64.0.1/24": CIDR has
 * host bits set; use 100.64.0.0/24`. In a JSON file (network.json) the field is a node or a path in
 * the tree, not a column: `warning: network.json: at "AP_1" value "3850/1400": …`.
 */
export function formatIssue(issue: InputIssue): string {
  let s = `${issue.severity}: ${issue.file}`;
  if (issue.line !== undefined) s += `:${issue.line}`;
  s += ':';
  const parts: string[] = [];
  if (issue.column !== undefined) parts.push(`${/\.json$/i.test(issue.file) ? 'at' : 'column'} "${issue.column}"`);
  if (issue.value !== undefined && issue.value !== '') parts.push(`value "${shorten(issue.value)}"`);
  if (parts.length > 0) s += ` ${parts.join(' ')}:`;
  return `${s} ${issue.message}`;
}
