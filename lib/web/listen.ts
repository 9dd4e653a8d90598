/**
 * Where the web server listens and who this node is, from lqos.conf: upstream's top-level
 * `webserver_listen = "IP:port"` is honoured when `[web]` is absent (or left at its defaults); when
 * both are set `[web]` wins and one warning says so. `node_id` is the config's, or (empty, as
 * upstream) a stable one derived from /etc/machine-id.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { WEB_DEFAULTS, type LqosConfig } from '../config/schema.ts';

export interface ListenAddress {
  host: string;
  port: number;
  /** Which key decided. */
  from: '[web]' | 'webserver_listen';
  /** Set when the config says two things (or something unusable); logged once at start. */
  warning?: string;
}

/**
 * `IP:port`, `[v6]:port`, `:port`, or upstream's unbracketed `v6:port` (its default `:::9123` is
 * `::` port 9123: the last colon starts the port) → host and port; undefined when not of that form.
 */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^\s*(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)|([0-9a-fA-F:.]*:[0-9a-fA-F:.]*)):(\d{1,5})\s*$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[4]);
  if (port < 1 || port > 65535) return undefined;
  if (m[3] !== undefined) return isIPv6(m[3]) ? { host: m[3], port } : undefined;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function webListenAddress(config: LqosConfig): ListenAddress {
  const web = config.web;
  const fromWeb: ListenAddress = { host: web.bind_address, port: web.port, from: '[web]' };
  const legacy = config.webserver_listen;
  if (legacy === undefined || legacy.trim() === '') return fromWeb;
  const parsed = parseListen(legacy);
  if (!parsed) {
    return { ...fromWeb, warning: `webserver_listen = "${legacy}" is not of the form "IP:port" (e.g. "0.0.0.0:9123"); listening on ${web.bind_address}:${web.port} from [web] instead. Fix the key in lqos.conf.` };
  }
  const webIsDefault = web.bind_address === WEB_DEFAULTS.bind_address && web.port === WEB_DEFAULTS.port;
  if (webIsDefault) return { ...parsed, from: 'webserver_listen' };
  if (parsed.host === web.bind_address && parsed.port === web.port) return fromWeb;
  return {
    ...fromWeb,
    warning: `both [web] (${web.bind_address}:${web.port}) and webserver_listen = "${legacy}" are set; [web] wins. Remove one of them from lqos.conf.`,
  };
}

const derived = new Map<string, string>();

/** This node's id: `node_id` from the config, else a stable hash of /etc/machine-id (else of the hostname). */
export function nodeIdOf(config: LqosConfig, machineIdPath = '/etc/machine-id'): string {
  if (config.node_id.trim()) return config.node_id.trim();
  const known = derived.get(machineIdPath);
  if (known) return known;
  let seed: string;
  try {
    seed = readFileSync(machineIdPath, 'utf8').trim();
  } catch {
    seed = '';
  }
  if (!seed) seed = `host:${hostname()}`;
  const id = createHash('sha256').update(seed).digest('hex').slice(0, 16);
  derived.set(machineIdPath, id);
  return id;
}

export interface WebTls {
  cert: Buffer;
  key: Buffer;
}

/** A `[web]` TLS setting lqosd cannot use; the message names the key or file and what to do. */
export class WebTlsError extends Error {}

/** `[web] tls_cert_file` / `tls_key_file`: which files to read, or why the pair is unusable (pure). */
export function tlsFiles(web: Pick<LqosConfig['web'], 'tls_cert_file' | 'tls_key_file'>): { cert: string; key: string } | undefined {
  const cert = web.tls_cert_file.trim();
  const key = web.tls_key_file.trim();
  if (!cert && !key) return undefined;
  if (!cert || !key) {
    const set = cert ? 'tls_cert_file' : 'tls_key_file';
    const missing = cert ? 'tls_key_file' : 'tls_cert_file';
    throw new WebTlsError(
      `[web] ${set} is set but ${missing} is not: HTTPS needs both tls_cert_file (PEM certificate chain) and tls_key_file (PEM private key). Set both in lqos.conf, or remove both for plain HTTP.`,
    );
  }
  return { cert, key };
}

/** The certificate and key of `[web]`, read now; undefined for plain HTTP. */
export function webTls(config: LqosConfig): WebTls | undefined {
  const files = tlsFiles(config.web);
  if (!files) return undefined;
  const read = (path: string, keyName: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new WebTlsError(
        `[web] ${keyName} = "${path}" cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the path and that lqosd (root) can read it.`,
      );
    }
  };
  return { cert: read(files.cert, 'tls_cert_file'), key: read(files.key, 'tls_key_file') };
}

/** The address to tell the operator (a wildcard bind becomes this host's name). */
export function webUrl(host: string, port: number, tls: boolean): string {
  const name = host === '0.0.0.0' || host === '::' || host === '' ? hostname() : host.includes(':') ? `[${host}]` : host;
  return `${tls ? 'https' : 'http'}://${name}:${port}`;
}
