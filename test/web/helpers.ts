/**
 * A fake DaemonContext on a temp directory plus a small HTTP client with a cookie jar, for the web
 * server tests.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config/load.ts';
import type { LqosConfig } from '../../lib/config/schema.ts';
import type {
  DaemonContext,
  SchedulerStatus,
  SchedulerTracker,
  ShapingStatus,
  UrgentIssue,
  UrgentIssueInput,
  UrgentIssueStore,
} from '../../lib/daemon/context.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { runPipeline } from '../../lib/pipeline.ts';
import { planConfigFromLqos } from '../../lib/plan/planConfig.ts';
import { startWebServer, type WebServer } from '../../lib/web/server.ts';

export const SECRETS = {
  uisp: 'SECRET-TOKEN-123',
  splynxKey: 'SPLYNX-KEY-456',
  splynxSecret: 'SPLYNX-APISECRET-789',
  vispSecret: 'VISP-CLIENTSECRET-000',
  vispPassword: 'VISP-PASSWORD-111',
  license: 'LTS-LICENSE-222',
  sonar: 'SONAR-KEY-333',
  community: 'SNMP-COMMUNITY-444',
  wispgate: 'WISPGATE-TOKEN-555',
  influx: 'INFLUX-TOKEN-666',
  powercode: 'POWERCODE-KEY-777',
  netzur: 'NETZUR-KEY-888',
};

export const NETWORK_JSON = `{
  "SiteA": {
    "downloadBandwidthMbps": 1000,
    "uploadBandwidthMbps": 500,
    "children": {
      "AP_1": { "downloadBandwidthMbps": 300, "uploadBandwidthMbps": 150 }
    }
  }
}
`;

export const DEVICES_CSV = `Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment
c1,Alice,d1,Alice router,AP_1,02:00:00:00:00:01,100.64.0.1,,5,1,100,20,
c2,Bob,d2,Bob router,AP_1,02:00:00:00:00:02,100.64.0.2,2001:db8::/56,5,1,50,10,
c2,Bob,d3,Bob phone,AP_1,02:00:00:00:00:03,100.64.0.3,,5,1,50,10,
`;

export function configText(dir: string, extra = ''): string {
  return `lqos_directory = "${dir}"
state_directory = "${join(dir, 'state')}"
node_name = "test-node"

[bridge]
to_internet = "eth0"
to_network = "eth1"

[queues]
dry_run = true
override_available_queues = 2

[long_term_stats]
license_key = "${SECRETS.license}"

[uisp_integration]
enable_uisp = false
token = "${SECRETS.uisp}"
url = "https://uisp.example.net"

[splynx_integration]
enable_splynx = false
api_key = "${SECRETS.splynxKey}"
api_secret = "${SECRETS.splynxSecret}"

[netzur_integration]
api_key = "${SECRETS.netzur}"

[visp_integration]
client_id = "visp-client"
client_secret = "${SECRETS.vispSecret}"
username = "visp-user"
password = "${SECRETS.vispPassword}"

[powercode_integration]
powercode_api_key = "${SECRETS.powercode}"

[sonar_integration]
sonar_api_key = "${SECRETS.sonar}"
snmp_community = "${SECRETS.community}"

[wispgate_integration]
wispgate_api_token = "${SECRETS.wispgate}"

[influxdb]
token = "${SECRETS.influx}"
${extra}`;
}

export class FakeUrgentStore implements UrgentIssueStore {
  items: UrgentIssue[] = [];
  private next = 1;
  submit(input: UrgentIssueInput): UrgentIssue {
    const key = input.dedupeKey ?? `${input.source}:${input.code}`;
    const now = new Date().toISOString();
    const existing = this.items.find((i) => i.key === key);
    if (existing) {
      existing.count++;
      existing.lastSeen = now;
      existing.message = input.message;
      return existing;
    }
    const issue: UrgentIssue = {
      id: String(this.next++),
      key,
      source: input.source,
      severity: input.severity,
      code: input.code,
      message: input.message,
      context: input.context,
      firstSeen: now,
      lastSeen: now,
      count: 1,
      acknowledged: false,
    };
    this.items.push(issue);
    return issue;
  }
  list(): UrgentIssue[] {
    return [...this.items];
  }
  activeCount(): number {
    return this.items.filter((i) => !i.acknowledged).length;
  }
  acknowledge(id: string): boolean {
    const i = this.items.find((x) => x.id === id);
    if (!i) return false;
    i.acknowledged = true;
    return true;
  }
  clear(id?: string): number {
    const before = this.items.length;
    this.items = id === undefined ? [] : this.items.filter((x) => x.id !== id);
    return before - this.items.length;
  }
  resolveKey(key: string): boolean {
    const before = this.items.length;
    this.items = this.items.filter((x) => x.key !== key);
    return before !== this.items.length;
  }
}

export class FakeScheduler implements SchedulerTracker {
  st: SchedulerStatus = { health: 'unknown', phase: 'idle' };
  heartbeat(phase: string, nextRun?: string): void {
    this.st = { ...this.st, health: 'running', phase, lastHeartbeat: new Date().toISOString(), nextRun };
  }
  success(at = new Date().toISOString()): void {
    this.st = { ...this.st, health: 'healthy', lastSuccess: at };
  }
  error(e: { message: string; integration?: string; preview?: string; logFile?: string }): void {
    this.st = { ...this.st, health: 'error', lastError: { at: new Date().toISOString(), ...e } };
  }
  status(): SchedulerStatus {
    return this.st;
  }
}

export interface Harness {
  dir: string;
  ctx: DaemonContext & { urgent: FakeUrgentStore; scheduler: FakeScheduler };
  server: WebServer;
  base: string;
  usersFile: string;
  devicesPath: string;
  networkPath: string;
  configPath: string;
  reloads: number;
  close(): Promise<void>;
}

function buildPlan(config: LqosConfig, dir: string): ShapingPlan | undefined {
  const r = runPipeline({
    devicesText: readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'),
    devicesFile: 'ShapedDevices.csv',
    networkText: readFileSync(join(dir, 'network.json'), 'utf8'),
    networkFile: 'network.json',
    config: planConfigFromLqos(config, { download: 'eth1', upload: 'eth0', onAStick: false }, 2),
  });
  return r.ok ? r.plan : undefined;
}

export async function startHarness(opts: { extraConfig?: string; webRoot?: string; wsIntervalMs?: number } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-web-'));
  const configPath = join(dir, 'lqos.conf');
  writeFileSync(configPath, configText(dir, opts.extraConfig));
  writeFileSync(join(dir, 'ShapedDevices.csv'), DEVICES_CSV);
  writeFileSync(join(dir, 'network.json'), NETWORK_JSON);
  let config = loadConfig({ path: configPath }).config;
  const plan = buildPlan(config, dir);
  const shaping: ShapingStatus = { lastApply: { at: new Date().toISOString(), mode: 'full', commands: 10, seconds: 0.1 } };
  const h = { reloads: 0 } as Harness;
  const ctx = {
    log: pino({ level: 'silent' }),
    configPath,
    config: () => config,
    reloadConfig: async () => {
      config = loadConfig({ path: configPath }).config;
      h.reloads++;
    },
    urgent: new FakeUrgentStore(),
    scheduler: new FakeScheduler(),
    appliedPlan: () => plan,
    shapingStatus: () => shaping,
    startedAt: new Date(Date.now() - 5000),
    version: '0.1.0-test',
  };
  const usersFile = join(dir, 'state', 'lqusers.toml');
  const server = await startWebServer(ctx, {
    host: '127.0.0.1',
    port: 0,
    webRoot: opts.webRoot ?? join(dir, 'no-webui'),
    wsIntervalMs: opts.wsIntervalMs,
  });
  Object.assign(h, {
    dir,
    ctx,
    server,
    base: server.address,
    usersFile,
    devicesPath: join(dir, 'ShapedDevices.csv'),
    networkPath: join(dir, 'network.json'),
    configPath,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
  return h;
}

/** fetch with a cookie jar. */
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

export const ADMIN = { username: 'admin', password: 'correct-horse-1' };
export const VIEWER = { username: 'viewer', password: 'viewer-pass-1' };

/** First-run admin + a read-only user; returns logged-in clients. */
export async function setupUsers(h: Harness): Promise<{ admin: Client; viewer: Client }> {
  const admin = new Client(h.base);
  const r = await admin.post('/api/auth/first-run', ADMIN);
  if (r.status !== 201) throw new Error(`first-run failed: ${r.status} ${r.text}`);
  const r2 = await admin.post('/api/users', { ...VIEWER, role: 'read_only' });
  if (r2.status !== 201) throw new Error(`add user failed: ${r2.status} ${r2.text}`);
  const viewer = new Client(h.base);
  const r3 = await viewer.post('/api/auth/login', VIEWER);
  if (r3.status !== 200) throw new Error(`viewer login failed: ${r3.status} ${r3.text}`);
  return { admin, viewer };
}
