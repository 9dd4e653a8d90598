/**
 * The DNS-rebinding guard: a request is served only when its Host names this server. A web page
 * on evil.example that rebinds its name to the shaper's LAN address still sends `Host: evil.example`,
 * so refusing unknown Host values keeps such pages from reading or driving the API.
 *
 * This server's names: `localhost`, loopback addresses, the bind address (unless a wildcard), every
 * address of the host's interfaces, the host name (and its short form) and `[web] allowed_hosts`.
 * The port part is ignored. Everything here is pure except HostAllowList's default readers.
 */
import { isIP } from 'node:net';
import { hostname as osHostname, networkInterfaces } from 'node:os';

/** Characters that would make the URL parser read a Host value as something else (userinfo, path). */
const NOT_IN_HOST = /[\s/\\@?#]/;

/**
 * A Host header value (`name`, `name:port`, `[v6]:port`) as one canonical name: lower case, no
 * port, no trailing dot, IPv6 in brackets and compressed, IPv4 in dotted form. Undefined when it is
 * not a host at all.
 */
export function canonicalHost(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === '' || text.length > 300 || NOT_IN_HOST.test(text)) return undefined;
  let name: string;
  try {
    name = new URL(`http://${text}`).hostname;
  } catch {
    return undefined;
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name === '' ? undefined : name;
}

/** A configured name or an interface address (bare IPv6 allowed) in canonicalHost's form. */
export function canonicalName(entry: string): string | undefined {
  const text = entry.trim().replace(/%.*$/, ''); // IPv6 zone ids (fe80::1%eth0) are not part of a Host
  return canonicalHost(isIP(text) === 6 ? `[${text}]` : text);
}

/** `localhost` (and its subdomains), 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (/^127\.\d+\.\d+\.\d+$/.test(host)) return true;
  return host === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host);
}

const WILDCARDS = new Set(['0.0.0.0', '[::]', '']);

export interface HostNameSources {
  /** Where the server listens (`0.0.0.0` / `::` add nothing). */
  bindAddress: string;
  /** os.hostname(). */
  hostname: string;
  /** Every address of the host's interfaces. */
  interfaceAddresses: string[];
  /** `[web] allowed_hosts`. */
  allowedHosts: readonly string[];
}

/** Every name of this server (canonical), loopback aside (isLoopbackHost covers it). */
export function hostNames(src: HostNameSources): Set<string> {
  const names = new Set<string>();
  const add = (entry: string) => {
    const c = canonicalName(entry);
    if (c !== undefined) names.add(c);
  };
  const bind = canonicalName(src.bindAddress) ?? '';
  if (!WILDCARDS.has(bind)) names.add(bind);
  add(src.hostname);
  if (isIP(src.hostname) === 0 && src.hostname.includes('.')) add(src.hostname.split('.')[0]);
  for (const a of src.interfaceAddresses) add(a);
  for (const a of src.allowedHosts) add(a);
  return names;
}

export type HostVerdict = { ok: true; host: string } | { ok: false; host: string; message: string };

/** The refusal text: which host, and the key that allows it. */
export function badHostMessage(shown: string): string {
  return (
    `this server does not answer to the host name ${shown} (a guard against DNS rebinding). ` +
    `If you reach the web UI by this name, add it to [web] allowed_hosts in lqos.conf ` +
    `(e.g. allowed_hosts = [${shown}]) and reload lqosd.`
  );
}

export interface HostAllowListOptions {
  /** The current bind address and `[web] allowed_hosts` (read on every check: config reloads apply). */
  config: () => { bindAddress: string; allowedHosts: readonly string[] };
  readAddresses?: () => string[];
  hostname?: () => string;
  now?: () => number;
  /** Interface addresses are re-read when older than this (default 5 s)… */
  refreshMs?: number;
  /** …or on a miss, when older than this (default 1 s: a flood of bad hosts costs one read a second). */
  missRefreshMs?: number;
}

/** Addresses of every interface (os.networkInterfaces()). */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

/** The allow list of a running server: interface addresses change at runtime (DHCP, VLANs added). */
export class HostAllowList {
  private addresses: string[] = [];
  private readAt = Number.NEGATIVE_INFINITY;
  private cacheKey: unknown[] = [];
  private cache = new Set<string>();
  private readonly readAddresses: () => string[];
  private readonly hostname: () => string;
  private readonly now: () => number;

  constructor(private readonly opts: HostAllowListOptions) {
    this.readAddresses = opts.readAddresses ?? interfaceAddresses;
    this.hostname = opts.hostname ?? osHostname;
    this.now = opts.now ?? Date.now;
  }

  /** Whether a Host header value names this server. */
  check(header: string | undefined): HostVerdict {
    const host = canonicalHost(header);
    const shown = JSON.stringify(String(header ?? '').slice(0, 100));
    if (host === undefined) {
      return { ok: false, host: String(header ?? ''), message: header ? badHostMessage(shown) : 'the request has no Host header; send one naming this server' };
    }
    if (isLoopbackHost(host)) return { ok: true, host };
    if (this.names(this.opts.refreshMs ?? 5000).has(host)) return { ok: true, host };
    if (this.names(this.opts.missRefreshMs ?? 1000).has(host)) return { ok: true, host };
    return { ok: false, host, message: badHostMessage(JSON.stringify(host)) };
  }

  private names(maxAgeMs: number): Set<string> {
    const now = this.now();
    if (now - this.readAt >= maxAgeMs) {
      this.addresses = this.readAddresses();
      this.readAt = now;
    }
    const { bindAddress, allowedHosts } = this.opts.config();
    const name = this.hostname();
    const key = [bindAddress, allowedHosts, name, this.addresses];
    if (key.some((k, i) => k !== this.cacheKey[i])) {
      this.cache = hostNames({ bindAddress, hostname: name, interfaceAddresses: this.addresses, allowedHosts });
      this.cacheKey = key;
    }
    return this.cache;
  }
}
