/**
 * lqosd's web server: the JSON API under /api (one Fastify plugin per route group, ./routes/), the
 * live websocket (/api/ws), Prometheus /metrics and the single-page UI (webui/dist).
 *
 * Access control (./access.ts): every /api route declares `config.access` and one onRequest hook
 * enforces it before the body is even parsed; a route under /api without one is refused at startup.
 */
import { existsSync, statSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpsOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { statePaths } from '../config/paths.ts';
import { createShapingMetrics, type ShapingMetrics } from '../telemetry/metrics.ts';
import { installAccessControl } from './access.ts';
import { ChannelHub, ChannelRegistry } from './channels.ts';
import type { WebContext } from './context.ts';
import type { WebDeps } from './deps.ts';
import { HostAllowList } from './hostCheck.ts';
import { installErrorsAndHeaders, installTransportGuards, recordRoutes, type RouteInfo } from './http.ts';
import { webListenAddress, webTls, webUrl, WebTlsError } from './listen.ts';
import { statusPayload, urgentPayload } from './payloads.ts';
import { authRoutes } from './routes/auth.ts';
import { configRoutes } from './routes/config.ts';
import { inputsRoutes } from './routes/inputs.ts';
import { liveRoutes } from './routes/live.ts';
import { metricsExposureWarning, metricsRoutes } from './routes/metrics.ts';
import { reloadRoutes } from './routes/reload.ts';
import { unknownIpsRoutes } from './routes/unknownIps.ts';
import { historyRoutes } from './routes/history.ts';
import { executiveRoutes } from './routes/executive.ts';
import { planRoutes } from './routes/plan.ts';
import { circuitRoutes } from './routes/circuit.ts';
import { statusRoutes } from './routes/status.ts';
import { urgentRoutes } from './routes/urgent.ts';
import { usersRoutes } from './routes/users.ts';
import { LoginLimiter, SessionStore, VerifyGate, type LoginLimits } from './sessions.ts';
import { SetupToken, setupTokenPath } from './setupToken.ts';
import { UserStore } from './users.ts';

export type { RouteInfo };
export { isMutatingRoute } from './http.ts';

export interface WebServerOptions {
  host?: string;
  port?: number;
  /** Default `<state_directory>/lqusers.toml`. */
  usersFile?: string;
  /** Built UI; default `<repo>/webui/dist`. */
  webRoot?: string;
  /** Websocket push period (default 2000 ms). */
  wsIntervalMs?: number;
  /** The live channels (lqosd's registry, which its services publish to); default: a new one. */
  channels?: ChannelRegistry;
  /** The Prometheus metrics (lqosd's, which telemetry keeps current); default: a new set. */
  metrics?: ShapingMetrics;
  /** Login throttling; default LOGIN_LIMITS (lib/web/sessions.ts). */
  loginLimits?: Partial<LoginLimits>;
}

export interface WebServer {
  close(): Promise<void>;
  /** e.g. `http://127.0.0.1:9123` */
  address: string;
  /** Every route (HEAD excluded), as registered with Fastify. */
  routes: RouteInfo[];
  /** The live channels this server pushes. */
  channels: ChannelRegistry;
}

export const DEFAULT_WEB_ROOT = resolve(import.meta.dirname, '../../webui/dist');

/** The saved web sessions, next to the users file. */
export const SESSIONS_FILE = 'web_sessions.json';

const ROUTE_GROUPS = [authRoutes, usersRoutes, statusRoutes, urgentRoutes, configRoutes, inputsRoutes, planRoutes, circuitRoutes, liveRoutes, metricsRoutes, unknownIpsRoutes, historyRoutes, executiveRoutes, reloadRoutes];

/**
 * Listens on `host`; the IPv6 wildcard `::` (upstream's `webserver_listen = ":::9123"`) on a host
 * without IPv6 (booted with ipv6.disable=1) listens on 0.0.0.0 instead, with a warning, as a
 * listener without a host would.
 */
export async function listenFallingBackToIpv4(listen: (host: string) => Promise<string>, host: string, log: Pick<WebContext['log'], 'warn'>): Promise<string> {
  try {
    return await listen(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (host !== '::' || (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL')) throw err;
    log.warn({ code: 'web-listen' }, `cannot listen on [::] (${code}: this host has no IPv6); listening on 0.0.0.0 (IPv4 only) instead`);
    return listen('0.0.0.0');
  }
}

export async function startWebServer(ctx: WebContext, opts: WebServerOptions = {}): Promise<WebServer> {
  const { app, routes, hub, channels, users, setupToken } = await buildWebApp(ctx, opts);
  // [web], or upstream's webserver_listen when [web] is absent.
  const at = webListenAddress(ctx.config());
  if (at.warning) ctx.log.warn({ code: 'web-listen' }, at.warning);
  let address: string;
  try {
    address = await listenFallingBackToIpv4((host) => app.listen({ host, port: opts.port ?? at.port }), opts.host ?? at.host, ctx.log);
  } catch (err) {
    hub.stop();
    await app.close().catch(() => undefined);
    throw err;
  }
  hub.start();
  ctx.log.info({ address, from: at.from }, `web server listening on ${address} (${at.from})`);
  const metricsWarning = metricsExposureWarning(opts.host ?? at.host, ctx.config().web.metrics_token);
  if (metricsWarning) ctx.log.warn({ code: 'metrics-token' }, metricsWarning);
  if (users.state() === 'empty') {
    const port = Number(new URL(address).port);
    setupToken.url = webUrl(opts.host ?? at.host, port, address.startsWith('https:'));
    setupToken.announce();
  }
  return {
    address,
    routes,
    channels,
    close: async () => {
      hub.stop();
      await app.close();
    },
  };
}

/** The shared parts every route group is handed. */
function webDeps(ctx: WebContext, opts: WebServerOptions): WebDeps {
  const usersFile = opts.usersFile ?? statePaths(ctx.config().state_directory).users;
  const channels = opts.channels ?? new ChannelRegistry();
  channels.register('urgent', () => urgentPayload(ctx));
  channels.register('scheduler', () => ctx.scheduler.status());
  channels.register('status', () => statusPayload(ctx));
  let writeChain: Promise<unknown> = Promise.resolve();
  return {
    ctx,
    users: new UserStore(usersFile, ctx.log),
    usersFile,
    // Next to the users file: sessions survive an lqosd restart (hashed ids only, mode 0600).
    sessions: new SessionStore(undefined, undefined, undefined, { path: join(dirname(usersFile), SESSIONS_FILE), log: ctx.log }),
    limiter: new LoginLimiter(opts.loginLimits),
    gate: new VerifyGate(),
    setupToken: new SetupToken(setupTokenPath(usersFile), ctx.log),
    channels,
    hub: new ChannelHub(channels, ctx.log, opts.wsIntervalMs ?? 2000),
    metrics: opts.metrics ?? createShapingMetrics(),
    serialized: <T>(fn: () => Promise<T> | T): Promise<T> => {
      const run = writeChain.then(fn);
      writeChain = run.catch(() => undefined);
      return run;
    },
  };
}

/** Builds the Fastify app without listening (exported for tests and embedding). */
export async function buildWebApp(ctx: WebContext, opts: WebServerOptions = {}) {
  const webRoot = opts.webRoot ?? DEFAULT_WEB_ROOT;
  const d = webDeps(ctx, opts);
  const routes: RouteInfo[] = [];
  const { trust_proxy, tls_cert_file, tls_key_file } = ctx.config().web;
  // [web] tls_cert_file + tls_key_file: HTTPS (clear errors for half a pair or unreadable files).
  const tls = webTls(ctx.config());
  const app = newFastify(tls, tls_cert_file, tls_key_file, {
    loggerInstance: ctx.log.child({ component: 'web' }) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // A reverse proxy on this host: req.ip / req.protocol follow its X-Forwarded-For / -Proto.
    trustProxy: trust_proxy ? 'loopback' : false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });
  recordRoutes(app, routes);
  await app.register(fastifyCookie);
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
  installErrorsAndHeaders(app, () => hasWebRoot(webRoot));
  const bindAddress = opts.host ?? webListenAddress(ctx.config()).host;
  installTransportGuards(app, new HostAllowList({ config: () => ({ bindAddress, allowedHosts: ctx.config().web.allowed_hosts }) }));
  installAccessControl(app, d.users, d.sessions);
  // Pending session changes are written when the app closes, and no save timer outlives it.
  app.addHook('onClose', async () => d.sessions.flush());
  // First run: the setup token exists before anyone can ask for it (startWebServer logs where).
  const usersState = d.users.state();
  if (usersState === 'empty') d.setupToken.prepare();
  else if (usersState === 'ready' && existsSync(d.setupToken.path)) {
    // Left over from before the first user (e.g. made with lqusers by an older version): a token
    // lives only while no users file exists, and a new one is written if it is ever removed.
    d.setupToken.consume();
    ctx.log.info({ code: 'web-first-run', tokenFile: d.setupToken.path }, `removed the first-run setup token ${d.setupToken.path}: web UI users exist`);
  }
  for (const group of ROUTE_GROUPS) await app.register(group, d);
  await serveUi(app, webRoot);
  await app.ready();
  return { app: app as FastifyInstance, routes, hub: d.hub, channels: d.channels, users: d.users, sessions: d.sessions, limiter: d.limiter, gate: d.gate, setupToken: d.setupToken };
}

/** Fastify, over HTTPS when `tls` is set (a certificate or key Node cannot use is named in the error). */
function newFastify(tls: ReturnType<typeof webTls>, certFile: string, keyFile: string, options: FastifyServerOptions): FastifyInstance {
  if (!tls) return Fastify(options) as unknown as FastifyInstance;
  try {
    return Fastify({ ...options, https: tls } as FastifyHttpsOptions<HttpsServer>) as unknown as FastifyInstance;
  } catch (err) {
    throw new WebTlsError(
      `[web] tls_cert_file = "${certFile}" / tls_key_file = "${keyFile}" cannot be used for HTTPS (${(err as Error).message}); they must be a PEM certificate (chain) and its matching PEM private key.`,
    );
  }
}

/** The built single-page UI, or a page saying how to build it. */
async function serveUi(app: FastifyInstance, webRoot: string): Promise<void> {
  if (hasWebRoot(webRoot)) {
    await app.register(fastifyStatic, { root: webRoot, prefix: '/', index: ['index.html'] });
    return;
  }
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

function hasWebRoot(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && existsSync(join(dir, 'index.html'));
  } catch {
    return false;
  }
}
