/**
 * lqosd's web server on a fake WebContext (./context.ts): the config and inputs in a temp
 * directory, and the plan of those inputs as the applied plan.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../lib/config/load.ts';
import type { ShapingStatus } from '../../lib/api/status.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { planConfigFromLqos } from '../../lib/plan/planConfig.ts';
import { createShapingMetrics, type ShapingMetrics } from '../../lib/telemetry/metrics.ts';
import type { ChannelRegistry } from '../../lib/web/channels.ts';
import { startWebServer, type WebServer } from '../../lib/web/server.ts';
import { setupTokenPath } from '../../lib/web/setupToken.ts';
import type { Logger } from '../../lib/util/log.ts';
import type { LoginLimits } from '../../lib/web/sessions.ts';
import { webConfig } from './configs.ts';
import { fakeContext, type FakeContext } from './context.ts';
import { buildPlan, type InputTexts } from './plan.ts';
import { tempDir } from './workspace.ts';

export interface WebHarnessOptions extends InputTexts {
  /** Temp directory prefix. */
  prefix: string;
  /** lqos.conf text for the directory (default webConfig). */
  config?: (dir: string) => string;
  /** Shaping queues of the applied plan (default 2). */
  queues?: number;
  shaping?: ShapingStatus;
  startedAt?: Date;
  /** Built UI to serve (default `<dir>/no-webui`: none). */
  webRoot?: string;
  wsIntervalMs?: number;
  /** The server's logger (default: the quiet test logger). */
  log?: Logger;
  /** Login throttling (default: lqosd's). */
  loginLimits?: Partial<LoginLimits>;
}

export interface WebHarness {
  dir: string;
  ctx: FakeContext;
  server: WebServer;
  /** The server's live channels (tests publish telemetry-like channels here). */
  channels: ChannelRegistry;
  /** The server's Prometheus metrics. */
  metrics: ShapingMetrics;
  base: string;
  plan: ShapingPlan;
  shaping: ShapingStatus;
  configPath: string;
  devicesPath: string;
  networkPath: string;
  usersFile: string;
  /** The first-run setup token file (next to the users file). */
  setupTokenFile: string;
  /** How often the web server reloaded the config. */
  reloads: number;
  close(): Promise<void>;
}

/** Writes config and inputs to a fresh directory, plans them (bridge eth1/eth0) and starts the web server on 127.0.0.1. */
export async function startWebHarness(opts: WebHarnessOptions): Promise<WebHarness> {
  const dir = tempDir(opts.prefix);
  const configPath = join(dir, 'lqos.conf');
  const devicesPath = join(dir, 'ShapedDevices.csv');
  const networkPath = join(dir, 'network.json');
  writeFileSync(configPath, (opts.config ?? webConfig)(dir));
  writeFileSync(devicesPath, opts.devices);
  writeFileSync(networkPath, opts.network);
  let config = loadConfig({ path: configPath }).config;
  const { plan } = buildPlan(opts, { config: planConfigFromLqos(config, { download: 'eth1', upload: 'eth0', onAStick: false }, opts.queues ?? 2) });
  const shaping = opts.shaping ?? {};
  const h = { reloads: 0 } as WebHarness;
  const ctx = fakeContext({
    configPath,
    config: () => config,
    reloadConfig: async () => {
      config = loadConfig({ path: configPath }).config;
      h.reloads++;
    },
    appliedPlan: () => plan,
    shapingStatus: () => shaping,
    startedAt: opts.startedAt ?? new Date(),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const metrics = createShapingMetrics();
  const server = await startWebServer(ctx, {
    host: '127.0.0.1',
    port: 0,
    webRoot: opts.webRoot ?? join(dir, 'no-webui'),
    wsIntervalMs: opts.wsIntervalMs,
    metrics,
    loginLimits: opts.loginLimits,
  });
  return Object.assign(h, {
    dir,
    ctx,
    server,
    channels: server.channels,
    metrics,
    base: server.address,
    plan,
    shaping,
    configPath,
    devicesPath,
    networkPath,
    usersFile: join(dir, 'state', 'lqusers.toml'),
    setupTokenFile: setupTokenPath(join(dir, 'state', 'lqusers.toml')),
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
