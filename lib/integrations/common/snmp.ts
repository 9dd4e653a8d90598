/**
 * A small SNMP client for integrations that ask devices directly (Sonar's AP discovery), on the
 * `net-snmp` library (no `snmpwalk` subprocesses).
 *
 * - `snmpConnect` finds the version a device answers: SNMPv2c first (GETBULK walks, fewer round
 *   trips), then SNMPv1 (what upstream uses; some agents only speak v1). A device that answers neither
 *   within `timeoutMs` × (`retries` + 1) per version is "silent" — an agent given a wrong community
 *   does not answer either, so both look the same from here.
 * - `get` / `walk` on the connected session; a walk stops at `maxRows`.
 * - `normaliseMac` / `macFromValue`: MACs as `aa:bb:cc:dd:ee:ff` (6 raw octets or any text with 12
 *   hex digits and `:`/`-`/`.`/space separators).
 * - `mapLimit`: run an async job over a list with at most N at a time.
 *
 * The community is a secret: no message built here contains it (the library's own error texts are
 * scrubbed of it too).
 */
import snmp from 'net-snmp';

export type SnmpVersion = '2c' | '1';

export interface SnmpSettings {
  /** The read community (a secret). */
  community: string;
  /** UDP port (161 on real devices). */
  port: number;
  /** Per request, in ms. */
  timeoutMs: number;
  /** Retries per request after the first attempt. */
  retries: number;
  /** Versions to try, in order. */
  versions: readonly SnmpVersion[];
}

export const DEFAULT_SNMP: Omit<SnmpSettings, 'community'> = { port: 161, timeoutMs: 2000, retries: 1, versions: ['2c', '1'] };

/** The outcome of a GET of one object: its value, or that the device has no such object. */
export type SnmpValue = { found: true; value: unknown } | { found: false };

/** A session with a device that answered, in the version it answered. */
export interface SnmpConnection {
  version: SnmpVersion;
  /** The answer to the probe OID given to `snmpConnect`. */
  probe: SnmpValue;
  get(oid: string): Promise<SnmpValue>;
  /** Every `{oid, value}` under `oid` (at most `maxRows`; `truncated` when there were more). */
  walk(oid: string, maxRows: number): Promise<{ rows: { oid: string; value: unknown }[]; truncated: boolean }>;
  close(): void;
}

/** The device answered no version: `detail` says what happened per version (never the community). */
export class SnmpSilentError extends Error {
  override name = 'SnmpSilentError';
}

const attempts = (s: SnmpSettings) => `${s.retries + 1} attempt${s.retries === 0 ? '' : 's'} of ${s.timeoutMs} ms`;

/** An error's text with every occurrence of `secret` replaced by `***`. */
export function describe(err: unknown, secret: string): string {
  const e = err as { message?: string };
  const text = `${e?.message ?? String(err)}`;
  return secret === '' ? text : text.split(secret).join('***');
}

const isTimeout = (err: unknown) => (err as { name?: string })?.name === 'RequestTimedOutError';

type Session = ReturnType<typeof snmp.createSession>;

function openSession(host: string, s: SnmpSettings, version: SnmpVersion): Session {
  const session = snmp.createSession(host, s.community, {
    version: version === '2c' ? snmp.Version2c : snmp.Version1,
    port: s.port,
    timeout: s.timeoutMs,
    retries: s.retries,
    backoff: 1,
    transport: host.includes(':') ? 'udp6' : 'udp4',
  });
  // A malformed datagram is emitted as 'error'; without a listener it would crash the process.
  session.on('error', () => {});
  return session;
}

function getOne(session: Session, oid: string): Promise<SnmpValue> {
  return new Promise((resolve, reject) => {
    session.get([oid], (err, varbinds) => {
      if (err) {
        // SNMPv1 answers a missing object with the error status noSuchName.
        if ((err as { name?: string }).name === 'RequestFailedError' && (err as { status?: number }).status === snmp.ErrorStatus.NoSuchName) resolve({ found: false });
        else reject(err);
        return;
      }
      const vb = varbinds?.[0];
      if (!vb || snmp.isVarbindError(vb)) resolve({ found: false });
      else resolve({ found: true, value: vb.value });
    });
  });
}

function walkSubtree(session: Session, oid: string, maxRows: number): Promise<{ rows: { oid: string; value: unknown }[]; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const rows: { oid: string; value: unknown }[] = [];
    let truncated = false;
    session.subtree(
      oid,
      20,
      (varbinds) => {
        for (const vb of varbinds) {
          if (snmp.isVarbindError(vb)) continue;
          if (rows.length >= maxRows) {
            truncated = true;
            return true;
          }
          rows.push({ oid: vb.oid, value: vb.value });
        }
        return false;
      },
      (err) => (err ? reject(err) : resolve({ rows, truncated })),
    );
  });
}

/**
 * Connects to `host` with the first version (of `s.versions`) whose GET of `probeOid` is answered.
 * Throws `SnmpSilentError` when none is, naming the versions tried and the attempts (never the community).
 */
export async function snmpConnect(host: string, s: SnmpSettings, probeOid: string): Promise<SnmpConnection> {
  const failures: string[] = [];
  for (const version of s.versions) {
    const session = openSession(host, s, version);
    try {
      const probe = await getOne(session, probeOid);
      return connection(session, version, probe, s.community);
    } catch (err) {
      session.close();
      failures.push(isTimeout(err) ? `v${version}: no answer (${attempts(s)})` : `v${version}: ${describe(err, s.community)}`);
    }
  }
  throw new SnmpSilentError(failures.join('; '));
}

function connection(session: Session, version: SnmpVersion, probe: SnmpValue, community: string): SnmpConnection {
  const wrap = async <T>(what: string, p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      throw new Error(`SNMPv${version} ${what}: ${isTimeout(err) ? 'no answer' : describe(err, community)}`);
    }
  };
  return {
    version,
    probe,
    get: (oid) => wrap(`GET ${oid}`, getOne(session, oid)),
    walk: (oid, maxRows) => wrap(`walk ${oid}`, walkSubtree(session, oid, maxRows)),
    close: () => {
      try {
        session.close();
      } catch {
        /* already closed */
      }
    },
  };
}

/** `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff`, `AA BB CC DD EE FF`, … → `aa:bb:cc:dd:ee:ff`; else undefined. */
export function normaliseMac(text: string): string | undefined {
  const hex = text.trim().toLowerCase().replace(/[\s:.\-]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

/** An SNMP MacAddress value (6 octets) or a text form of one → normalised MAC; else undefined. */
export function macFromValue(v: unknown): string | undefined {
  if (Buffer.isBuffer(v)) {
    if (v.length === 6) return [...v].map((b) => b.toString(16).padStart(2, '0')).join(':');
    return normaliseMac(v.toString('latin1'));
  }
  return typeof v === 'string' ? normaliseMac(v) : undefined;
}

/** An SNMP DisplayString value as trimmed text ('' when not text). */
export function textFromValue(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('utf8').replace(/\0+$/, '').trim();
  return typeof v === 'string' ? v.trim() : '';
}

/** `fn` over `items`, at most `limit` at a time; results in the order of `items`. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
