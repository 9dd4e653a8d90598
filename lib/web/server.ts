/**
 * lqosd's web server: the JSON API under /api, the live websocket (/api/ws), Prometheus /metrics and
 * the single-page UI (webui/dist).
 *
 * Access control: every route declares `config.access` and one onRequest hook enforces it before the
 * body is even parsed:
 * - `open`: no login (auth status, first-run);
 * - `guest`: no login, but refused during first run (login, logout);
 * - `read_only`: any logged-in user;
 * - `admin`: admin role only (every mutating route).
 * A route under /api without `access` is refused at startup (default deny).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DaemonContext } from '../daemon/context.ts';
import { ChannelHub, type WsLike } from './channels.ts';
import { applyConfigPatch, configPatchJsonSchema, ConfigUpdateError } from './configEdit.ts';
import { inputPaths, owningIntegration } from './files.ts';
import {
  InputsRejected,
  networkBodySchema,
  readNetworkPayload,
  readShapedDevicesPayload,
  replaceNetwork,
  replaceShapedDevices,
  shapedDevicesBodySchema,
  type CircuitBody,
} from './inputsEdit.ts';
import { metrics } from './metrics.ts';
import { circuitPayload, networkTreePayload, statusPayload, urgentPayload } from './payloads.ts';
import { redactSecrets } from './redact.ts';
import { LoginLimiter, SESSION_COOKIE, SessionStore } from './sessions.ts';
import { PASSWORD_MAX, PASSWORD_MIN, UserError, UserStore, type PublicUser, type Role } from './users.ts';

export type Access = 'open' | 'guest' | 'read_only' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (see lib/web/server.ts). Required for every /api route. */
    access?: Access;
  }
}

export interface WebServerOptions {
  host?: string;
  port?: number;
  /** Default `<state_directory>/lqusers.toml`. */
  usersFile?: string;
  /** Built UI; default `<repo>/webui/dist`. */
  webRoot?: string;
  /** Websocket push period (default 2000 ms). */
  wsIntervalMs?: number;
}

export interface RouteInfo {
  method: string;
  path: string;
  access: Access | 'static';
  websocket: boolean;
}

export interface WebServer {
  close(): Promise<void>;
  /** e.g. `http://127.0.0.1:9123` */
  address: string;
  /** Every route (HEAD excluded), as registered with Fastify. */
  routes: RouteInfo[];
}

export const DEFAULT_WEB_ROOT = resolve(import.meta.dirname, '../../webui/dist');

/** The error body of every failure. */
export interface ApiError {
  error: string;
  message: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Request-scoped login (set by the access hook). */
const requestUser = new WeakMap<FastifyRequest, { user: PublicUser; sessionId: string }>();

export async function startWebServer(ctx: DaemonContext, opts: WebServerOptions = {}): Promise<WebServer> {
  const { app, routes, hub } = await buildWebApp(ctx, opts);
  const cfg = ctx.config().web;
  const host = opts.host ?? cfg.bind_address;
  const port = opts.port ?? cfg.port;
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (err) {
    hub.stop();
    await app.close().catch(() => undefined);
    throw err;
  }
  hub.start();
  ctx.log.info({ address }, 'web server listening');
  return {
    address,
    routes,
    close: async () => {
      hub.stop();
      await app.close();
    },
  };
}

/** Builds the Fastify app without listening (exported for tests and embedding). */
export async function buildWebApp(ctx: DaemonContext, opts: WebServerOptions = {}) {
  const usersFile = opts.usersFile ?? join(ctx.config().state_directory, 'lqusers.toml');
  const webRoot = opts.webRoot ?? DEFAULT_WEB_ROOT;
  const users = new UserStore(usersFile);
  const sessions = new SessionStore();
  const limiter = new LoginLimiter();
  const hub = new ChannelHub(ctx, opts.wsIntervalMs ?? 2000);
  const routes: RouteInfo[] = [];
  /** Serialises writes of the config and input files. */
  let writeChain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const run = writeChain.then(fn);
    writeChain = run.catch(() => undefined);
    return run;
  };

