/**
 * The one validator for ShapedDevices.csv + network.json. Builds ShapingInputs (circuits grouped by
 * Circuit ID in first-occurrence order, network tree) and reports every problem with file, line,
 * column and value. `ok` is false when any issue is an error; callers must then change nothing.
 *
 * IP addresses are parsed by hand (strict dotted-quad IPv4, RFC 4291 IPv6) and canonicalised with an
 * explicit prefix length (RFC 5952 text for IPv6): ipaddr.js costs ~2 µs per IPv6 address and accepts
 * non-standard IPv4 forms (octal/hex/short), so it is only used as a cross-check in tests.
 */
import type { Circuit, Device, InputIssue, NetworkNode, SqmKind, SqmOverride, ValidationResult } from '../model.ts';
import { type AliasTarget, GENERATED_PN_RE, nodesByAlias, parseNetworkJson, unknownParentIdIssue } from './network.ts';
import { canonicalHeader, readShapedDevices, type ShapedDeviceField, type ShapedDeviceRow } from './shapedDevices.ts';

export interface ValidateInputsArgs {
  devicesText: string;
  devicesFile: string;
  networkText: string;
  networkFile: string;
}

// ---------------------------------------------------------------------------------------------
// IP addresses

/** Strict dotted-quad IPv4 in s[from, to): 0–255 per octet, no leading zeros. Returns uint32 or -1. */
export function parseIPv4Number(s: string, from = 0, to = s.length): number {
  let value = 0;
  let octets = 0;
  let i = from;
  while (octets < 4) {
    const start = i;
    let o = 0;
    while (i < to) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      o = o * 10 + (c - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || o > 255 || (len > 1 && s.charCodeAt(start) === 48)) return -1;
    value = value * 256 + o;
    octets++;
    if (octets < 4) {
      if (i >= to || s.charCodeAt(i) !== 46) return -1;
      i++;
    }
  }
  return i === to ? value : -1;
}

export function formatIPv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parse an IPv6 address (no prefix, no zone) into `g` (8 groups). Returns false when invalid.
 * Allocation-free: called for every IPv6 entry of ShapedDevices.csv.
 */
function parseIPv6Into(s: string, g: Uint16Array | number[]): boolean {
  const n = s.length;
  if (n < 2 || n > 45) return false;
  let count = 0;
  let dbl = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    dbl = 0;
    i = 2;
  }
  while (i < n) {
    let j = i;
    let v = 0;
    while (j < n) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    if (j < n && s.charCodeAt(j) === 46) {
      // Embedded dotted IPv4 as the last 32 bits.
      if (count > 6) return false;
      const v4 = parseIPv4Number(s, i, n);
      if (v4 < 0) return false;
      g[count++] = Math.floor(v4 / 65536);
      g[count++] = v4 & 0xffff;
      break;
    }
    const len = j - i;
    if (len === 0 || len > 4 || count >= 8) return false;
    g[count++] = v;
    if (j === n) break;
    if (s.charCodeAt(j) !== 58) return false;
    if (s.charCodeAt(j + 1) === 58) {
      if (dbl >= 0) return false;
      dbl = count;
      j += 2;
    } else {
      j += 1;
      if (j === n) return false;
    }
    i = j;
  }
  if (dbl < 0) return count === 8;
  if (count > 7) return false;
  const tail = count - dbl;
  for (let k = tail - 1; k >= 0; k--) g[8 - tail + k] = g[dbl + k];
  for (let k = dbl; k < 8 - tail; k++) g[k] = 0;
  return true;
}

/** Parse an IPv6 address (no prefix, no zone) into 8 groups, or null. */
export function parseIPv6Groups(s: string): number[] | null {
  const g = [0, 0, 0, 0, 0, 0, 0, 0];
  return parseIPv6Into(s, g) ? g : null;
}

const HEX16: string[] = new Array<string>(65536).fill('');
function hex16(v: number): string {
  let h = HEX16[v];
  if (h === '') {
    h = v.toString(16);
    HEX16[v] = h;
  }
  return h;
}

/** RFC 5952 text: lower-case, no leading zeros, the longest (first) run of ≥2 zero groups as `::`. */
export function formatIPv6(g: ArrayLike<number>): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== bestStart + bestLen) out += ':';
    out += hex16(g[i]);
  }
  return out;
}

/** '/0' … '/128', shared. */
const SUFFIX: string[] = Array.from({ length: 129 }, (_, k) => `/${k}`);

/** Scratch groups for parseIPv6Prefix (single-threaded, never escapes). */
const G6 = new Uint16Array(8);

function parsePrefixLen(s: string, max: number): number {
  if (s.length === 0 || s.length > 3) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v <= max ? v : -1;
}

