/**
 * JSON over HTTP for the integrations: Node's global fetch (undici) with a per-attempt timeout,
 * retries with exponential backoff on transient failures (network errors, timeouts, 429, 5xx — never
 * on other 4xx), and `IntegrationError`s whose message names the CRM, the method + path and the status.
 *
 * Credentials never leave this module in readable form: error messages carry the path only (no
 * query string, no user-info) and log lines carry `redactUrl(url)` — never headers.
 *
 * Redirects are followed by hand (`redirect: 'manual'`), at most MAX_REDIRECTS hops, and only within
 * the origin (scheme + host + port) of the configured URL: the request's secret headers and body
 * never reach another origin, and https never becomes http. A redirect elsewhere is an error naming
 * both URLs (redacted) so the operator fixes the configured URL. Bodies are counted while they stream
 * and refused past `maxResponseBytes`.
 */
import { STATUS_CODES } from 'node:http';
import { IntegrationError } from './errors.ts';
import { silentLogger, type IntegrationLogger } from './log.ts';

export interface HttpOptions {
  /** Per-attempt timeout (connect + headers + body). Default 30 000 ms. */
  timeoutMs?: number;
  /** Extra attempts after the first on transient failures. Default 2. */
  retries?: number;
  /** First backoff delay; doubles each retry. Default 500 ms. */
  backoffMs?: number;
  /** Cap for one backoff delay (also caps a server's Retry-After). Default 10 000 ms. */
  maxBackoffMs?: number;
  /** Largest response body accepted, in bytes. Default 256 MiB. */
  maxResponseBytes?: number;
}

export interface RequestOptions extends HttpOptions {
  /** CRM display name used in messages, e.g. `Splynx`. */
  crm: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Appended to 401/403 messages, e.g. `check splynx_integration.api_key / api_secret`. */
  authHint?: string;
  /** Appended to connection failures and 404s, e.g. `check splynx_integration.url`. */
  urlHint?: string;
  log?: IntegrationLogger;
}

export const DEFAULT_HTTP: Required<HttpOptions> = {
  timeoutMs: 30_000,
  retries: 2,
  backoffMs: 500,
  maxBackoffMs: 10_000,
  maxResponseBytes: 256 * 1024 * 1024,
};

/** Redirect hops followed (within the origin) before giving up. */
export const MAX_REDIRECTS = 5;

const SECRET_PARAM_RE = /(key|secret|token|pass|auth|sig|session|credential)/i;

/** The URL with user-info removed and secret-looking query parameters replaced by `***`. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '<invalid url>';
  }
  u.username = '';
  u.password = '';
  for (const k of [...u.searchParams.keys()]) if (SECRET_PARAM_RE.test(k)) u.searchParams.set(k, '***');
  return u.toString();
}

const SECRET_HEADER_RE = /^(authorization|proxy-authorization|cookie|x-auth-token)$|token|key|secret/i;

/** Headers with credential-bearing values replaced by `***` (for debug output). */
export function redactHeaders(headers: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = SECRET_HEADER_RE.test(k) ? '***' : v;
  return out;
}

/** `GET /api/2.0/admin/customers/customer` — method and path only. */
export function endpointOf(method: string, url: string): string {
  try {
    return `${method} ${new URL(url).pathname}`;
  } catch {
    return `${method} <invalid url>`;
  }
}

/** `Authorization: Basic base64(user:pass)`. */
export function basicAuth(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
}

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.trim().replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errorCode(err: unknown): string {
  // undici wraps the real reason: TypeError('fetch failed') → cause Error { code: 'ECONNREFUSED' }.
  let e: unknown = err;
  let innermost = err instanceof Error ? err.message : String(err);
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '' && !code.startsWith('UND_ERR_') ) return code;
    if (e instanceof Error && e.message) innermost = e.message;
    e = (e as { cause?: unknown }).cause;
  }
  return scrubErrorText(innermost);
}

