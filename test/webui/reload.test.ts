// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The Reload button and the planned plan of a dry run (issue 18 items 5 and "Reload"): a real lqosd
 * (in-process, `[queues] dry_run = true`) with its web server; an admin clicks Reload and is told
 * that nothing was applied and what a real run would do, after which every page shows the plan with
 * a "Planned, not applied" banner; a refused ShapedDevices.csv names the file, line and field while
 * the plan shown stays; a read-only user has no button and gets 403 from the API. (Reload on a
 * shaping lqosd: test/lab/webui.test.ts; the messages: test/unit/reloadResult.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningDaemon } from '../../lib/daemon/daemon.ts';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { loConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { Client, freePort } from '../support/http.ts';
import { ADMIN, login, seedUsers, VIEWER } from '../support/users.ts';
import { makeWorkspace, type Workspace } from '../support/workspace.ts';

const NETWORK = JSON.stringify({ 'Site A': { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000, children: { 'AP 1': { downloadBandwidthMbps: 500, uploadBandwidthMbps: 500 } } } });
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n';
const row = (n: number, max = 100) => `c${n},Customer ${n},d${n},Router ${n},AP 1,,100.64.0.${n},,10,5,${max},20,\n`;

let w: Workspace;
let d: RunningDaemon;
let b: Browser;
let base: string;

before(async () => {
  const port = await freePort();
  w = makeWorkspace({ runDir: true, network: NETWORK, devices: HEADER + row(1) + row(2), conf: (dir) => loConfig(dir).replace('disable_webserver = true\n', `webserver_listen = "127.0.0.1:${port}"\n`) });
  d = await startTestDaemon(w, { web: undefined });
  base = `http://127.0.0.1:${port}`;
  await seedUsers({ base, usersFile: `${w.stateDir}/web_users.json` });
  b = await launchBrowser();
  await login(b.page, base, ADMIN);
});
after(async () => {
  await b?.close();
  await d?.stop();
  w?.cleanup();
});

async function reload(): Promise<string> {
  await b.page.getByTestId('reload').click();
  const msg = b.page.getByTestId('reload-message');
  await msg.waitFor({ timeout: 30_000 });
  return msg.innerText();
}
const close = () => b.page.getByTestId('reload-close').click();

test('dry-run lqosd: Reload plans the files, says nothing was applied, and every page shows the plan as planned', async () => {
  await b.page.goto(`${base}/circuit/no-such-circuit`);
  await b.page.getByText('Circuit not found').waitFor();
  await b.page.locator('.note', { hasText: /no-such-circuit: no plan is applied yet\. Run LibreQoS/ }).waitFor({ timeout: 5_000 });
  await b.page.goto(`${base}/tree`);
  await b.page.getByText('No plan is applied yet').first().waitFor();
  assert.equal(await b.page.getByTestId('planned-banner').count(), 0, 'nothing planned yet: no banner');
  const msg = await reload();
  assert.match(msg, /^Dry run \(\[queues\] dry_run = true\): nothing was applied\. A real run would do a full rebuild of 2 circuits\. The planned tc commands are in .*linux_tc\.txt; /);
  assert.match(await b.page.getByTestId('reload-message').getAttribute('class') ?? '', /warn/);
  await shot(b.page, 'reload-dry-run');
  await close();
  // The tree, the circuit list and the status now carry the planned plan, marked as such.
  const banner = b.page.getByTestId('planned-banner');
  await banner.waitFor({ timeout: 10_000 });
  assert.match(await banner.innerText(), /^Planned, not applied: lqosd runs as a dry run \(\[queues\] dry_run = true\), so these 2 circuits/);
  const api = await b.page.evaluate(async () => ({
    circuits: (await (await fetch('/api/circuits')).json()) as { applied: boolean; planned?: boolean; circuits: { id: string }[] },
    tree: (await (await fetch('/api/network-tree')).json()) as { planned?: boolean; nodes: { name: string }[] },
  }));
  assert.equal(api.circuits.planned, true);
  assert.deepEqual(api.circuits.circuits.map((c) => c.id).sort(), ['c1', 'c2']);
  assert.equal(api.tree.planned, true);
  await b.page.goto(`${base}/tree`);
  await b.page.getByText('AP 1').first().waitFor();
  assert.equal(await b.page.getByText('No plan is applied yet').count(), 0);
  await shot(b.page, 'planned-tree');
  await b.page.goto(`${base}/circuit/no-such-circuit`);
  await b.page.getByText('Circuit not found').waitFor();
  await b.page.locator('.note', { hasText: /no-such-circuit is not in the planned \(dry-run\) plan\./ }).waitFor({ timeout: 5_000 });
  await shot(b.page, 'circuit-not-found-planned');
  // The dashboard labels it as planned, not applied.
  await b.page.goto(`${base}/`);
  const summary = b.page.getByTestId('plan-summary');
  await summary.waitFor();
  assert.match(await summary.innerText(), /^2 circuits, \d+ nodes \(\w+\): written, not applied to the kernel$/);
  assert.equal(await b.page.locator('dt', { hasText: 'Planned (dry run)' }).count(), 1);
  assert.equal(await b.page.locator('dt', { hasText: 'Applied plan' }).count(), 0);
  w.save('ShapedDevices.csv', HEADER + row(1, 150) + row(2) + row(3));
  assert.match(await reload(), /A real run would do a full rebuild of 3 circuits\./);
  await close();
  await b.page.getByText('these 3 circuits').waitFor({ timeout: 10_000 });
});

test('a refused row: its file, line and field are shown, and the other circuits are planned', async () => {
  w.save('ShapedDevices.csv', HEADER + row(1) + 'c2,Customer 2,d2,Router 2,AP 1,,100.64.0.2,,10,5,lots,20,\n' + row(3));
  const msg = await reload();
  const problems = await b.page.getByTestId('reload-problems').innerText();
  await shot(b.page, 'reload-refused');
  assert.match(`${msg}\n${problems}`, /ShapedDevices\.csv:3 \(Download Max Mbps\)/, `${msg}\n${problems}`);
  assert.match(msg, /1 row skipped \(listed below\)\.$/);
  assert.match(problems, /\(circuit left out: it had no last good shaping\)/);
  await close();
  // Nothing was ever applied (dry run), so c2 has no last good shaping: it is left out, the rest is planned.
  const circuits = await b.page.evaluate(async () => (await (await fetch('/api/circuits')).json()) as { circuits: { id: string }[] });
  assert.deepEqual(circuits.circuits.map((c) => c.id).sort(), ['c1', 'c3']);
  w.save('ShapedDevices.csv', HEADER + row(1) + row(2) + row(3));
});

test('privacy mode masks the addresses in the answer (a duplicate address names it)', async () => {
  w.save('ShapedDevices.csv', HEADER + row(1) + row(2) + 'c9,Customer 9,d9,Router 9,AP 1,,100.64.0.1,,10,5,100,20,\n');
  await b.page.evaluate(() => localStorage.setItem('redact', 'true'));
  try {
    await b.page.goto(`${base}/`);
    await reload();
    const text = await b.page.getByTestId('reload-panel').innerText();
    assert.match(text, /ShapedDevices\.csv:4/, text);
    assert.ok(!text.includes('100.64.0.1'), `the address shows in privacy mode: ${text}`);
    await close();
  } finally {
    await b.page.evaluate(() => localStorage.setItem('redact', 'false'));
    w.save('ShapedDevices.csv', HEADER + row(1) + row(2) + row(3));
  }
});

test('a read-only user has no Reload button and the API refuses them', async () => {
  const viewer = new Client(base);
  assert.equal((await viewer.post('/api/auth/login', VIEWER)).status, 200);
  assert.equal((await viewer.post('/api/reload')).status, 403);
  const anon = await fetch(`${base}/api/reload`, { method: 'POST' });
  assert.equal(anon.status, 401);
  const v = await launchBrowser();
  try {
    await login(v.page, base, VIEWER);
    assert.equal(await v.page.getByTestId('reload').count(), 0);
  } finally {
    await v.close();
  }
});
