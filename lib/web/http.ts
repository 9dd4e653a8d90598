/**
 * The HTTP conventions of lqosd's web server: every /api route declares who may call it
 * (`config.access`), every failure is `{error, message}` with a fitting status, every response
 * carries the security headers (CSP included), and every request passes the transport guards first
 * (Host names this server; no cross-site state changes).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DiskFullError } from '../util/atomicFile.ts';
import type { HostAllowList } from './hostCheck.ts';
import { crossOriginProblem } from './originCheck.ts';

/**
 * - `open`: no login (auth status, first-run);
 * - `guest`: no login, but refused during first run (login, logout);
 * - `read_only`: any logged-in user;
 * - `admin`: admin role only (every mutating route).
 */
export type Access = 'open' | 'guest' | 'read_only' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (see lib/web/http.ts). Required for every /api route. */
    access?: Access;
  }
}

export interface RouteInfo {
  method: string;
  path: string;
  access: Access | 'static';
  websocket: boolean;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** True for routes that change state (what read-only users may never call). */
export function isMutatingRoute(r: RouteInfo): boolean {
  return MUTATING.has(r.method);
}

/** A failure with its HTTP status and error code (extra fields go into the body). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Collects every route into `routes` and refuses, at startup, an /api route without an access
 * level (default deny).
 */
export function recordRoutes(app: FastifyInstance, routes: RouteInfo[]): void {
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    const access = r.config?.access;
    if (r.url.startsWith('/api') && access === undefined) {
      throw new Error(`route ${methods.join(',')} ${r.url} declares no access level`);
    }
    for (const m of methods) {
      if (m === 'HEAD') continue;
      routes.push({ method: m, path: r.url, access: access ?? 'static', websocket: Boolean(r.websocket) });
    }
  });
}

/** Error bodies, the 404 (with the single-page UI's fallback to index.html) and security headers. */
export function installErrorsAndHeaders(app: FastifyInstance, serveUi: () => boolean): void {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.status).send({ error: err.code, message: err.message, ...err.extra });
    }
    if (err.validation) {
      return reply.code(400).send({ error: 'bad_request', message: err.message });
    }
    if (err instanceof DiskFullError) {
      // Nothing was changed (the write failed before any rename); say which disk to free.
      req.log.error({ path: err.path, mount: err.mount }, err.message);
      return reply.code(507).send({ error: 'disk_full', message: err.message });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      const code = status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request';
      return reply.code(status).send({ error: code, message: err.message });
    }
    req.log.error({ err: { message: err.message, stack: err.stack }, url: req.url }, 'web request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal server error; see the lqosd log' });
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && !path.startsWith('/api') && path !== '/metrics' && serveUi()) {
      // SPA fallback: client-side routes get index.html.
      return reply.header('Cache-Control', 'no-store').sendFile('index.html');
    }
    return reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${path}` });
  });

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('Content-Security-Policy', contentSecurityPolicy(req));
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Referrer-Policy', 'no-referrer');
    if (req.url.startsWith('/api')) reply.header('Cache-Control', 'no-store');
    return payload;
  });
}

/** A Host value safe to put into a header (it passed the host check, which refuses anything odd). */
const PLAIN_HOST = /^[A-Za-z0-9.:[\]-]{1,300}$/;

/**
 * The Content-Security-Policy of every response: only this server's scripts, styles and data;
 * inline style attributes allowed (ECharts draws its tooltips with them), no plugins, no framing.
 * The websocket's own origin is named besides 'self' for browsers that do not map 'self' to ws(s):.
 */
export function contentSecurityPolicy(req: FastifyRequest): string {
  const ws = PLAIN_HOST.test(req.host) ? ` ${req.protocol === 'https' ? 'wss' : 'ws'}://${req.host}` : '';
  return [
    "default-src 'self'",
    `connect-src 'self'${ws}`,
    "img-src 'self' data:",
    "style-src 'self' 'unsafe-inline'",
    "script-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
  ].join('; ');
}

/** True for a websocket handshake. */
function isUpgrade(req: FastifyRequest): boolean {
  return String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/**
 * Before anything else runs (access control, body parsing): the Host must name this server
 * (./hostCheck.ts, DNS rebinding) and state-changing requests and websocket handshakes must not come
 * from another site (./originCheck.ts).
 */
export function installTransportGuards(app: FastifyInstance, hosts: HostAllowList): void {
  let lastLog = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  app.addHook('onRequest', async (req, reply) => {
    const verdict = hosts.check(req.host || undefined);
    if (!verdict.ok) return reply.code(421).send({ error: 'bad_host', message: verdict.message });
    if (!MUTATING.has(req.method) && !isUpgrade(req)) return;
    const problem = crossOriginProblem({
      origin: req.headers.origin,
      fetchSite: req.headers['sec-fetch-site'] as string | undefined,
      protocol: req.protocol,
      host: req.host,
    });
    if (problem) {
      // One line a minute at most: a hostile page can send these in a loop.
      if (Date.now() - lastLog >= 60_000) {
        const fields = { method: req.method, url: req.url.split('?')[0], origin: req.headers.origin, fetchSite: req.headers['sec-fetch-site'], alsoRefusedSinceLastLine: unlogged };
        req.log.warn(fields, 'web: cross-site request refused (a page on another site tried to use this server)');
        lastLog = Date.now();
        unlogged = 0;
      } else unlogged++;
      return reply.code(403).send({ error: 'cross_origin', message: problem });
    }
  });
}