/**
 * An error text safe to log and show: fetch's own messages can quote a URL with user-info and
 * query keys ("… a URL that includes credentials: https://u:p@…") or a header value ("Headers.append:
 * "<token>" is an invalid header value"), so URLs are redacted and quoted values hidden.
 */
export function scrubErrorText(text: string): string {
  return text.replace(/\bhttps?:\/\/[^\s"'<>]+/gi, (u) => redactUrl(u)).replace(/"[^"]*"/g, '"***"');
}

function isTimeout(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

function retryAfterMs(res: Response): number | undefined {
  const h = res.headers.get('retry-after');
  if (!h) return undefined;
  const s = Number(h);
  return Number.isFinite(s) && s >= 0 ? s * 1000 : undefined;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

interface FetchSpec {
  crm: string;
  endpoint: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  maxBytes: number;
  urlHint?: string;
}

/**
 * The one place this module reaches the network: fetch with redirects followed by hand within the
 * origin of `url` (see the module comment), then the body read under the size cap. Throws
 * IntegrationError for a refused redirect or an oversize body, and fetch's own errors otherwise.
 */
export async function fetchSameOrigin(url: string, spec: FetchSpec): Promise<{ res: Response; text: string; url: string }> {
  let current = url;
  let method = spec.method;
  let body = spec.body;
  const headers = { ...spec.headers };
  for (let hop = 0; ; hop++) {
    const res = await fetch(current, { method, headers, body, signal: spec.signal, redirect: 'manual' });
    if (!REDIRECT_STATUSES.has(res.status)) return { res, text: await readCapped(res, spec), url: current };
    await res.body?.cancel().catch(() => undefined);
    const location = res.headers.get('location');
    if (location === null) return { res, text: '', url: current };
    const next = URL.canParse(location, current) ? new URL(location, current) : undefined;
    if (next === undefined) {
      const msg = `${spec.crm}: ${spec.endpoint} → ${res.status} redirect with an invalid Location header; fix the configured URL`;
      throw new IntegrationError(spec.urlHint ? `${msg}; ${spec.urlHint}` : msg, { crm: spec.crm, endpoint: spec.endpoint, status: res.status });
    }
    const refusal = redirectRefusal({ configured: url, current, next: next.toString(), hop, ...spec });
    if (refusal) throw new IntegrationError(refusal, { crm: spec.crm, endpoint: spec.endpoint, status: res.status });
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      // Like browsers: these turn a POST into a GET without a body (307/308 keep both, same origin only).
      method = 'GET';
      body = undefined;
      for (const k of Object.keys(headers)) if (k.toLowerCase() === 'content-type') delete headers[k];
    }
    current = next.toString();
  }
}

export interface RedirectHop {
  crm: string;
  endpoint: string;
  urlHint?: string;
  /** The URL the integration was configured with (its origin is the only one followed). */
  configured: string;
  /** The URL that answered with the redirect, and the absolute URL it points at. */
  current: string;
  next: string;
  /** Redirects already followed. */
  hop: number;
}

/** Why the redirect `current` → `next` is not followed (the error message), or undefined when it may be. Pure. */
export function redirectRefusal(h: RedirectHop): string | undefined {
  const { configured, current } = h;
  const next = new URL(h.next);
  const origin = new URL(configured).origin;
  const from = redactUrl(current);
  const to = redactUrl(h.next);
  const fix = h.urlHint ? `; ${h.urlHint}` : '';
  const where = `${h.crm}: ${h.endpoint} → redirected from ${from} to ${to}`;
  if (new URL(current).protocol === 'https:' && next.protocol !== 'https:') {
    return `${where}: refusing to downgrade https to http (credentials would travel in clear text); fix the configured URL ${redactUrl(configured)}${fix}`;
  }
  if (next.origin !== origin) {
    return (
      `${where}: refusing to follow a redirect to another origin (${next.origin} instead of ${origin}; the credentials ` +
      `must not leave the configured server); set the configured URL to the server that answers${fix}`
    );
  }
  if (h.hop + 1 > MAX_REDIRECTS) return `${where}: more than ${MAX_REDIRECTS} redirects; fix the configured URL ${redactUrl(configured)}${fix}`;
  return undefined;
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MiB` : `${bytes} bytes`;
}

/** The body as UTF-8 text, counted while it streams; past `spec.maxBytes` the read is aborted. */
async function readCapped(res: Response, spec: FetchSpec): Promise<string> {
  const tooLarge = () =>
    new IntegrationError(
      `${spec.crm}: ${spec.endpoint} → response larger than ${sizeText(spec.maxBytes)}; refused ` +
        '(a guard against runaway downloads); check that the configured URL points at the CRM API',
      { crm: spec.crm, endpoint: spec.endpoint, status: res.status },
    );
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > spec.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > spec.maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
}

/**
 * One JSON request with retries. Resolves to the parsed body; rejects with an IntegrationError.
 * A 2xx with an empty body resolves to `null`.
 */
export async function requestJson<T = unknown>(url: string, opts: RequestOptions): Promise<T> {
  const { crm } = opts;
  const method = opts.method ?? 'GET';
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HTTP.timeoutMs;
  const retries = opts.retries ?? DEFAULT_HTTP.retries;
  const backoffMs = opts.backoffMs ?? DEFAULT_HTTP.backoffMs;
  const maxBackoffMs = opts.maxBackoffMs ?? DEFAULT_HTTP.maxBackoffMs;
  const log = opts.log ?? silentLogger;
  const endpoint = endpointOf(method, url);
  const safeUrl = redactUrl(url);
  const attempts = retries + 1;
  const tries = (n: number) => (n === 1 ? '1 attempt' : `${n} attempts`);
  const urlHint = opts.urlHint ? `; ${opts.urlHint}` : '';

  let lastError: IntegrationError | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) {
      const delay = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 2));
      await sleep(delay);
    }
    log.debug({ crm, method, url: safeUrl, attempt }, `${crm}: ${method} ${safeUrl}`);
    let res: Response;
    let text: string;
    try {
      ({ res, text } = await fetchSameOrigin(url, {
        crm,
        endpoint,
        method,
        headers: { Accept: 'application/json', ...opts.headers },
        body: opts.body,
        signal: AbortSignal.timeout(timeoutMs),
        maxBytes: opts.maxResponseBytes ?? DEFAULT_HTTP.maxResponseBytes,
        urlHint: opts.urlHint,
      }));
    } catch (err) {
      if (err instanceof IntegrationError) throw err; // redirect refused / too large: retrying cannot help
      const what = isTimeout(err) ? `timed out after ${timeoutMs} ms` : `connection failed (${errorCode(err)})`;
      lastError = new IntegrationError(`${crm}: ${endpoint} → ${what}`, { crm, endpoint });
      log.warn({ crm, url: safeUrl, attempt, of: attempts }, `${crm}: ${endpoint} → ${what}`);
      if (attempt < attempts) continue;
      throw new IntegrationError(`${crm}: ${endpoint} → ${what} (${tries(attempts)})${urlHint}`, { crm, endpoint, cause: err });
    }

    const statusLine = `${res.status} ${res.statusText || STATUS_CODES[res.status] || ''}`.trim();
    if (res.ok) {
      if (text.trim() === '') return null as T;
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new IntegrationError(`${crm}: ${endpoint} → ${statusLine} but the body is not valid JSON (${why})`, {
          crm,
          endpoint,
          status: res.status,
        });
      }
    }

    const transient = res.status === 429 || res.status >= 500;
    if (transient && attempt < attempts) {
      log.warn({ crm, url: safeUrl, status: res.status, attempt, of: attempts }, `${crm}: ${endpoint} → ${statusLine}; retrying`);
      const ra = retryAfterMs(res);
      if (ra !== undefined) await sleep(Math.min(ra, maxBackoffMs));
      continue;
    }
    let hint = '';
    if (res.status === 401 || res.status === 403) hint = opts.authHint ? `: ${opts.authHint}` : ': check the credentials';
    else if (res.status === 404) hint = opts.urlHint ? `: ${opts.urlHint}` : '';
    else if (transient) hint = ` (${tries(attempts)})`;
    throw new IntegrationError(`${crm}: ${endpoint} → ${statusLine}${hint}`, { crm, endpoint, status: res.status });
  }
  // Unreachable: the loop either returns or throws.
  throw lastError ?? new IntegrationError(`${crm}: ${endpoint} failed`, { crm, endpoint });
}

/** `POST /api/graphql (accounts)`: method and path, then the operation. */
export function operationEndpoint(method: string, url: string, op: string): string {
  return `${endpointOf(method, url)} (${op})`;
}

/**
 * requestJson for an API that serves many operations at one URL (GraphQL, form actions): its errors
 * name the operation after the path (see operationEndpoint).
 */
export async function requestOperation<T = unknown>(url: string, op: string, opts: RequestOptions): Promise<T> {
  const plain = endpointOf(opts.method ?? 'GET', url);
  try {
    return await requestJson<T>(url, opts);
  } catch (err) {
    if (!(err instanceof IntegrationError) || err.endpoint !== plain) throw err;
    const endpoint = `${plain} (${op})`;
    throw new IntegrationError(err.message.replace(plain, endpoint), { crm: err.crm, endpoint, status: err.status, cause: err.cause });
  }
}

/** GET + JSON. See requestJson. */
export function getJson<T = unknown>(url: string, opts: Omit<RequestOptions, 'method' | 'body'>): Promise<T> {
  return requestJson<T>(url, { ...opts, method: 'GET' });
}

// ---------------------------------------------------------------------------------------------
// Pagination

/**
 * Page-number / offset pagination: calls `fetchPage(0)`, `fetchPage(1)`, … and concatenates the
 * items until a page has fewer than `pageSize` items (or none). `maxPages` guards against a server
 * that ignores the paging parameters and returns the same full page forever.
 */
export async function fetchAllPages<T>(
  fetchPage: (pageIndex: number) => Promise<T[]>,
  opts: { pageSize: number; maxPages?: number; crm: string; endpoint: string },
): Promise<T[]> {
  const maxPages = opts.maxPages ?? 10_000;
  const out: T[] = [];
  for (let page = 0; page < maxPages; page++) {
    const items = await fetchPage(page);
    out.push(...items);
    if (items.length < opts.pageSize) return out;
  }
  throw new IntegrationError(`${opts.crm}: ${opts.endpoint} → still returning full pages after ${maxPages} pages; is paging supported?`, {
    crm: opts.crm,
    endpoint: opts.endpoint,
  });
}

/**
 * Link pagination: `fetchPage(url)` returns the items of one page and the next page's URL (absolute
 * or relative to the current one), or null/undefined at the end. Loops are detected.
 */
export async function followNextLinks<T>(
  firstUrl: string,
  fetchPage: (url: string) => Promise<{ items: T[]; next?: string | null }>,
  opts: { maxPages?: number; crm: string },
): Promise<T[]> {
  const maxPages = opts.maxPages ?? 10_000;
  const seen = new Set<string>();
  const out: T[] = [];
  let url: string | null | undefined = firstUrl;
  while (url) {
    if (seen.has(url) || seen.size >= maxPages) {
      const endpoint = endpointOf('GET', url);
      throw new IntegrationError(`${opts.crm}: ${endpoint} → pagination does not end (page repeated or more than ${maxPages} pages)`, {
        crm: opts.crm,
        endpoint,
      });
    }
    seen.add(url);
    const page: { items: T[]; next?: string | null } = await fetchPage(url);
    out.push(...page.items);
    url = page.next ? new URL(page.next, url).toString() : null;
  }
  return out;
}
