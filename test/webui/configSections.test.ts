// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The configuration pages of [tuning], [ip_ranges], [flows] and [web] in a browser: each edit is
 * saved to lqos.conf in place (the operator's comments, spacing and order kept; only the changed
 * lines differ), survives a page reload, and keys lqosd reads only at start say so before and after
 * the save. Bad subnets, addresses and ports are refused naming the field; the metrics token never
 * comes back from the server once set; a read-only user sees every value and no control.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { parse as parseToml } from 'smol-toml';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { login, VIEWER } from '../support/users.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

/** The four tables as an operator wrote them: comments above, beside and between the keys. */
const OPERATOR_TABLES = `
# ---- POP 7 shaper: hand-tuned, ask the NOC before changing ----
[tuning]
# coalescing kept low: latency-sensitive gamers on this POP
rx_usecs = 8        # ethtool -C rx-usecs
tx_usecs = 8
xdp_mode = "native" # ixgbe does native

[ip_ranges]
# customer pools
allow_subnets = ["100.64.0.0/10", "10.0.0.0/8"]   # CGNAT + management
ignore_subnets = []       # none yet
unknown_ip_honors_allow = true

[flows]
flow_timeout_seconds = 30   # upstream default
# netflow_ip = "127.0.0.1"   # collector comes later

[web]
# nginx in front? not yet
port = 9123   # tell the NOC before changing
metrics_token = ""
`;

const CANARY = 'canary-metrics-7f3a9c1e5b';

let h: UiHarness;
let b: Browser;
let page: Page;
/** Every API response body and websocket frame the admin's browser received. */
const seen: Promise<string>[] = [];

before(async () => {
  h = await startUiHarness({ extraConfig: OPERATOR_TABLES });
  b = await browserAsAdmin(h);
  page = b.page;
  page.on('dialog', (d) => void d.accept());
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) seen.push(r.text().catch(() => ''));
  });
  page.on('websocket', (ws) => ws.on('framereceived', (f) => seen.push(Promise.resolve(String(f.payload)))));
});
after(async () => {
  await closeUi(b, h);
});

const fileText = () => readFileSync(h.configPath, 'utf8');
const conf = () => parseToml(fileText()) as Record<string, any>;

/** Lines of `now` not in `was` (added or changed) and lines of `was` not in `now` (removed or changed). */
function lineDiff(was: string, now: string): { added: string[]; removed: string[] } {
  const a = was.split('\n');
  const c = now.split('\n');
  return { added: c.filter((l) => !a.includes(l)), removed: a.filter((l) => !c.includes(l)) };
}

async function save(): Promise<void> {
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
}

/** The page fits the window: nothing wider than the viewport (long lists wrap or scroll inside their box). */
async function assertNoOverflow(where: string): Promise<void> {
  const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `${where}: page is ${scroll}px wide in a ${client}px window`);
}

/** The restart note that covers a key: its own, or its group's (a group of restart-only keys says it once). */
async function restartNote(key: string, p: Page = page): Promise<string | null> {
  const note = p.locator(`[data-restart-note~="${key}"]`);
  return (await note.count()) ? note.innerText() : null;
}

