/**
 * Browser tests of the web UI: builds webui/dist when it is older than its sources, starts lqosd's web
 * server on a fake DaemonContext with a realistic applied plan, and drives Debian's chromium through
 * playwright-core (never a downloaded browser).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config/load.ts';
import type { LqosConfig } from '../../lib/config/schema.ts';
import type { DaemonContext, ShapingStatus } from '../../lib/daemon/context.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { runPipeline } from '../../lib/pipeline.ts';
import { planConfigFromLqos } from '../../lib/plan/planConfig.ts';
import { startWebServer, type WebServer } from '../../lib/web/server.ts';
import { Client, configText, FakeScheduler, FakeUrgentStore } from '../web/helpers.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const WEBUI = join(ROOT, 'webui');
export const DIST = join(WEBUI, 'dist');
export const SHOTS = join(ROOT, 'test-output', 'webui');
export const CHROMIUM = '/usr/bin/chromium';

// ---------------------------------------------------------------------------------------------
// Build

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const e of readdirSync(path)) max = Math.max(max, newestMtime(join(path, e)));
  return max;
}

/** Builds webui/dist unless it is newer than every source file (one build at a time). */
export function ensureBuilt(): void {
  const sources = [join(WEBUI, 'src'), join(WEBUI, 'index.html'), join(WEBUI, 'vite.config.ts')];
  const lock = join(tmpdir(), 'lqos-webui-build.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test process builds; a lock older than 2 min is stale.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 120_000 || Date.now() > deadline) rmSync(lock, { recursive: true, force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    const built = join(DIST, 'index.html');
    const srcTime = Math.max(...sources.map(newestMtime));
    if (existsSync(built) && statSync(built).mtimeMs > srcTime && existsSync(join(DIST, '.vite', 'manifest.json'))) return;
    execFileSync('npx', ['vite', 'build', '--config', 'webui/vite.config.ts'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Dataset: a small ISP with realistic subscriber data (everything privacy mode must hide)

export interface Subscriber {
  circuitId: string;
  name: string;
  address: string;
  parent: string;
  rates: [number, number, number, number];
  devices: { id: string; name: string; mac: string; ipv4: string; ipv6: string }[];
}

export const SUBSCRIBERS: Subscriber[] = [
  {
    circuitId: 'c-1001',
    name: 'Maria Lopez',
    address: '1423 Oak Street, Springfield',
    parent: 'Tower_North',
    rates: [10, 2, 100, 20],
    devices: [{ id: 'd-1001', name: 'Maria Lopez CPE', mac: '02:1a:2b:3c:4d:01', ipv4: '100.64.10.11', ipv6: '2001:db8:10::/56' }],
  },
  {
    circuitId: 'c-1002',
    name: 'Jonathan Whitaker',
    address: '77 Harbor View Road',
    parent: 'Tower_North',
    rates: [25, 5, 250, 50],
    devices: [
      { id: 'd-1002', name: 'Whitaker router', mac: '02:1a:2b:3c:4d:02', ipv4: '100.64.10.12', ipv6: '' },
      { id: 'd-1003', name: 'Whitaker office AP', mac: '02:1a:2b:3c:4d:03', ipv4: '100.64.10.13', ipv6: '' },
    ],
  },
  {
    circuitId: 'c-1003',
    name: 'Priya Raman',
    address: '9 Mill Lane, Riverside',
    parent: 'AP_River_1',
    rates: [5, 1, 50, 10],
    devices: [{ id: 'd-1004', name: 'Raman home', mac: '02:1a:2b:3c:4d:04', ipv4: '100.64.20.21', ipv6: '2001:db8:20::/56' }],
  },
  {
    circuitId: 'c-1004',
    name: 'Green Valley Bakery',
    address: '310 Market Square',
    parent: 'Tower_South',
    rates: [20, 10, 500, 100],
    devices: [{ id: 'd-1005', name: 'Bakery POS', mac: '02:1a:2b:3c:4d:05', ipv4: '100.64.30.31', ipv6: '' }],
  },
];

/** Every string privacy mode must keep out of the page text. */
export const PII: string[] = [
  ...SUBSCRIBERS.flatMap((s) => [s.name, s.address, ...s.devices.flatMap((d) => [d.name, d.mac, d.ipv4, ...(d.ipv6 ? [d.ipv6.split('/')[0]] : [])])]),
  'Lopez',
  'Whitaker',
  'Raman',
  'Oak Street',
  '100.64.',
  '2001:db8:',
];

/** Sites with coordinates (the Site Map draws them); Riverside has none (listed below the map). */
export const NETWORK = {
  Downtown: {
    downloadBandwidthMbps: 1000,
    uploadBandwidthMbps: 500,
    type: 'site',
    latitude: 39.7817,
    longitude: -89.6501,
    children: {
      Tower_North: { downloadBandwidthMbps: 400, uploadBandwidthMbps: 200, type: 'site', latitude: 39.86, longitude: -89.64 },
      Tower_South: { downloadBandwidthMbps: 600, uploadBandwidthMbps: 300, type: 'site', latitude: 39.7, longitude: -89.67 },
    },
  },
  Riverside: {
    downloadBandwidthMbps: 500,
    uploadBandwidthMbps: 250,
    type: 'site',
    children: { AP_River_1: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100, type: 'ap', latitude: 39.81, longitude: -89.42 } },
  },
};

/** Node names: privacy mode hides them on the Site Map and CPU pages. */
export const SITE_NAMES = ['Downtown', 'Tower_North', 'Tower_South', 'Riverside', 'AP_River_1'];

export function devicesCsv(subs: Subscriber[] = SUBSCRIBERS): string {
  const lines = ['Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment'];
  for (const s of subs) {
    for (const d of s.devices) {
      lines.push([s.circuitId, s.name, d.id, d.name, s.parent, d.mac, d.ipv4, d.ipv6, ...s.rates, `"${s.address}"`].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Server

export interface UiHarness {
  dir: string;
  base: string;
  ctx: DaemonContext & { urgent: FakeUrgentStore; scheduler: FakeScheduler };
  server: WebServer;
  configPath: string;
  devicesPath: string;
  shaping: ShapingStatus;
  close(): Promise<void>;
}

function buildPlan(config: LqosConfig, dir: string): ShapingPlan {
  const r = runPipeline({
    devicesText: readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'),
    devicesFile: 'ShapedDevices.csv',
    networkText: readFileSync(join(dir, 'network.json'), 'utf8'),
    networkFile: 'network.json',
    config: planConfigFromLqos(config, { download: 'eth1', upload: 'eth0', onAStick: false }, 2),
  });
  if (!r.ok) throw new Error(`test plan failed: ${JSON.stringify(r).slice(0, 500)}`);
  return r.plan;
}

export async function startUiHarness(opts: { integration?: boolean } = {}): Promise<UiHarness> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'lqos-webui-'));
  const configPath = join(dir, 'lqos.conf');
  let text = configText(dir);
  if (opts.integration) text = text.replace('enable_uisp = false', 'enable_uisp = true');
  writeFileSync(configPath, text);
  writeFileSync(join(dir, 'ShapedDevices.csv'), devicesCsv());
  writeFileSync(join(dir, 'network.json'), `${JSON.stringify(NETWORK, null, 2)}\n`);
  let config = loadConfig({ path: configPath }).config;
  const plan = buildPlan(config, dir);
  const shaping: ShapingStatus = {
    lastApply: { at: new Date().toISOString(), mode: 'full', commands: 42, seconds: 0.31 },
    leafFallbacks: { cake: 'fq_codel' },
  };
  const ctx = {
    log: pino({ level: 'silent' }),
    configPath,
    config: () => config,
    reloadConfig: async () => {
      config = loadConfig({ path: configPath }).config;
    },
    urgent: new FakeUrgentStore(),
    scheduler: new FakeScheduler(),
    appliedPlan: () => plan,
    shapingStatus: () => shaping,
    startedAt: new Date(Date.now() - 3_600_000),
    version: '0.1.0-test',
  };
  ctx.scheduler.heartbeat('idle');
  ctx.scheduler.success();
  const server = await startWebServer(ctx, { host: '127.0.0.1', port: 0, webRoot: DIST, wsIntervalMs: 300 });
  return {
    dir,
    base: server.address,
    ctx,
    server,
    configPath,
    devicesPath: join(dir, 'ShapedDevices.csv'),
    shaping,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const ADMIN = { username: 'admin', password: 'correct-horse-1' };
export const VIEWER = { username: 'viewer', password: 'viewer-pass-1' };

/** Creates the first admin and a read-only user through the API. */
export async function seedUsers(h: UiHarness): Promise<Client> {
  const admin = new Client(h.base);
  const r = await admin.post('/api/auth/first-run', ADMIN);
  if (r.status !== 201) throw new Error(`first-run failed: ${r.status} ${r.text}`);
  const r2 = await admin.post('/api/users', { ...VIEWER, role: 'read_only' });
  if (r2.status !== 201) throw new Error(`add user failed: ${r2.status} ${r2.text}`);
  return admin;
}

// ---------------------------------------------------------------------------------------------
// Browser

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions in the page. */
  errors: string[];
  close(): Promise<void>;
}

/** Debian's chromium, headless, with a fresh profile. */
export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'lqos-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function login(page: Page, base: string, who: { username: string; password: string }): Promise<void> {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', who.username);
  await page.fill('input[name=password]', who.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=current-user]');
}

export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export async function bodyText(page: Page): Promise<string> {
  return page.evaluate(() => document.body.innerText);
}

/** The dataset strings found in the page text. */
export async function leakedPii(page: Page): Promise<string[]> {
  const text = await bodyText(page);
  return PII.filter((s) => text.includes(s));
}
