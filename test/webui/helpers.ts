/**
 * The web UI browser tests' harness: a small ISP with realistic subscriber data (everything privacy
 * mode must hide) served by lqosd's web server on test/support's fake daemon context, with the
 * built UI.
 */
import type { Page } from 'playwright-core';
import { bodyText, type Browser, DIST, ensureBuilt, launchBrowser } from '../support/browser.ts';
import { webConfig } from '../support/configs.ts';
import { ADMIN, login, seedUsers } from '../support/users.ts';
import { startWebHarness, type WebHarness } from '../support/web.ts';

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

export type UiHarness = WebHarness;

/**
 * Builds the UI if needed and serves it with the dataset; the scheduler reports healthy, UISP is
 * enabled with `integration`; `extraConfig` is appended to lqos.conf (more tables).
 */
export async function startUiHarness(opts: { integration?: boolean; extraConfig?: string } = {}): Promise<UiHarness> {
  ensureBuilt();
  const h = await startWebHarness({
    prefix: 'lqos-webui-',
    config: (dir) => {
      const text = webConfig(dir, opts.extraConfig);
      return opts.integration ? text.replace('enable_uisp = false', 'enable_uisp = true') : text;
    },
    devices: devicesCsv(),
    network: `${JSON.stringify(NETWORK, null, 2)}\n`,
    shaping: {
      lastApply: { at: new Date().toISOString(), mode: 'full', commands: 42, seconds: 0.31 },
      leafFallbacks: { cake: 'fq_codel' },
      xdp: [{ interface: 'eth1', role: 'download', mode: 'native', program: 'lqos_xdp_nometa' }, { interface: 'eth0', role: 'upload', mode: 'generic', program: 'lqos_xdp_nometa' }],
      overrides: {
        at: new Date(Date.now() - 120_000).toISOString(),
        file: '/opt/libreqos/src/lqos_overrides.json',
        changes: ['circuit 1001: Download Max Mbps = 77 (1 row(s))', 'node "Tower_North": download 900 / upload (unchanged) Mbps'],
        changeCount: 2,
        warnings: ['circuit_adjustments[2] (remove_circuit): no circuit "9999" in /opt/libreqos/src/ShapedDevices.csv'],
        warningCount: 1,
      },
    },
    startedAt: new Date(Date.now() - 3_600_000),
    webRoot: DIST,
    wsIntervalMs: 300,
  });
  h.ctx.scheduler.heartbeat('idle');
  h.ctx.scheduler.success();
  return h;
}

/** Seeds the admin and viewer accounts and returns a fresh Chromium logged in as the admin. */
export async function browserAsAdmin(h: UiHarness): Promise<Browser> {
  await seedUsers(h);
  const b = await launchBrowser();
  await login(b.page, h.base, ADMIN);
  return b;
}

/** Closes what a browser test started (either may be missing when `before` failed) and its channel stand-ins. */
export async function closeUi(b: Browser | undefined, h: UiHarness | undefined, unregister: (() => void)[] = []): Promise<void> {
  await b?.close();
  await h?.close();
  for (const off of unregister) off();
}

/** The dataset strings found in the page text. */
export async function leakedPii(page: Page): Promise<string[]> {
  const text = await bodyText(page);
  return PII.filter((s) => text.includes(s));
}