test('tuning: values save in place with the comments kept; what the dataplane attach sets waits for a restart, the CPU and kernel keys do not', async () => {
  await page.goto(`${h.base}/config/tuning`);
  await page.locator('input[name="tuning.rx_usecs"]').waitFor();
  // what each key does comes from the server; restart-only keys say so before any save
  assert.match(await page.locator('[data-description-of="tuning.rx_usecs"]').innerText(), /ethtool -C rx-usecs/);
  // The shaping interfaces' group is set when the dataplane attaches: one note for the group.
  for (const k of ['tuning.xdp_mode', 'tuning.rx_usecs', 'tuning.disable_offload']) assert.equal(await restartNote(k), 'These take effect after systemctl restart lqosd.', k);
  assert.equal(await restartNote('tuning.netdev_budget_usecs'), null, 'the CPU and kernel keys are re-applied on reload');

  await page.locator('input[name="tuning.rx_usecs"]').fill('-1');
  assert.equal(await page.locator('[data-problem-of="tuning.rx_usecs"]').innerText(), 'Receive coalescing (µs) must be at least 0.');
  const was = fileText();
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  assert.match(await page.getByTestId('config-details').innerText(), /Receive coalescing \(µs\) must be at least 0\./);
  assert.equal(fileText(), was, 'nothing written');

  await page.locator('input[name="tuning.rx_usecs"]').fill('16');
  await page.locator('select[name="tuning.xdp_mode"]').selectOption('generic');
  await page.locator('textarea[name="tuning.disable_offload"]').fill('gso\ntso\nlro\nsg\ngro\nrxhash');
  await save();
  assert.match(await page.getByTestId('config-restart').innerText(), /reads tuning\.disable_offload, tuning\.rx_usecs, tuning\.xdp_mode only when it starts: the change takes effect after systemctl restart lqosd/);
  await shot(page, '80-config-tuning-saved');
  const now = fileText();
  assert.deepEqual(lineDiff(was, now), {
    added: ['rx_usecs = 16        # ethtool -C rx-usecs', 'xdp_mode = "generic" # ixgbe does native', 'disable_offload = [ "gso", "tso", "lro", "sg", "gro", "rxhash" ]'],
    removed: ['rx_usecs = 8        # ethtool -C rx-usecs', 'xdp_mode = "native" # ixgbe does native'],
  });
  assert.equal(h.ctx.config().tuning.xdp_mode, 'generic', 'lqosd reloaded the file');

  await page.reload();
  assert.equal(await page.locator('input[name="tuning.rx_usecs"]').inputValue(), '16');
  assert.equal(await page.locator('select[name="tuning.xdp_mode"]').inputValue(), 'generic');
  assert.equal(await page.getByTestId('config-restart').count(), 0, 'the restart notice belongs to the save, not the page');
});

test('IP ranges: a bad subnet is refused naming the field and the value; a good list saves in place', async () => {
  await page.goto(`${h.base}/config/ip-ranges`);
  const allow = page.locator('textarea[name="ip_ranges.allow_subnets"]');
  await allow.waitFor();
  assert.equal(await allow.inputValue(), '100.64.0.0/10\n10.0.0.0/8');
  assert.equal(await restartNote('ip_ranges.allow_subnets'), null);
  assert.equal(await restartNote('ip_ranges.unknown_ip_honors_allow'), null, 'the Unknown IPs filter follows a reload');

  const was = fileText();
  await allow.fill('100.64.0.0/10\n10.0.0.300/8\n192.0.2.0/24');
  assert.equal(
    await page.locator('[data-problem-of="ip_ranges.allow_subnets"]').innerText(),
    'Allowed subnets: "10.0.0.300/8" is not a subnet in CIDR form such as 10.0.0.0/8 or 2001:db8::/32.',
  );
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  assert.match(await page.getByTestId('config-details').innerText(), /Allowed subnets: "10\.0\.0\.300\/8" is not a subnet/);
  await shot(page, '81-config-ip-ranges-bad-cidr');
  assert.equal(fileText(), was, 'nothing written');
  // the server refuses it too (a client that skips the form), naming the key
  const direct = await page.request.put(`${h.base}/api/config`, { data: { ip_ranges: { ignore_subnets: ['10.0.0.0/33'] } } });
  assert.equal(direct.status(), 422);
  assert.match(JSON.stringify(await direct.json()), /ip_ranges\.ignore_subnets\[0\]: expected a subnet in CIDR form such as 10\.0\.0\.0\/8, got \\"10\.0\.0\.0\/33\\"/);
  assert.equal(fileText(), was);

  // a long list (60 subnets) stays inside the page
  const many = Array.from({ length: 60 }, (_, i) => `198.51.${i}.0/24`);
  await allow.fill('100.64.0.0/10\n10.0.0.0/8\n2001:db8:100::/40');
  await page.locator('textarea[name="ip_ranges.ignore_subnets"]').fill(many.join('\n'));
  await page.locator('input[name="ip_ranges.unknown_ip_honors_allow"]').uncheck();
  await save();
  assert.equal(await page.getByTestId('config-restart').count(), 0, 'every [ip_ranges] key applies on the reload the save makes');
  await assertNoOverflow('IP ranges with 60 ignored subnets');
  assert.equal(await page.locator('[data-count-of="ip_ranges.ignore_subnets"]').innerText(), '60 entries');
  await shot(page, '82-config-ip-ranges-long-list');
  const now = fileText();
  const { added, removed } = lineDiff(was, now);
  assert.deepEqual(removed, ['allow_subnets = ["100.64.0.0/10", "10.0.0.0/8"]   # CGNAT + management', 'ignore_subnets = []       # none yet', 'unknown_ip_honors_allow = true']);
  assert.equal(added.length, 3, added.join('\n'));
  assert.equal(added[0], 'allow_subnets = [ "100.64.0.0/10", "10.0.0.0/8", "2001:db8:100::/40" ]   # CGNAT + management');
  assert.match(added[1], /^ignore_subnets = \[ "198\.51\.0\.0\/24", .*"198\.51\.59\.0\/24" \] {7}# none yet$/);
  assert.equal(added[2], 'unknown_ip_honors_allow = false');
  assert.deepEqual(conf().ip_ranges.ignore_subnets, many);

  await page.reload();
  assert.equal(await allow.inputValue(), '100.64.0.0/10\n10.0.0.0/8\n2001:db8:100::/40');
  // at phone width too
  const size = page.viewportSize()!;
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await assertNoOverflow('IP ranges at 390 px');
    await shot(page, '88-config-ip-ranges-phone');
  } finally {
    await page.setViewportSize(size);
  }
  assert.equal(await page.locator('input[name="ip_ranges.unknown_ip_honors_allow"]').isChecked(), false);
});

