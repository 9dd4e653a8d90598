// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * MikroTik IPv6 enrichment against a fake RouterOS v7 REST server (HTTPS, its own CA): the prefixes
 * land in the written ShapedDevices.csv, the pair passes the validator, and a router that fails
 * (wrong password, untrusted certificate, plain http) is a warning naming it — never its password.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { validateIntegrationOutput } from '../../lib/integrations/common/output.ts';
import { buildIpv6Map, macFromDuid, normaliseMac, parseRouterList } from '../../lib/integrations/common/mikrotikIpv6.ts';
import { run as runNetzur } from '../../lib/integrations/netzur.ts';
import { run as runUisp } from '../../lib/integrations/uisp.ts';
import { NETZUR_KEY, NETZUR_PATH, startFakeNetzur } from '../fixtures/crm/netzur.ts';
import { ROUTEROS_PASS, ROUTEROS_USER, startFakeRouterOs } from '../fixtures/crm/routeros.ts';
import { startFakeUisp, UISP_TOKEN } from '../fixtures/crm/uisp.ts';
import { captureLogger, crmConfig, FAST_HTTP, GOLDEN_ROOT, runOpts as fastOpts, tempDir, useFakeServer } from './helpers.ts';

/** Run options with a generous timeout: TLS handshakes on a loaded 2-core machine can exceed FAST_HTTP's 250 ms. */
const runOpts = (dir: string, log = captureLogger()) => ({ ...fastOpts(dir, log), http: { ...FAST_HTTP, timeoutMs: 15_000 } });

const crm = useFakeServer(startFakeNetzur);
const ros = useFakeServer(startFakeRouterOs);
const uisp = useFakeServer(startFakeUisp);

const WRONG_PASS = 'MT-WRONG-CANARY-9f9f';

/** A router list in upstream's format (plus our rest_url / ca_file keys). */
function routerFile(dir: string, routers: Array<Record<string, string | number | boolean>>): string {
  const path = join(dir, 'mikrotik_ipv6.toml');
  const tables = routers.map((r) => `[[router]]\n${Object.entries(r).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}\n`);
  writeFileSync(path, `version = 1\n\n${tables.join('\n')}`);
  return path;
}

const conf = (routerList: string, key = 'integration_common') =>
  crmConfig(`
[uisp_integration]
exclude_sites = ["Lab"]
bandwidth_overhead_factor = 1.0
${key === 'uisp' ? 'ipv6_with_mikrotik = true' : ''}
[integration_common]
${key === 'integration_common' ? 'use_mikrotik_ipv6 = true' : ''}
[mikrotik_ipv6]
config_path = "${routerList}"
[netzur_integration]
enable_netzur = true
api_key = "${NETZUR_KEY}"
api_url = "${crm.url}${NETZUR_PATH}"
`);

const good = () => ({ name: 'core-1', host: '127.0.0.1', username: ROUTEROS_USER, password: ROUTEROS_PASS, rest_url: ros.url, ca_file: ros.caFile });

