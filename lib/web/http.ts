/**
 * The HTTP conventions of lqosd's web server: every /api route declares who may call it
 * (`config.access`), every failure is `{error, message}` with a fitting status, and every response
 * carries the security headers.
 */
import type { FastifyInstance } from 'fastify';

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
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Referrer-Policy', 'no-referrer');
    if (req.url.startsWith('/api')) reply.header('Cache-Control', 'no-store');
    return payload;
  });
}