test('flows: NetFlow collector, version and MMDB paths save as numbers and strings; a bad port or address is refused', async () => {
  await page.goto(`${h.base}/config/flows`);
  await page.locator('input[name="flows.flow_timeout_seconds"]').waitFor();
  for (const k of ['flows.flow_timeout_seconds', 'flows.netflow_port', 'flows.geo_mmdb_path', 'flows.asn_mmdb_path']) {
    assert.equal(await restartNote(k), 'These take effect after systemctl restart lqosd.', k);
  }
  assert.match(await page.locator('[data-description-of="flows.asn_mmdb_path"]').innerText(), /GeoLite2-ASN\.mmdb/);
  const was = fileText();
  await page.locator('input[name="flows.netflow_enabled"]').check();
  await page.locator('input[name="flows.netflow_ip"]').fill('192.0.2.500');
  await page.locator('input[name="flows.netflow_port"]').fill('70000');
  await page.locator('textarea[name="flows.do_not_track_subnets"]').fill('203.0.113.0/24\nspeedtest');
  assert.equal(await page.locator('[data-problem-of="flows.netflow_port"]').innerText(), 'Collector port must be at most 65535.');
  assert.equal(await page.locator('[data-problem-of="flows.netflow_ip"]').innerText(), 'Collector address: "192.0.2.500" is not an IP address such as 192.0.2.10 or 2001:db8::10.');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  const details = await page.getByTestId('config-details').innerText();
  for (const want of [/Collector port must be at most 65535\./, /Collector address: "192\.0\.2\.500"/, /Subnets not tracked: "speedtest" is not a subnet/]) assert.match(details, want);
  await shot(page, '83-config-flows-refused');
  assert.equal(fileText(), was, 'nothing written');

  await page.locator('input[name="flows.flow_timeout_seconds"]').fill('45');
  await page.locator('input[name="flows.netflow_ip"]').fill('2001:db8::2055');
  await page.locator('input[name="flows.netflow_port"]').fill('4739');
  await page.locator('select[name="flows.netflow_version"]').selectOption('10');
  await page.locator('textarea[name="flows.do_not_track_subnets"]').fill('203.0.113.0/24');
  await page.locator('input[name="flows.asn_mmdb_path"]').fill('/var/lib/libreqos/GeoLite2-ASN.mmdb');
  await save();
  const restart = await page.getByTestId('config-restart').innerText();
  for (const k of ['flow_timeout_seconds', 'netflow_enabled', 'netflow_ip', 'netflow_port', 'netflow_version', 'do_not_track_subnets', 'asn_mmdb_path']) assert.match(restart, new RegExp(`flows\\.${k}\\b`), k);
  await shot(page, '84-config-flows-saved');
  const f = conf().flows;
  assert.deepEqual(
    [f.flow_timeout_seconds, f.netflow_enabled, f.netflow_ip, f.netflow_port, f.netflow_version, f.do_not_track_subnets, f.asn_mmdb_path, f.geo_mmdb_path],
    [45, true, '2001:db8::2055', 4739, 10, ['203.0.113.0/24'], '/var/lib/libreqos/GeoLite2-ASN.mmdb', undefined],
  );
  const { added, removed } = lineDiff(was, fileText());
  assert.deepEqual(removed, ['flow_timeout_seconds = 30   # upstream default']);
  assert.equal(added[0], 'flow_timeout_seconds = 45   # upstream default', 'the changed line keeps its place, spacing and comment');
  assert.deepEqual(added.slice(1).sort(), [
    'asn_mmdb_path = "/var/lib/libreqos/GeoLite2-ASN.mmdb"',
    'do_not_track_subnets = [ "203.0.113.0/24" ]',
    'netflow_enabled = true',
    'netflow_ip = "2001:db8::2055"',
    'netflow_port = 4739',
    'netflow_version = 10',
  ]);
  assert.match(fileText(), /^# netflow_ip = "127\.0\.0\.1" {3}# collector comes later$/m, 'the commented-out line stays');

  await page.reload();
  assert.equal(await page.locator('select[name="flows.netflow_version"]').inputValue(), '10');
  assert.equal(await page.locator('input[name="flows.netflow_port"]').inputValue(), '4739');
  // back to the default version: the key is removed, not written as ""
  await page.locator('select[name="flows.netflow_version"]').selectOption('');
  await save();
  assert.equal(conf().flows.netflow_version, undefined);
  assert.doesNotMatch(fileText(), /netflow_version/);
});

test('web server: listener, TLS and metrics keys save; the metrics token is never sent back once set', async () => {
  await page.goto(`${h.base}/config/web`);
  await page.locator('input[name="web.port"]').waitFor();
  // The listener's keys wait for a restart; allowed_hosts and metrics_token apply on reload (no note).
  // Listener and /metrics mix both kinds (a note per key), HTTPS is all restart-only (one note).
  for (const k of ['web.bind_address', 'web.port', 'web.trust_proxy', 'web.metrics_top_circuits']) {
    assert.equal(await restartNote(k), 'Takes effect after systemctl restart lqosd.', k);
  }
  assert.equal(await restartNote('web.tls_cert_file'), 'These take effect after systemctl restart lqosd.');
  for (const k of ['web.allowed_hosts', 'web.metrics_token']) assert.equal(await restartNote(k), null, k);
  assert.equal(await page.locator('[data-value-of="web.metrics_token"]').innerText(), 'not set');
  const was = fileText();
  for (const [bad, msg] of [['0', 'Port must be at least 1.'], ['70000', 'Port must be at most 65535.'], ['', 'Port is required.']]) {
    await page.locator('input[name="web.port"]').fill(bad);
    assert.equal(await page.locator('[data-problem-of="web.port"]').innerText(), msg, bad);
  }
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  assert.match(await page.getByTestId('config-details').innerText(), /Port is required\./);
  await shot(page, '85-config-web-bad-port');
  assert.equal(fileText(), was, 'nothing written');

  await page.locator('input[name="web.port"]').fill('9443');
  await page.locator('input[name="web.bind_address"]').fill('127.0.0.1');
  await page.locator('input[name="web.tls_cert_file"]').fill('/etc/lqos/tls/fullchain.pem');
  await page.locator('input[name="web.tls_key_file"]').fill('/etc/lqos/tls/privkey.pem');
  await page.locator('input[name="web.metrics_top_circuits"]').fill('50');
  await page.getByTestId('change-web.metrics_token').click();
  await page.locator('input[name="web.metrics_token"]').fill(CANARY);
  await save();
  // metrics_token changed too, but it applies on reload: not among the keys waiting for a restart.
  assert.match(await page.getByTestId('config-restart').innerText(), /reads web\.bind_address, web\.metrics_top_circuits, web\.port, web\.tls_cert_file, web\.tls_key_file only when it starts/);
  const w = conf().web;
  assert.deepEqual(
    [w.bind_address, w.port, w.tls_cert_file, w.tls_key_file, w.metrics_token, w.metrics_top_circuits],
    ['127.0.0.1', 9443, '/etc/lqos/tls/fullchain.pem', '/etc/lqos/tls/privkey.pem', CANARY, 50],
  );
  const { added, removed } = lineDiff(was, fileText());
  assert.deepEqual(removed, ['port = 9123   # tell the NOC before changing', 'metrics_token = ""']);
  assert.deepEqual(added.slice(0, 2), ['port = 9443   # tell the NOC before changing', `metrics_token = "${CANARY}"`]);
  assert.match(fileText(), /^# nginx in front\? not yet\nport = 9443/m);

  await page.reload();
  await page.locator('input[name="web.port"]').waitFor();
  assert.equal(await page.locator('input[name="web.port"]').inputValue(), '9443');
  assert.equal(await page.locator('[data-value-of="web.metrics_token"]').innerText(), 'set');
  await shot(page, '86-config-web-saved');
  // The canary: in no page, no API reply and no websocket frame the browser got, nor any config reply.
  for (const path of ['/config/web', '/config/general', '/config/flows']) {
    await page.goto(`${h.base}${path}`);
    await page.locator('[data-editor]').waitFor();
    assert.ok(!(await page.content()).includes(CANARY), `page HTML of ${path}`);
  }
  for (const path of ['/api/config', '/api/config/schema']) assert.ok(!(await (await page.request.get(`${h.base}${path}`)).text()).includes(CANARY), path);
  const again = await page.request.put(`${h.base}/api/config`, { data: { web: { metrics_top_circuits: 40 } } });
  assert.equal(again.status(), 200);
  assert.ok(!(await again.text()).includes(CANARY), 'PUT reply');
  const bodies = await Promise.all(seen);
  assert.ok(bodies.length > 10, `responses seen: ${bodies.length}`);
  assert.deepEqual(bodies.filter((t) => t.includes(CANARY)).map((t) => t.slice(0, 120)), [], 'replies holding the token');
  assert.equal(conf().web.metrics_token, CANARY, 'a save without the token keeps it');
});

test('a read-only user sees every new section with descriptions and restart notes, and no control', async () => {
  const viewer = await launchBrowser();
  try {
    const vp = viewer.page;
    await login(vp, h.base, VIEWER);
    for (const section of ['tuning', 'ip-ranges', 'flows', 'web']) {
      await vp.goto(`${h.base}/config/${section}`);
      await vp.locator('[data-editor]').waitFor();
      assert.equal(await vp.locator('[data-edit]').count(), 0, `edit controls on ${section}`);
      const enabled = await vp.locator('[data-editor]').evaluate((f) => [...f.querySelectorAll('button, input, select, textarea')].length);
      assert.equal(enabled, 0, `controls in the editor on ${section}`);
      assert.equal(await vp.getByTestId('config-save').count(), 0);
      assert.ok((await vp.locator('[data-description-of]').count()) >= 4, `descriptions on ${section}`);
    }
    assert.equal(await vp.locator('[data-value-of="web.port"]').innerText(), '9443');
    assert.equal(await vp.locator('[data-value-of="web.metrics_token"]').innerText(), 'set');
    assert.equal(await restartNote('web.port', vp), 'Takes effect after systemctl restart lqosd.');
    await vp.goto(`${h.base}/config/ip-ranges`);
    assert.match(await vp.locator('[data-value-of="ip_ranges.ignore_subnets"]').innerText(), /^198\.51\.0\.0\/24, .*, 198\.51\.59\.0\/24$/);
    const { scroll, client } = await vp.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(scroll <= client, `read-only IP ranges page is ${scroll}px wide in ${client}px`);
    await shot(vp, '87-config-ip-ranges-readonly');
    assert.ok(!(await vp.content()).includes(CANARY));
    assert.equal((await vp.request.put(`${h.base}/api/config`, { data: { web: { port: 9124 } } })).status(), 403);
    assert.equal(conf().web.port, 9443);
    assert.deepEqual(viewer.errors, []);
  } finally {
    await viewer.close();
  }
});