  const app = Fastify({
    loggerInstance: ctx.log.child({ component: 'web' }) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });

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

  await app.register(fastifyCookie);
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });

  // ---------------------------------------------------------------------------------------------
  // Errors and headers

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
    if (req.method === 'GET' && !path.startsWith('/api') && path !== '/metrics' && hasWebRoot(webRoot)) {
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

  // ---------------------------------------------------------------------------------------------
  // Access control

  const sessionUser = (req: FastifyRequest): { user: PublicUser; sessionId: string } | undefined => {
    const id = req.cookies[SESSION_COOKIE];
    const s = sessions.get(id);
    if (!s) return undefined;
    const user = users.find(s.username);
    if (!user) {
      sessions.delete(s.id);
      return undefined;
    }
    return { user, sessionId: s.id };
  };

  app.addHook('onRequest', async (req, reply) => {
    const access = req.routeOptions.config?.access;
    if (access === undefined || access === 'open') return;
    const state = users.state();
    if (state === 'corrupt') {
      return reply.code(503).send({ error: 'auth_unavailable', message: `the users file cannot be read; fix or remove ${usersFile}` });
    }
    if (state === 'empty') {
      return reply.code(409).send({ error: 'first_run', message: 'create the first admin' });
    }
    if (access === 'guest') return;
    const login = sessionUser(req);
    if (!login) return reply.code(401).send({ error: 'unauthorized', message: 'log in first' });
    if (access === 'admin' && login.user.role !== 'admin') {
      return reply.code(403).send({ error: 'forbidden', message: 'this needs the admin role' });
    }
    requestUser.set(req, login);
  });

  const currentUser = (req: FastifyRequest) => {
    const u = requestUser.get(req);
    if (!u) throw new HttpError(401, 'unauthorized', 'log in first');
    return u;
  };

  const setSessionCookie = (req: FastifyRequest, reply: FastifyReply, id: string) => {
    reply.setCookie(SESSION_COOKIE, id, { httpOnly: true, sameSite: 'strict', path: '/', secure: req.protocol === 'https' });
  };

  const userError = (err: unknown): never => {
    if (err instanceof UserError) {
      const status = { user_exists: 409, no_such_user: 404, last_admin: 409, already_configured: 409, auth_unavailable: 503, invalid_user: 400 }[err.code];
      throw new HttpError(status, err.code, err.message);
    }
    throw err;
  };

  // ---------------------------------------------------------------------------------------------
  // Schemas

  const usernameSchema = { type: 'string', pattern: '^[A-Za-z0-9_.-]{3,32}$' };
  const passwordSchema = { type: 'string', minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX };
  const roleSchema = { type: 'string', enum: ['admin', 'read_only'] };
  const credentials = (strict: boolean) => ({
    type: 'object',
    additionalProperties: false,
    required: ['username', 'password'],
    properties: strict
      ? { username: usernameSchema, password: passwordSchema }
      : { username: { type: 'string', maxLength: 128 }, password: { type: 'string', maxLength: PASSWORD_MAX } },
  });
  const nameParams = { type: 'object', required: ['name'], properties: { name: usernameSchema } };
  const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } };

  // ---------------------------------------------------------------------------------------------
  // Auth

  app.get('/api/auth/status', { config: { access: 'open' } }, async (req) => {
    const state = users.state();
    const login = state === 'ready' ? sessionUser(req) : undefined;
    return {
      firstRun: state === 'empty',
      ...(state === 'corrupt' ? { authError: 'the users file cannot be read' } : {}),
      ...(login ? { user: login.user } : {}),
    };
  });

  app.post<{ Body: { username: string; password: string } }>(
    '/api/auth/first-run',
    { config: { access: 'open' }, schema: { body: credentials(true) } },
    async (req, reply) => {
      if (users.state() === 'corrupt') throw new HttpError(503, 'auth_unavailable', `the users file cannot be read; fix or remove ${usersFile}`);
      const user = await users.createFirstAdmin(req.body.username, req.body.password).catch(userError);
      ctx.log.info({ username: user.username }, 'web: first admin created');
      const s = sessions.create(user.username);
      setSessionCookie(req, reply, s.id);
      return reply.code(201).send({ user });
    },
  );

  app.post<{ Body: { username: string; password: string } }>(
    '/api/auth/login',
    { config: { access: 'guest' }, schema: { body: credentials(false) } },
    async (req, reply) => {
      const { username, password } = req.body;
      const wait = limiter.retryAfter(req.ip, username);
      if (wait > 0) {
        reply.header('Retry-After', String(wait));
        throw new HttpError(429, 'rate_limited', `too many failed logins; try again in ${wait} s`);
      }
      limiter.begin(req.ip, username);
      const user = await users.verify(username, password);
      if (!user) {
        ctx.log.warn({ ip: req.ip }, 'web: failed login');
        throw new HttpError(401, 'invalid_credentials', 'invalid username or password');
      }
      limiter.succeeded(req.ip, username);
      const old = req.cookies[SESSION_COOKIE];
      sessions.delete(old);
      const s = sessions.create(user.username);
      setSessionCookie(req, reply, s.id);
      return { user };
    },
  );

  app.post('/api/auth/logout', { config: { access: 'guest' } }, async (req, reply) => {
    sessions.delete(req.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });

  // ---------------------------------------------------------------------------------------------
  // Status, urgent issues, scheduler

  app.get('/api/status', { config: { access: 'read_only' } }, async () => statusPayload(ctx));
  app.get('/api/scheduler', { config: { access: 'read_only' } }, async () => ctx.scheduler.status());
  app.get('/api/urgent', { config: { access: 'read_only' } }, async () => urgentPayload(ctx));

  app.post<{ Params: { id: string } }>('/api/urgent/:id/ack', { config: { access: 'admin' }, schema: { params: idParams } }, async (req) => {
    if (!ctx.urgent.acknowledge(req.params.id)) throw new HttpError(404, 'not_found', `no urgent issue ${req.params.id}`);
    return { ok: true };
  });
  app.delete<{ Params: { id: string } }>('/api/urgent/:id', { config: { access: 'admin' }, schema: { params: idParams } }, async (req) => {
    if (ctx.urgent.clear(req.params.id) === 0) throw new HttpError(404, 'not_found', `no urgent issue ${req.params.id}`);
    return { ok: true, cleared: 1 };
  });
  app.delete('/api/urgent', { config: { access: 'admin' } }, async () => ({ ok: true, cleared: ctx.urgent.clear() }));

  // ---------------------------------------------------------------------------------------------
  // Configuration

  app.get('/api/config', { config: { access: 'read_only' } }, async () => ({
    path: ctx.configPath,
    config: redactSecrets(ctx.config()),
  }));

  app.put<{ Body: Record<string, unknown> }>(
    '/api/config',
    { config: { access: 'admin' }, schema: { body: configPatchJsonSchema() } },
    async (req) =>
      serialized(async () => {
        let loaded;
        try {
          loaded = applyConfigPatch(ctx.configPath, req.body);
        } catch (err) {
          if (err instanceof ConfigUpdateError) throw new HttpError(err.status, err.code, err.message, { details: err.details });
          throw err;
        }
        ctx.log.info({ user: currentUser(req).user.username, sections: Object.keys(req.body) }, 'web: configuration changed');
        try {
          await ctx.reloadConfig();
        } catch (err) {
          ctx.log.error({ err: (err as Error).message }, 'web: config written but reload failed');
          throw new HttpError(500, 'reload_failed', 'the configuration was saved but lqosd could not reload it; see the lqosd log');
        }
        return { ok: true, warnings: loaded.warnings, config: redactSecrets(ctx.config()) };
      }),
  );

  // ---------------------------------------------------------------------------------------------
  // Shaping inputs

  const ensureEditable = () => {
    const owner = owningIntegration(ctx.config());
    if (owner) {
      throw new HttpError(
        409,
        'integration_owns_inputs',
        `the ${owner.section.replace(/_integration$/, '')} integration is enabled (${owner.section}.${owner.key} = true); ` +
          'it owns ShapedDevices.csv and network.json and rewrites them on every refresh — edit the CRM, or disable the integration to edit them here',
      );
    }
  };
  const inputsRejected = (err: unknown): never => {
    if (err instanceof InputsRejected) throw new HttpError(422, 'invalid_inputs', err.message, { issues: err.issues });
    throw err;
  };

  app.get('/api/shaped-devices', { config: { access: 'read_only' } }, async () => {
    const config = ctx.config();
    const owner = owningIntegration(config);
    return { ...readShapedDevicesPayload(inputPaths(config)), ownedBy: owner ? owner.section : null };
  });

  app.put<{ Body: { circuits: CircuitBody[] } }>(
    '/api/shaped-devices',
    { config: { access: 'admin' }, bodyLimit: 256 * 1024 * 1024, schema: { body: shapedDevicesBodySchema } },
    async (req) =>
      serialized(() => {
        ensureEditable();
        let result;
        try {
          result = replaceShapedDevices(inputPaths(ctx.config()), req.body.circuits);
        } catch (err) {
          inputsRejected(err);
        }
        ctx.log.info({ user: currentUser(req).user.username, circuits: result!.circuits }, 'web: ShapedDevices.csv replaced');
        return { ok: true, ...result! };
      }),
  );

  app.get('/api/network', { config: { access: 'read_only' } }, async () => {
    const config = ctx.config();
    const owner = owningIntegration(config);
    return { ...readNetworkPayload(inputPaths(config)), ownedBy: owner ? owner.section : null };
  });

  app.put<{ Body: { network: Record<string, unknown> } }>(
    '/api/network',
    { config: { access: 'admin' }, bodyLimit: 64 * 1024 * 1024, schema: { body: networkBodySchema } },
    async (req) =>
      serialized(() => {
        ensureEditable();
        let result;
        try {
          result = replaceNetwork(inputPaths(ctx.config()), req.body.network);
        } catch (err) {
          inputsRejected(err);
        }
        ctx.log.info({ user: currentUser(req).user.username, nodes: result!.nodes }, 'web: network.json replaced');
        return { ok: true, ...result! };
      }),
  );

  // ---------------------------------------------------------------------------------------------
  // Applied plan

  app.get('/api/circuits', { config: { access: 'read_only' } }, async () => {
    const plan = ctx.appliedPlan();
    return { applied: Boolean(plan), circuits: plan ? plan.circuits.map((c) => circuitPayload(plan, c)) : [] };
  });

  app.get<{ Params: { id: string } }>('/api/circuits/:id', { config: { access: 'read_only' }, schema: { params: idParams } }, async (req) => {
    const plan = ctx.appliedPlan();
    const c = plan?.circuits.find((x) => x.id === req.params.id);
    if (!plan || !c) throw new HttpError(404, 'not_found', `circuit ${req.params.id} is not in the applied plan`);
    return circuitPayload(plan, c);
  });

  app.get('/api/network-tree', { config: { access: 'read_only' } }, async () => networkTreePayload(ctx.appliedPlan()));
  await (await import('./routesExtra.ts')).registerExtraRoutes(app as unknown as FastifyInstance, ctx);

  // ---------------------------------------------------------------------------------------------
  // Users (admin only; no hash ever leaves)

  app.get('/api/users', { config: { access: 'admin' } }, async () => {
    try {
      return { users: users.list() };
    } catch (err) {
      return userError(err);
    }
  });

  app.post<{ Body: { username: string; password: string; role: Role } }>(
    '/api/users',
    {
      config: { access: 'admin' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password', 'role'],
          properties: { username: usernameSchema, password: passwordSchema, role: roleSchema },
        },
      },
    },
    async (req, reply) => {
      const user = await users.add(req.body.username, req.body.password, req.body.role).catch(userError);
      ctx.log.info({ by: currentUser(req).user.username, username: user.username, role: user.role }, 'web: user added');
      return reply.code(201).send({ user });
    },
  );

  app.delete<{ Params: { name: string } }>('/api/users/:name', { config: { access: 'admin' }, schema: { params: nameParams } }, async (req) => {
    await users.remove(req.params.name).catch(userError);
    sessions.deleteUser(req.params.name);
    ctx.log.info({ by: currentUser(req).user.username, username: req.params.name }, 'web: user deleted');
    return { ok: true };
  });

  app.put<{ Params: { name: string }; Body: { password: string } }>(
    '/api/users/:name/password',
    {
      config: { access: 'admin' },
      schema: {
        params: nameParams,
        body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: passwordSchema } },
      },
    },
    async (req) => {
      await users.setPassword(req.params.name, req.body.password).catch(userError);
      // Other sessions of that user end; the caller's own session survives.
      sessions.deleteUser(req.params.name, currentUser(req).sessionId);
      ctx.log.info({ by: currentUser(req).user.username, username: req.params.name }, 'web: password changed');
      return { ok: true };
    },
  );

  app.put<{ Params: { name: string }; Body: { role: Role } }>(
    '/api/users/:name/role',
    {
      config: { access: 'admin' },
      schema: {
        params: nameParams,
        body: { type: 'object', additionalProperties: false, required: ['role'], properties: { role: roleSchema } },
      },
    },
    async (req) => {
      const user = await users.setRole(req.params.name, req.body.role).catch(userError);
      ctx.log.info({ by: currentUser(req).user.username, username: user.username, role: user.role }, 'web: role changed');
      return { user };
    },
  );

  // ---------------------------------------------------------------------------------------------
  // Websocket

  app.get(
    '/api/ws',
    {
      config: { access: 'read_only' },
      websocket: true,
      onRequest: async (req, reply) => {
        // Cross-site websocket hijacking: a browser always sends Origin; it must be this host.
        const origin = req.headers.origin;
        if (origin !== undefined) {
          let host: string | undefined;
          try {
            host = new URL(origin).host;
          } catch {
            host = undefined;
          }
          if (!host || host.toLowerCase() !== String(req.headers.host ?? '').toLowerCase()) {
            return reply.code(403).send({ error: 'forbidden', message: 'cross-origin websocket refused' });
          }
        }
      },
    },
    (socket, req) => {
      const login = requestUser.get(req);
      if (!login) {
        socket.close(4401, 'log in first');
        return;
      }
      hub.attach(socket as unknown as WsLike, () => {
        const s = sessions.get(login.sessionId, false);
        return s !== undefined && users.find(s.username) !== undefined;
      });
    },
  );

  // ---------------------------------------------------------------------------------------------
  // Prometheus (no login: numeric shaping metrics only)

  app.get('/metrics', async (_req, reply) => {
    metrics.urgentIssuesActive.set(ctx.urgent.activeCount());
    metrics.shapedCircuits.set(ctx.appliedPlan()?.circuits.length ?? 0);
    metrics.shapingDegraded.set(ctx.shapingStatus().degraded ? 1 : 0);
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  // ---------------------------------------------------------------------------------------------
  // The UI

  if (hasWebRoot(webRoot)) {
    await app.register(fastifyStatic, { root: webRoot, prefix: '/', index: ['index.html'] });
  } else {
    app.get('/', async (_req, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .send(
          '<!doctype html><html><head><meta charset="utf-8"><title>LibreQoS</title></head><body>' +
            '<h1>LibreQoS web UI not built</h1><p>The API is running. Build the UI with <code>npm run build:webui</code> ' +
            'and restart lqosd.</p></body></html>',
        ),
    );
  }

  await app.ready();
  return { app: app as FastifyInstance, routes, hub, users, sessions };
}

function hasWebRoot(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && existsSync(join(dir, 'index.html'));
  } catch {
    return false;
  }
}

/** True for routes that change state (what read-only users may never call). */
export function isMutatingRoute(r: RouteInfo): boolean {
  return MUTATING.has(r.method);
}
