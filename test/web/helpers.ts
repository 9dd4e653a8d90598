/** The web server tests' harness: a small ISP (one site, one AP, two circuits) on test/support's fake daemon context. */
import { startWebHarness, type WebHarness } from '../support/web.ts';
import { webConfig } from '../support/configs.ts';
import type { Logger } from '../../lib/util/log.ts';
import type { LoginLimits } from '../../lib/web/sessions.ts';

export type Harness = WebHarness;

const NETWORK_JSON = `{
  "SiteA": {
    "downloadBandwidthMbps": 1000,
    "uploadBandwidthMbps": 500,
    "children": {
      "AP_1": { "downloadBandwidthMbps": 300, "uploadBandwidthMbps": 150 }
    }
  }
}
`;

const DEVICES_CSV = `Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment
c1,Alice,d1,Alice router,AP_1,02:00:00:00:00:01,100.64.0.1,,5,1,100,20,
c2,Bob,d2,Bob router,AP_1,02:00:00:00:00:02,100.64.0.2,2001:db8::/56,5,1,50,10,
c2,Bob,d3,Bob phone,AP_1,02:00:00:00:00:03,100.64.0.3,,5,1,50,10,
`;

export interface HarnessOptions {
  extraConfig?: string;
  webRoot?: string;
  wsIntervalMs?: number;
  /** Login throttling (default: lqosd's). */
  loginLimits?: Partial<LoginLimits>;
  /** The server's logger (default: quiet). */
  log?: Logger;
}

/** The web server on webConfig (+ `extraConfig`) and the small ISP; no built UI unless `webRoot` names one. */
function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  return startWebHarness({
    prefix: 'lqos-web-',
    config: (dir) => webConfig(dir, opts.extraConfig),
    devices: DEVICES_CSV,
    network: NETWORK_JSON,
    shaping: { lastApply: { at: new Date().toISOString(), mode: 'full', commands: 10, seconds: 0.1 } },
    startedAt: new Date(Date.now() - 5000),
    webRoot: opts.webRoot,
    wsIntervalMs: opts.wsIntervalMs,
    loginLimits: opts.loginLimits,
    log: opts.log,
  });
}

/** Runs `fn` on a fresh harness and closes it afterwards. */
export async function withHarness(fn: (h: Harness) => Promise<void>, opts: HarnessOptions = {}): Promise<void> {
  const h = await startHarness(opts);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}