/** Circuit ID → IPv6 cell of the written CSV (one device per circuit in the Netzur fixture). */
function ipv6ByCircuit(dir: string): Record<string, string> {
  const rows = parse(readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'), { columns: true }) as Array<Record<string, string>>;
  assert.ok(rows.length > 0, 'the CSV has rows');
  return Object.fromEntries(rows.map((r) => [r['Circuit ID'], r.IPv6]));
}

function assertValid(dir: string): void {
  const issues = validateIntegrationOutput(readFileSync(join(dir, 'network.json'), 'utf8'), readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'));
  assert.deepEqual(issues.filter((i) => i.severity === 'error'), [], 'the written pair passes validateInputs');
}

describe('MikroTik IPv6 enrichment', () => {
  it('adds the delegated prefixes (lease/ARP → MAC → DUID or neighbor), a wrong password is a warning without the password', async (t) => {
    const dir = tempDir(t);
    const list = routerFile(tempDir(t), [good(), { ...good(), name: 'edge-2', password: WRONG_PASS }]);
    const log = captureLogger();
    const before = ros.requests.length;
    const r = await runNetzur(conf(list), runOpts(dir, log));
    assert.deepEqual(ipv6ByCircuit(dir), {
      'netzur_S-1': '2001:db8:a01::/56, 2001:db8:aff::/56', // by its lease's MAC (DUID-LL) and by its CRM MAC (DUID-LLT)
      'netzur_S-2': '2001:db8:100::/56', // its own only: 100.64.3.10 is ambiguous in ARP
      'netzur_S-3': '2001:db8:a03::/56', // ARP MAC → neighbor fe80::a03 → binding with a DUID-EN
      'netzur_S-8': '',
      'netzur_S-9': '2001:db8:200::1/128',
      'netzur_S-10': '', // its binding is disabled
    });
    assertValid(dir);
    const reqs = ros.requests.slice(before);
    assert.equal(reqs.length, 8, 'four tables from each of the two routers');
    assert.deepEqual([...new Set(reqs.map((q) => q.path))].sort(), ['/rest/ip/arp', '/rest/ip/dhcp-server/lease', '/rest/ipv6/dhcp-server/binding', '/rest/ipv6/neighbor']);
    const failed = r.warnings.filter((w) => w.includes('edge-2'));
    assert.equal(failed.length, 1, `one warning for edge-2, got ${JSON.stringify(r.warnings)}`);
    assert.match(failed[0], /^MikroTik IPv6: router "edge-2" \(https:\/\/127\.0\.0\.1:\d+\/?\): GET \/rest\/\S+ → 401 \(login refused: check the username and password\); its IPv6 prefixes are not added this run$/);
    assert.ok(r.warnings.some((w) => /100\.64\.3\.10/.test(w) && /more than one MAC/.test(w)), 'ambiguous IPv4 warned');
    assert.ok(log.lines.some((l) => /MikroTik IPv6: 3 prefix\(es\) added to 2 device\(s\) from 1 of 2 router\(s\)/.test(l)));
    for (const secret of [WRONG_PASS, ROUTEROS_PASS, Buffer.from(`${ROUTEROS_USER}:${WRONG_PASS}`).toString('base64')]) {
      for (const l of [...log.lines, ...r.warnings]) assert.ok(!l.includes(secret), `a log line or warning leaks a router password: ${l}`);
    }
  });

  it('uisp_integration.ipv6_with_mikrotik turns it on for any integration too', async (t) => {
    const dir = tempDir(t);
    await runNetzur(conf(routerFile(tempDir(t), [good()]), 'uisp'), runOpts(dir));
    assert.equal(ipv6ByCircuit(dir)['netzur_S-3'], '2001:db8:a03::/56');
  });

  it("UISP: prefixes pass UISP's allow_subnets rule only with an IPv6 range there (else a warning says so)", async (t) => {
    const list = routerFile(tempDir(t), [good()]);
    const uispConf = (allow: string) =>
      crmConfig(`
[ip_ranges]
allow_subnets = [${allow}]
[mikrotik_ipv6]
config_path = "${list}"
[uisp_integration]
enable_uisp = true
ipv6_with_mikrotik = true
token = "${UISP_TOKEN}"
url = "${uisp.url}"
site = "Tower"
strategy = "full"
`);
    const narrow = tempDir(t);
    const r1 = await runUisp(uispConf('"100.64.0.0/10", "192.168.0.0/16"'), runOpts(narrow));
    assert.equal(ipv6ByCircuit(narrow)['s-doe'], '');
    assert.ok(r1.warnings.some((w) => /MikroTik IPv6: 1 prefix\(es\) are outside \[ip_ranges\] allow_subnets and are dropped \(UISP/.test(w)), JSON.stringify(r1.warnings));
    const wide = tempDir(t);
    const r2 = await runUisp(uispConf('"100.64.0.0/10", "192.168.0.0/16", "2001:db8::/32"'), runOpts(wide));
    assert.equal(ipv6ByCircuit(wide)['s-doe'], '2001:db8:c01::/56');
    assert.ok(!r2.warnings.some((w) => w.includes('allow_subnets')));
    assertValid(wide);
  });

  it('an untrusted certificate (no ca_file) is a warning naming the router; the files are written without prefixes', async (t) => {
    const dir = tempDir(t);
    const { ca_file: _drop, ...noCa } = good();
    const r = await runNetzur(conf(routerFile(tempDir(t), [noCa])), runOpts(dir));
    const w = r.warnings.filter((x) => x.includes('"core-1"'));
    assert.equal(w.length, 1, JSON.stringify(r.warnings));
    assert.match(w[0], /self-signed|SELF_SIGNED|unable to verify|certificate/i);
    assert.equal(readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'), readFileSync(join(GOLDEN_ROOT, 'netzur', 'ShapedDevices.csv'), 'utf8'));
  });

  it('plain http is refused unless allowed for that router; a missing router file is a warning', async (t) => {
    const before = ros.requests.length;
    const r1 = await runNetzur(conf(routerFile(tempDir(t), [{ ...good(), rest_url: ros.url.replace('https:', 'http:') }])), runOpts(tempDir(t)));
    assert.ok(r1.warnings.some((w) => /router "core-1" .*http:\/\/, which would send the password in clear text.*allow_insecure_http = true/.test(w)), JSON.stringify(r1.warnings));
    assert.equal(ros.requests.length, before, 'nothing was sent');
    const missing = join(tempDir(t), 'nope.toml');
    const r2 = await runNetzur(conf(missing), runOpts(tempDir(t)));
    assert.ok(r2.warnings.some((w) => w.includes(`${missing} does not exist`)), JSON.stringify(r2.warnings));
    assert.ok(r2.circuits > 0);
  });

  it('rules: DUID kinds, MAC spellings, leases before ARP, bad entries skipped without the password', () => {
    assert.equal(macFromDuid('0x00030001aabbccddeeff'), 'AA:BB:CC:DD:EE:FF');
    assert.equal(macFromDuid('00:01:00:01:2a:1b:2c:3d:aa:bb:cc:dd:ee:ff'), 'AA:BB:CC:DD:EE:FF');
    assert.equal(macFromDuid('0x0002000001370102030405'), '');
    assert.equal(macFromDuid('not-hex'), '');
    assert.equal(normaliseMac('aabb.ccdd.eeff'), 'AA:BB:CC:DD:EE:FF');
    const m = buildIpv6Map([
      {
        leases: [{ address: '10.0.0.1', 'mac-address': '02:00:00:00:00:01' }],
        arp: [{ address: '10.0.0.1', 'mac-address': '02:00:00:00:00:99' }],
        bindings: [
          { address: '2001:db8:1::/56', duid: '0x00030001020000000001' },
          { address: '2001:db8:99::/56', duid: '0x00030001020000000099' },
        ],
        neighbors: [],
      },
    ]);
    assert.deepEqual([...(m.byIpv4.get('10.0.0.1') ?? [])], ['2001:db8:1::/56'], 'the lease wins over ARP');
    const warnings: string[] = [];
    const routers = parseRouterList('[[router]]\nname = "r1"\nhost = "10.0.0.1"\nusername = "u"\npassword = "SECRET-XYZ"\n[[router]]\nname = "r2"\npassword = "SECRET-XYZ"\n', 'list.toml', (w) => warnings.push(w));
    assert.deepEqual(routers.map((r) => r.baseUrl), ['https://10.0.0.1']);
    assert.deepEqual(warnings, ['MikroTik IPv6: router "r2" in list.toml: host, username missing; router skipped']);
  });

  it("upstream's binary-API keys (port, use_ssl, plaintext_login) get one warning per file naming them, never the password", () => {
    const warnings: string[] = [];
    const text =
      'version = 1\n[[router]]\nname = "core"\nhost = "10.0.0.1"\nport = 8728\nuse_ssl = false\nusername = "u"\npassword = "SECRET-XYZ"\n' +
      '[[router]]\nname = "edge"\nhost = "10.0.0.2"\nplaintext_login = true\nusername = "u"\npassword = "SECRET-XYZ"\n' +
      '[[router]]\nname = "plain"\nhost = "10.0.0.3"\nusername = "u"\npassword = "SECRET-XYZ"\n';
    const routers = parseRouterList(text, 'routers.toml', (w) => warnings.push(w));
    assert.deepEqual(routers.map((r) => r.baseUrl), ['https://10.0.0.1', 'https://10.0.0.2', 'https://10.0.0.3'], 'the keys do not skip a router');
    assert.equal(warnings.length, 1, `one warning for the file, got ${JSON.stringify(warnings)}`);
    assert.match(warnings[0], /^MikroTik IPv6: port, use_ssl, plaintext_login in routers\.toml \(router "core", "edge"\) belong to RouterOS's binary API and are not used/);
    assert.match(warnings[0], /rest_url/);
    assert.ok(!warnings[0].includes('SECRET-XYZ'));
    const quiet: string[] = [];
    parseRouterList('[[router]]\nname = "plain"\nhost = "10.0.0.3"\nusername = "u"\npassword = "p"\n', 'r.toml', (w) => quiet.push(w));
    assert.deepEqual(quiet, [], 'a file without those keys gets no warning');
  });
});
