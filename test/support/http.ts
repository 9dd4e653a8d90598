/**
 * HTTP clients for the web server tests: Client (fetch, with a cookie jar for the lqos_session
 * cookie) and rawRequest (node:http(s), for what fetch will not do: a chosen Host or Sec-Fetch-Site
 * header, a chosen source address, a private CA).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';

export class Client {
  cookie = '';
  constructor(readonly base: string) {}

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const h: Record<string, string> = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(this.base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, value] = pair.split('=');
      if (name === 'lqos_session') this.cookie = value === '' ? '' : `lqos_session=${value}`;
    }
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, setCookie: res.headers.getSetCookie() };
  }
  get(path: string) {
    return this.req('GET', path);
  }
  post(path: string, body?: unknown) {
    return this.req('POST', path, body);
  }
  put(path: string, body?: unknown) {
    return this.req('PUT', path, body);
  }
  del(path: string) {
    return this.req('DELETE', path);
  }
}

export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
  setCookie: string[];
}

export interface RawRequestOptions {
  method?: string;
  /** Sent as JSON (with its content type). */
  body?: unknown;
  /** Sent as it is (set the content type in `headers`). */
  rawBody?: string;
  headers?: Record<string, string>;
  /** Source address (any of 127.0.0.0/8 reaches a server on 127.0.0.1). */
  from?: string;
  /** CA certificate for https URLs. */
  ca?: Buffer;
}

/** One HTTP(S) request with node:http(s); the method defaults to POST with a body, else GET. */
export function rawRequest(url: string, opts: RawRequestOptions = {}): Promise<RawReply> {
  const body = opts.body === undefined ? opts.rawBody : JSON.stringify(opts.body);
  const headers: Record<string, string> = { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers };
  const send = new URL(url).protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      { method: opts.method ?? (body !== undefined ? 'POST' : 'GET'), headers, localAddress: opts.from, ...(opts.ca ? { ca: opts.ca } : {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, setCookie: res.headers['set-cookie'] ?? [] });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A TCP port on 127.0.0.1 that nobody listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
