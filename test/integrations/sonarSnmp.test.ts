// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Sonar SNMP AP discovery (`[sonar_integration] snmp_community`) against Debian's real `snmpd`:
 * one agent per AP on a loopback address (127.0.0.2 AirMax, 127.0.0.3 LTU; same free UDP port), each
 * with its own config in a temp dir, a small view (system + Ubiquiti's enterprise subtree), `sysName`
 * and a `pass` script serving the station-MAC table the test chooses. The Sonar GraphQL side is the fake
 * server of sonar.test.ts with sites whose AP items carry those loopback addresses.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { AIRMAX_STATION_MACS, LTU_STATION_MACS, run } from '../../lib/integrations/sonar.ts';
import { macFromValue, mapLimit, normaliseMac } from '../../lib/integrations/common/snmp.ts';
import { validateIntegrationOutput } from '../../lib/integrations/common/output.ts';
import { SONAR_KEY, sonarData, startFakeSonar } from '../fixtures/crm/sonar.ts';
import { captureLogger, crmConfig, tempDir, useFakeServer } from './helpers.ts';
import type { RunResult } from '../../lib/integrations/common/run.ts';

const srv = useFakeServer(startFakeSonar);

/** The agents' community, and a canary used as a wrong one: neither may appear in any log or output. */
const COMMUNITY = 'snmp-ro-Kq83zz';
const CANARY = 'SNMP-CANARY-5d1e77';

// ---------------------------------------------------------------------------------------------
// snmpd on loopback

/** Answers `-g OID` / `-n OID` from a JSON list of [oid, type, value] (snmpd's `pass` protocol). */
const PASS_SCRIPT = `import json, sys
rows = json.load(open(sys.argv[1]))
key = lambda o: [int(x) for x in o.strip('.').split('.')]
rows.sort(key=lambda r: key(r[0]))
mode, oid = sys.argv[2], sys.argv[3]
for o, t, v in rows:
    if (mode == '-g' and key(o) == key(oid)) or (mode == '-n' and key(o) > key(oid)):
        print(o); print(t); print(v); break
`;

interface AgentSpec {
  host: string;
  sysName: string;
  /** Station rows: table OID → values (`octet`: 6 hex bytes, `string`: text). */
  rows: { oid: string; type: 'octet' | 'string'; value: string }[];
  /** Answer SNMPv1 only (v2c requests with the right community are dropped). */
  v1Only?: boolean;
}

interface Agent {
  host: string;
  proc: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/** A UDP port free on every host (snmpd binds it right after). */
async function freePort(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = createSocket('udp4');
    await new Promise<void>((res, rej) => first.once('error', rej).bind(0, hosts[0], res));
    const port = first.address().port;
    const others: Socket[] = [];
    let ok = true;
    for (const h of hosts.slice(1)) {
      const s = createSocket('udp4');
      others.push(s);
      ok = await new Promise<boolean>((res) => s.once('error', () => res(false)).bind(port, h, () => res(true)));
      if (!ok) break;
    }
    for (const s of [first, ...others]) s.close();
    if (ok) return port;
  }
  throw new Error(`no UDP port free on all of ${hosts.join(', ')} after 20 tries`);
}

/** MAC text → the row of a station table: index ifIndex 5 + the MAC's octets (as airOS does). */
const stationRow = (table: string, mac: string, type: 'octet' | 'string' = 'octet', text?: string) => {
  const octets = normaliseMac(mac)!.split(':');
  return { oid: `.${table}.5.${octets.map((o) => parseInt(o, 16)).join('.')}`, type, value: type === 'octet' ? octets.join(' ') : (text ?? mac) };
};

async function startSnmpd(spec: AgentSpec, port: number, root: string): Promise<Agent> {
  const dir = join(root, spec.host);
  mkdirSync(join(dir, 'state'), { recursive: true });
  mkdirSync(join(dir, 'mibs'), { recursive: true });
  writeFileSync(join(dir, 'pass.py'), PASS_SCRIPT);
  writeFileSync(join(dir, 'rows.json'), JSON.stringify(spec.rows.map((r) => [r.oid, r.type, r.value])));
  const access = spec.v1Only
    ? [`com2sec apsec 127.0.0.0/8 ${COMMUNITY}`, 'group apgrp v1 apsec', 'access apgrp "" any noauth exact apview none none']
    : [`rocommunity ${COMMUNITY} 127.0.0.0/8 -V apview`];
  const conf = [
    '[snmp] persistentDir ' + join(dir, 'state'),
    'view apview included .1.3.6.1.2.1.1',
    'view apview included .1.3.6.1.4.1.41112',
    ...access,
    `sysName ${spec.sysName}`,
    `pass .1.3.6.1.4.1.41112 /usr/bin/python3 ${join(dir, 'pass.py')} ${join(dir, 'rows.json')}`,
  ].join('\n');
  writeFileSync(join(dir, 'snmpd.conf'), `${conf}\n`);
  const proc = spawn('snmpd', ['-f', '-Lo', '-C', '-c', join(dir, 'snmpd.conf'), `udp:${spec.host}:${port}`], {
    env: { ...process.env, SNMP_PERSISTENT_DIR: join(dir, 'state'), MIBDIRS: join(dir, 'mibs'), MIBS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      if (/NET-SNMP version/.test(out)) resolve();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('error', (e) => reject(new Error(`snmpd could not start (is the Debian package snmpd installed? scripts/setup installs it): ${e.message}`)));
    proc.once('exit', (code) => reject(new Error(`snmpd for ${spec.host}:${port} exited with ${code} before it was ready:\n${out.slice(-2000)}`)));
  });
  return {
    host: spec.host,
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Sonar data: the fixture's accounts, sites whose AP items live at our agents' addresses

const NORTH = '127.0.0.2';
const SOUTH = '127.0.0.3';
const BLACKHOLE = '127.0.0.4';

function snmpSonarData() {
  const d = sonarData();
  const list = (items: unknown[]) => ({ entities: items });
  const ips = (...s: string[]) => list(s.map((subnet) => ({ subnet })));
  const item = (id: number, modelId: number, model: string, subnets: string[]) => ({ id, inventory_model: { id: modelId, name: model }, inventory_model_field_data: list([]), ip_assignments: ips(...subnets) });
  d.sites = [
    { id: 10, name: 'North Tower', inventory_items: list([item(901, 41, 'Rocket 5AC', [`${NORTH}/32`]), item(902, 99, 'Switch', ['10.0.0.6/32'])]) },
    // The item's IP is given with its subnet's prefix length (the host part is asked).
    { id: 11, name: 'South Tower', inventory_items: list([item(903, 42, 'LTU Rocket', [`${SOUTH}/24`])]) },
    { id: 12, name: 'Empty Hill', inventory_items: list([item(904, 41, 'Rocket 5AC', [])]) },
  ];
  return d;
}

/** Adds an AP at the black-hole address (a socket that counts datagrams and never answers). */
function withBlackholeAp() {
  const d = snmpSonarData();
  d.sites.push({ id: 14, name: 'Dark Ridge', inventory_items: { entities: [{ id: 906, inventory_model: { id: 41, name: 'Rocket Prism' }, inventory_model_field_data: { entities: [] }, ip_assignments: { entities: [{ subnet: `${BLACKHOLE}/32` }] } }] } });
  return d;
}

// Stations: North (AirMax, octets) has Acct's radio in lower case and Beta Farm's *second* MAC; South
// (LTU, text in another format, SNMPv1 only) has Beta Farm's first MAC → Beta Farm goes South.
const AGENTS: AgentSpec[] = [
  {
    host: NORTH,
    sysName: 'north-ap-1',
    rows: [stationRow(AIRMAX_STATION_MACS, 'aa:bb:cc:dd:ee:01'), stationRow(AIRMAX_STATION_MACS, '00:00:5e:00:53:01'), stationRow(AIRMAX_STATION_MACS, '02:00:00:00:00:99')],
  },
  { host: SOUTH, sysName: 'south-ltu', v1Only: true, rows: [stationRow(LTU_STATION_MACS, 'AA:BB:CC:DD:EE:02', 'string', 'aa-bb-cc-dd-ee-02')] },
];

const conf = (community: string) =>
  crmConfig(`
[queues]
generated_pn_download_mbps = 2000
generated_pn_upload_mbps = 1000
[uisp_integration]
bandwidth_overhead_factor = 1.0
[sonar_integration]
enable_sonar = true
sonar_api_url = "${srv.url}/api"
sonar_api_key = "${SONAR_KEY}"
snmp_community = "${community}"
airmax_model_ids = ["41"]
ltu_model_ids = ["42"]
active_status_ids = ["1", "5"]
recurring_service_rates = [{ service_name = "Residential 50", download_mbps = 50, upload_mbps = 10 }]
`);

interface Outcome {
  r: RunResult;
  lines: string[];
  net: Record<string, { id?: string; children?: Record<string, { id?: string }> }>;
  /** Circuit ID → Parent Node (first row of the circuit). */
  parents: Record<string, string>;
  files: string;
}

let port = 0;

async function runSonar(t: { after(fn: () => void): void }, community: string, snmp: { timeoutMs: number; retries: number }): Promise<Outcome> {
  const dir = tempDir(t);
  const log = captureLogger();
  const r = await run(conf(community), { log, outDir: dir, http: { timeoutMs: 5000, retries: 0 } }, { snmp: { ...snmp, port } });
  const netText = readFileSync(join(dir, 'network.json'), 'utf8');
  const csv = readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8');
  const errors = validateIntegrationOutput(netText, csv).filter((i) => i.severity === 'error');
  assert.deepEqual(errors, [], 'the produced pair must pass validateInputs');
  const rows = parse(csv, { columns: true }) as Record<string, string>[];
  assert.ok(rows.length > 0, 'ShapedDevices.csv has no rows');
  const parents: Record<string, string> = {};
  for (const row of rows) parents[row['Circuit ID']] ??= row['Parent Node'];
  return { r, lines: log.lines, net: JSON.parse(netText), parents, files: netText + csv };
}

/** No secret anywhere: log lines, warnings, the summary, the written files. */
function assertNoSecrets(o: Outcome): void {
  for (const secret of [COMMUNITY, CANARY]) {
    for (const l of o.lines) assert.ok(!l.includes(secret), `a log line leaks the SNMP community: ${l}`);
    assert.ok(!JSON.stringify(o.r).includes(secret), 'the run summary leaks the SNMP community');
    assert.ok(!o.files.includes(secret), 'the written files leak the SNMP community');
  }
}

const notFound = (o: Outcome) => o.r.warnings.filter((w) => /not found via SNMP/.test(w));

describe('Sonar SNMP AP discovery against real snmpd', () => {
  const agents: Agent[] = [];
  const root = mkdtempSync(join(tmpdir(), 'lqos-snmpd-'));
  before(async () => {
    port = await freePort([NORTH, SOUTH, BLACKHOLE]);
    for (const spec of AGENTS) agents.push(await startSnmpd(spec, port, root));
    srv.sonar.data = snmpSonarData;
  });
  after(async () => {
    for (const a of agents) await a.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('parents each subscriber under the AP whose station list holds its MAC, named by sysName (v2c and v1-only agents)', async (t) => {
    const o = await runSonar(t, COMMUNITY, { timeoutMs: 2000, retries: 1 });
    assert.deepEqual(notFound(o), [], `no AP may be missing: ${o.r.warnings.join(' | ')}`);
    assert.equal(o.r.aps, 2);
    // network.json: each site holds its AP, named by SNMP, with the Sonar id.
    assert.deepEqual(Object.keys(o.net).sort(), ['North Tower', 'South Tower']);
    assert.deepEqual(Object.keys(o.net['North Tower'].children ?? {}), ['north-ap-1']);
    assert.equal(o.net['North Tower'].children?.['north-ap-1'].id, 'sonar:ap:901');
    assert.deepEqual(Object.keys(o.net['South Tower'].children ?? {}), ['south-ltu']);
    assert.equal(o.net['South Tower'].children?.['south-ltu'].id, 'sonar:ap:903');
    // Acct (radio AA:BB:CC:DD:EE:01 in Sonar, aa bb … as octets over SNMP) → North;
    // Beta Farm: first device MAC …:EE:02 is South's (LTU text aa-bb-…), its later MAC is North's → South.
    assert.equal(o.parents['sonar:account:1001'], 'north-ap-1', 'Acct (Sonar MAC AA:BB:CC:DD:EE:01) must be under the AP whose table lists aa bb cc dd ee 01');
    assert.equal(o.parents['sonar:account:1002'], 'south-ltu', 'Beta Farm must be under the AP listing its first matching device MAC (…:EE:02, South)');
    // No MAC → top level.
    assert.equal(o.parents['sonar:account:1003'], '');
    assert.equal(o.parents['sonar:account:1008'], '');
    // North answered v2c; South drops v2c and answered v1.
    assert.ok(o.lines.some((l) => /inventory item 901, 127\.0\.0\.2, site "North Tower"\) answered SNMPv2c as "north-ap-1" with 3 stations/.test(l)), o.lines.join('\n'));
    assert.ok(o.lines.some((l) => /inventory item 903, 127\.0\.0\.3, site "South Tower"\) answered SNMPv1 as "south-ltu" with 1 stations/.test(l)), o.lines.join('\n'));
    assertNoSecrets(o);
  });

  it('wrong community → each AP "not found via SNMP" (named, community never shown), circuits top level', async (t) => {
    const o = await runSonar(t, CANARY, { timeoutMs: 300, retries: 1 });
    const w = notFound(o);
    assert.equal(w.length, 2, `expected one warning per AP: ${o.r.warnings.join(' | ')}`);
    assert.match(w[0], /^AP "Rocket 5AC" \(inventory item 901, 127\.0\.0\.2, site "North Tower"\) not found via SNMP: v2c: no answer \(2 attempts of 300 ms\); v1: no answer \(2 attempts of 300 ms\)\. Check sonar_integration\.snmp_community/);
    assert.match(w[1], /^AP "LTU Rocket" \(inventory item 903, 127\.0\.0\.3, site "South Tower"\) not found via SNMP/);
    assert.equal(o.r.aps, 0);
    // Sites stay (childless); every circuit falls back to the top level.
    assert.deepEqual(Object.keys(o.net).sort(), ['North Tower', 'South Tower']);
    assert.equal(o.net['North Tower'].children, undefined);
    assert.equal(o.parents['sonar:account:1001'], '');
    assert.equal(o.parents['sonar:account:1002'], '');
    assertNoSecrets(o);
  });

  it('a silent AP (its snmpd stopped) → warning naming it; its subscribers top level, the other AP still used', async (t) => {
    const north = agents.find((a) => a.host === NORTH)!;
    assert.ok(north.proc.kill('SIGSTOP'), 'could not stop the North snmpd');
    t.after(() => north.proc.kill('SIGCONT'));
    const o = await runSonar(t, COMMUNITY, { timeoutMs: 1000, retries: 1 });
    const w = notFound(o);
    assert.equal(w.length, 1, o.r.warnings.join(' | '));
    assert.match(w[0], /^AP "Rocket 5AC" \(inventory item 901, 127\.0\.0\.2, site "North Tower"\) not found via SNMP: v2c: no answer \(2 attempts of 1000 ms\); v1: no answer/);
    assert.match(w[0], /the AP is not exported and its subscribers are top level$/);
    assert.equal(o.r.aps, 1);
    assert.equal(o.parents['sonar:account:1001'], '');
    assert.equal(o.parents['sonar:account:1002'], 'south-ltu', 'Beta Farm must stay under the AP that answered (South)');
    assertNoSecrets(o);
  });

  it('a silent AP gets exactly retries+1 requests per version: v2c first, then v1', async (t) => {
    const hole = createSocket('udp4');
    const versions: number[] = [];
    hole.on('message', (m) => {
      // SEQUENCE { version INTEGER, community, pdu }: short or long BER length form.
      const at = (m[1] & 0x80) === 0 ? 2 : 2 + (m[1] & 0x7f);
      assert.equal(m[at], 0x02, 'not an SNMP message');
      versions.push(m[at + 2]);
    });
    await new Promise<void>((res) => hole.bind(port, BLACKHOLE, res));
    t.after(() => hole.close());
    srv.sonar.data = withBlackholeAp;
    t.after(() => (srv.sonar.data = snmpSonarData));
    const o = await runSonar(t, COMMUNITY, { timeoutMs: 300, retries: 2 });
    // SNMP version field: 1 = v2c, 0 = v1.
    assert.deepEqual(versions, [1, 1, 1, 0, 0, 0]);
    assert.match(notFound(o).join('\n'), /AP "Rocket Prism" \(inventory item 906, 127\.0\.0\.4, site "Dark Ridge"\) not found via SNMP: v2c: no answer \(3 attempts of 300 ms\)/);
    assert.equal(o.r.aps, 2);
    assert.ok(o.net['Dark Ridge'], 'Dark Ridge (a site with an AP item) must be exported');
    assert.equal(o.net['Dark Ridge'].children, undefined, 'Dark Ridge must be exported without its silent AP');
  });

  it('the answers came from the snmpd agents (each logged requests from this host)', () => {
    assert.equal(agents.length, 2);
    for (const a of agents) assert.match(a.output(), /Connection from UDP: \[127\.0\.0\.1\]:\d+->\[127\.0\.0\.[23]\]/, `${a.host} saw no SNMP request:\n${a.output().slice(-500)}`);
  });
});

describe('SNMP helpers', () => {
  it('normalises MACs from octets and text forms', () => {
    assert.equal(macFromValue(Buffer.from([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0x01])), 'aa:bb:cc:0d:ee:01');
    assert.equal(macFromValue(Buffer.from('AA-BB-CC-DD-EE-02')), 'aa:bb:cc:dd:ee:02');
    assert.equal(normaliseMac('aabb.ccdd.ee03'), 'aa:bb:cc:dd:ee:03');
    assert.equal(normaliseMac(' AA BB CC DD EE 04 '), 'aa:bb:cc:dd:ee:04');
    assert.equal(normaliseMac('AA:BB:CC:DD:EE'), undefined);
    assert.equal(macFromValue(Buffer.from([1, 2, 3])), undefined);
  });

  it('mapLimit keeps at most N jobs in flight and the input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return n * 10;
    });
    assert.deepEqual(out, [10, 20, 30, 40, 50, 60, 70]);
    assert.equal(peak, 3);
  });
});