export type IpParseResult =
  /** `key` identifies the prefix for duplicate detection (a number for IPv4, the prefix for IPv6). */
  | { ok: true; prefix: string; key: number | string }
  | { ok: false; code: string; message: string };

const LEADING_ZERO_RE = /(?:^|\.)0\d/;
const V4_EXAMPLE = 'e.g. 100.64.0.1 or 100.64.0.0/24';
const V6_EXAMPLE = 'e.g. 2001:db8::1 or 2001:db8:0:100::/56';

/** Validate and canonicalise one IPv4 address/CIDR entry (`1.2.3.4` → `1.2.3.4/32`). */
export function parseIPv4Prefix(entry: string): IpParseResult {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  if (addr.indexOf(':') >= 0) {
    if (parseIPv6Into(addr, G6)) {
      return { ok: false, code: 'ipv6-in-ipv4-column', message: 'this is an IPv6 address; move it to the IPv6 column' };
    }
    return { ok: false, code: 'invalid-ip', message: `not a valid IPv4 address or CIDR (${V4_EXAMPLE})` };
  }
  const v = parseIPv4Number(addr);
  if (v < 0) {
    const hint = LEADING_ZERO_RE.test(addr) ? '; octets must not have leading zeros' : '';
    return { ok: false, code: 'invalid-ip', message: `not a valid IPv4 address or CIDR (${V4_EXAMPLE})${hint}` };
  }
  let len = 32;
  if (slash >= 0) {
    len = parsePrefixLen(entry.slice(slash + 1), 32);
    if (len < 0) return { ok: false, code: 'invalid-ip', message: `invalid prefix length; use /0 to /32 (${V4_EXAMPLE})` };
  }
  if (len < 32) {
    const host = v % 2 ** (32 - len);
    if (host !== 0) {
      return {
        ok: false,
        code: 'host-bits-set',
        message: `CIDR has host bits set; use ${formatIPv4(v - host)}/${len} (or ${addr}/32 for the single host)`,
      };
    }
  }
  const prefix = addr + SUFFIX[len];
  // Hosts (the common case) get an int32 key (a small integer for V8's Map hashing); networks use the text.
  return { ok: true, prefix, key: len === 32 ? v | 0 : `v4 ${prefix}` };
}

/** Validate and canonicalise one IPv6 address/CIDR entry (`2001:DB8::1` → `2001:db8::1/128`). */
export function parseIPv6Prefix(entry: string): IpParseResult {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  if (addr.indexOf(':') < 0 && parseIPv4Number(addr) >= 0) {
    return { ok: false, code: 'ipv4-in-ipv6-column', message: 'this is an IPv4 address; move it to the IPv4 column' };
  }
  if (addr.indexOf('%') >= 0) {
    return { ok: false, code: 'invalid-ip', message: `zone ids (%…) are not allowed; write the address only (${V6_EXAMPLE})` };
  }
  const g = G6;
  if (!parseIPv6Into(addr, g)) return { ok: false, code: 'invalid-ip', message: `not a valid IPv6 address or CIDR (${V6_EXAMPLE})` };
  let len = 128;
  if (slash >= 0) {
    len = parsePrefixLen(entry.slice(slash + 1), 128);
    if (len < 0) return { ok: false, code: 'invalid-ip', message: `invalid prefix length; use /0 to /128 (${V6_EXAMPLE})` };
  }
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    const v4 = formatIPv4(g[6] * 65536 + g[7]);
    return {
      ok: false,
      code: 'ipv4-mapped-ipv6',
      message: `this is an IPv4-mapped IPv6 address; put ${v4} in the IPv4 column instead`,
    };
  }
  if (len < 128) {
    let hostBits = false;
    for (let k = 0; k < 8; k++) {
      const keep = len - k * 16;
      if (keep >= 16) continue;
      const mask = keep <= 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      if ((g[k] & ~mask & 0xffff) !== 0) {
        hostBits = true;
        break;
      }
    }
    if (hostBits) {
      const net = Array.from(g);
      for (let k = 0; k < 8; k++) {
        const keep = Math.max(0, Math.min(16, len - k * 16));
        net[k] &= keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      }
      return {
        ok: false,
        code: 'host-bits-set',
        message: `CIDR has host bits set; use ${formatIPv6(net)}/${len} (or ${formatIPv6(g)}/128 for the single host)`,
      };
    }
  }
  // Key: a flat 9-character string (cheap to hash); IPv4 keys are numbers or longer strings.
  const key = String.fromCharCode(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], len);
  return { ok: true, prefix: formatIPv6(g) + SUFFIX[len], key };
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
      if (this.claimPrefix(r.key, p, row, field, entry, device)) out.push(p);
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
 *            conflicting-anchor-id when the circuit's first row has none
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
