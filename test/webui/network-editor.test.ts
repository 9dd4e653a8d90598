// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The network.json editor's JSON view ("Advanced: JSON"): a valid edit is written (file re-read),
 * an invalid one shows the server's line/key message and leaves the file unchanged, and a
 * read-only user sees no control. The tree view: network-editor-tree.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { ADMIN, login, seedUsers, VIEWER } from '../support/users.ts';
import { startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const file = () => join(h.dir, 'network.json');

before(async () => {
  h = await startUiHarness();
  await seedUsers(h);
  b = await launchBrowser();
  b.page.on('dialog', (d) => void d.accept());
});
after(async () => {
  await b?.close();
  await h?.close();
});

/** The page opens on the tree; the JSON view is one click away. */
async function openJson(page: Browser['page']) {
  await page.goto(`${h.base}/network`);
  await page.getByTestId('network-tree').waitFor();
  await page.getByTestId('network-view-toggle').click();
}

test('admin edits network.json: a valid change is saved, an invalid one is refused with the line', async () => {
  const { page } = b;
  await login(page, h.base, ADMIN);
  await openJson(page);
  const area = page.getByTestId('network-text');
  await area.waitFor();
  const net = JSON.parse(await area.inputValue());
  net.Riverside.downloadBandwidthMbps = 750;
  await area.fill(JSON.stringify(net, null, 2));
  await page.getByTestId('network-save').click();
  await page.getByTestId('network-notice').waitFor();
  assert.equal(JSON.parse(readFileSync(file(), 'utf8')).Riverside.downloadBandwidthMbps, 750);
  await shot(page, '70-network-editor');

  const before = readFileSync(file(), 'utf8');
  net.Riverside.downloadBandwidthMbps = -5;
  await area.fill(JSON.stringify(net, null, 2));
  await page.getByTestId('network-save').click();
  await page.getByTestId('network-issues').waitFor();
  const text = await page.getByTestId('network-issues').innerText();
  assert.match(text, /network\.json, line \d+/);
  assert.match(text, /downloadBandwidthMbps/);
  assert.equal(readFileSync(file(), 'utf8'), before, 'an invalid network.json was written');

  await area.fill('{ "broken": ');
  await page.getByTestId('network-parse-error').waitFor();
  assert.equal(await page.getByTestId('network-save').isDisabled(), true);
});

test('removing a node circuits hang under asks where they go: declined → nothing saved; moved → their rows name the node above', async () => {
  const { page } = b;
  const devicesFile = join(h.dir, 'ShapedDevices.csv');
  const devicesBefore = readFileSync(devicesFile, 'utf8');
  const netBefore = readFileSync(file(), 'utf8');
  const asked: string[] = [];
  let answers: boolean[] = [];
  page.removeAllListeners('dialog');
  page.on('dialog', (d) => {
    if (d.type() === 'beforeunload') return void d.accept(); // leaving the previous test's unsaved text
    asked.push(d.message());
    void (answers.shift() ? d.accept() : d.dismiss());
  });
  try {
    await openJson(page);
    const area = page.getByTestId('network-text');
    await area.waitFor();
    const net = JSON.parse(await area.inputValue());
    delete net.Downtown.children.Tower_North;
    await area.fill(JSON.stringify(net, null, 2));

    answers = [false, false];
    await page.getByTestId('network-save').click();
    await page.getByTestId('network-notice').getByText('Not saved').waitFor();
    assert.equal(asked.length, 2, asked.join('\n---\n'));
    assert.match(asked[0]!, /removes a node that 2 circuits hang under/);
    assert.match(asked[0]!, /"Tower_North": c-1001 \(Maria Lopez\), c-1002 \(Jonathan Whitaker\) → "Downtown"/);
    assert.match(asked[1]!, /Save anyway and leave the 2 circuits without a parent node\?/);
    assert.equal(readFileSync(file(), 'utf8'), netBefore, 'declined: network.json unchanged');
    assert.equal(readFileSync(devicesFile, 'utf8'), devicesBefore, 'declined: ShapedDevices.csv unchanged');

    asked.length = 0;
    answers = [true];
    await page.getByTestId('network-save').click();
    await page.getByTestId('network-notice').getByText('moved to "Downtown"').waitFor();
    assert.match(await page.getByTestId('network-notice').innerText(), /2 circuit\(s\) moved to "Downtown"/);
    await shot(page, '71-network-editor-reparented');
    assert.equal(JSON.parse(readFileSync(file(), 'utf8')).Downtown.children.Tower_North, undefined);
    assert.equal(readFileSync(devicesFile, 'utf8'), devicesBefore.replaceAll(',Tower_North,', ',Downtown,'), 'only the parents of the moved rows changed');
  } finally {
    page.removeAllListeners('dialog');
    page.on('dialog', (d) => void d.accept());
  }
});

test('a read-only user sees the layout but no editing control', async () => {
  const { page } = b;
  await page.getByTestId('logout').click();
  await page.waitForURL('**/login');
  await login(page, h.base, VIEWER);
  await page.goto(`${h.base}/network`);
  await page.getByTestId('network-tree').getByText('Riverside').waitFor();
  assert.equal(await page.locator('[data-edit]').count(), 0);
  assert.equal(await page.getByTestId('node-form').count(), 0);
  await page.getByTestId('network-view-toggle').click();
  assert.match(await page.getByTestId('network-view').innerText(), /"Riverside": \{\n\s+"downloadBandwidthMbps": 750/);
  assert.equal(await page.locator('[data-edit]').count(), 0);
});
