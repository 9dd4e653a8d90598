// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The Network Layout tree editor, driven as an admin would: add, rename, move and delete nodes and
 * edit their fields through the page, save, and read network.json (exact text) and
 * ShapedDevices.csv back from disk; checks shown while typing; the orphan questions on a delete
 * and a rename; the JSON view keeps edits both ways; the leave-page warnings; privacy mode; a deep
 * tree with long names at 1400 and 390 px.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Dialog } from 'playwright-core';
import { bodyText, type Browser, launchBrowser, shot } from '../support/browser.ts';
import { ADMIN, login, seedUsers } from '../support/users.ts';
import { SITE_NAMES, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const netFile = () => join(h.dir, 'network.json');
const devicesFile = () => join(h.dir, 'ShapedDevices.csv');
const written = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Dialogs answered from a queue (true = OK); beforeunload and unqueued ones are accepted. Returns the messages seen. */
function answer(queue: boolean[] = []): string[] {
  const asked: string[] = [];
  b.page.removeAllListeners('dialog');
  b.page.on('dialog', (d: Dialog) => {
    if (d.type() === 'beforeunload') return void d.accept();
    asked.push(d.message());
    void ((queue.length ? queue.shift() : true) ? d.accept() : d.dismiss());
  });
  return asked;
}

before(async () => {
  h = await startUiHarness();
  await seedUsers(h);
  b = await launchBrowser();
  answer();
  await login(b.page, h.base, ADMIN);
});
after(async () => {
  await b?.close();
  await h?.close();
});

const row = (path: string) => b.page.locator(`[data-testid=network-node][data-path="${path}"]`);
async function select(path: string) {
  await row(path).locator('.node-main').click();
  await b.page.getByTestId('node-form').locator('h2', { hasText: path.split('/').pop()! }).waitFor();
}
const input = (field: string) => b.page.getByTestId(`nf-${field}`);
const saveButton = () => b.page.getByTestId('network-save');
async function save(notice: string) {
  await saveButton().click();
  await b.page.getByTestId('network-notice').getByText(notice).waitFor();
}
async function openTree(first = 'Downtown_Core') {
  await b.page.goto(`${h.base}/network`);
  await b.page.getByTestId('network-tree').getByText(first).first().waitFor();
}

test('the tree shows each node with its type, rates, coordinates and circuits (whole subtree and direct)', async () => {
  await openTree('Downtown');
  assert.match(await row('Downtown').innerText(), /Downtown\s+site\s+↓ 1000 \/ ↑ 500 Mbps · 39\.7817, -89\.6501 · 3 circuits \(0 direct\)/);
  assert.match(await row('Downtown/Tower_North').innerText(), /Tower_North\s+site\s+↓ 400 \/ ↑ 200 Mbps · 39\.86, -89\.64 · 2 circuits$/);
  assert.match(await row('Riverside/AP_River_1').innerText(), /AP_River_1\s+ap\s+↓ 200 \/ ↑ 100 Mbps · 39\.81, -89\.42 · 1 circuit$/);
  assert.equal(await row('Riverside').getAttribute('aria-expanded'), 'true', 'top-level nodes start open');
  await row('Riverside').getByTestId('network-node-toggle').click();
  await row('Riverside/AP_River_1').waitFor({ state: 'detached' });
  assert.equal(await row('Riverside').getAttribute('aria-expanded'), 'false');
  await row('Riverside').getByTestId('network-node-toggle').click();
  await row('Riverside/AP_River_1').waitFor();
  await shot(b.page, '74-network-tree');
});

test('add, edit, rename and move through the page, checks while typing, save: network.json is exactly the edited tree', async () => {
  const { page } = b;
  const devicesBefore = readFileSync(devicesFile(), 'utf8');
  await openTree('Downtown');
  assert.equal(await page.getByTestId('network-dirty').count(), 0);

  // Add a child under Riverside: it takes Riverside's rates.
  await select('Riverside');
  await input('child-name').fill('AP_River_2');
  await page.getByTestId('node-add-child').click();
  await page.getByTestId('node-form').locator('h2', { hasText: 'AP_River_2' }).waitFor();
  assert.equal(await input('downloadBandwidthMbps').inputValue(), '500');
  await page.getByTestId('network-dirty').waitFor();

  // Fields, with the checks as they are typed.
  await input('type').fill('ap');
  await input('downloadBandwidthMbps').fill('600');
  assert.equal(
    await input('downloadBandwidthMbps-problem').innerText(),
    '"AP_River_2" (under "Riverside"): downloadBandwidthMbps 600 Mbps is more than "Riverside" allows (500 Mbps); lqosd clamps it to the parent\'s',
  );
  assert.equal(await saveButton().isDisabled(), false, 'a warning does not hold the save back');
  await input('downloadBandwidthMbps').fill('150');
  await input('uploadBandwidthMbps').fill('75');
  await input('latitude').fill('95');
  assert.equal(await input('latitude-problem').innerText(), '"AP_River_2" (under "Riverside"): latitude must be a number between -90 and 90 (it is 95)');
  assert.equal(await saveButton().isDisabled(), true, 'an error holds the save back');
  assert.match(await row('Riverside/AP_River_2').innerText(), /error/);
  assert.match(await page.getByTestId('network-checks').innerText(), /latitude must be a number between -90 and 90/);
  await shot(page, '75-network-tree-validation');
  await input('latitude').fill('39.8');
  await input('longitude').fill('-89.4');
  assert.equal(await page.getByTestId('network-checks').count(), 0);

  // A name another node has is refused while typing.
  await input('child-name').fill('Tower_North');
  assert.equal(await page.getByTestId('nf-child-problem').innerText(), '"Tower_North" is already used by node "Tower_North" (under "Downtown"); node names must be unique across the whole tree');
  assert.equal(await page.getByTestId('node-add-child').isDisabled(), true);
  await input('child-name').fill('');

  // Rename a top-level node: its children stay (and stay open); no circuit names it, so no orphan note.
  await select('Downtown');
  await input('name').fill('Downtown_Core');
  await page.getByTestId('node-rename').click();
  await row('Downtown_Core/Tower_North').waitFor();
  assert.equal(await page.getByTestId('network-orphans').count(), 0);

  // Move: the picker offers neither the node's own subtree nor its current parent.
  const options = async () => (await page.getByTestId('node-move-to').locator('option').allTextContents()).slice(1);
  assert.deepEqual(await options(), ['Riverside', 'Riverside › AP_River_1', 'Riverside › AP_River_2']);
  await select('Riverside/AP_River_1');
  assert.deepEqual(await options(), ['(top level)', 'Downtown_Core', 'Downtown_Core › Tower_North', 'Downtown_Core › Tower_South', 'Riverside › AP_River_2']);
  await page.getByTestId('node-move-to').selectOption({ label: 'Downtown_Core › Tower_South' });
  await page.getByTestId('node-move').click();
  await row('Downtown_Core/Tower_South/AP_River_1').waitFor();
  assert.match(await row('Downtown_Core/Tower_South').innerText(), /2 circuits \(1 direct\)/);

  await save('Saved network.json: 6 nodes');
  assert.equal(await page.getByTestId('network-dirty').count(), 0);
  assert.equal(
    readFileSync(netFile(), 'utf8'),
    written({
      Downtown_Core: {
        downloadBandwidthMbps: 1000,
        uploadBandwidthMbps: 500,
        type: 'site',
        latitude: 39.7817,
        longitude: -89.6501,
        children: {
          Tower_North: { downloadBandwidthMbps: 400, uploadBandwidthMbps: 200, type: 'site', latitude: 39.86, longitude: -89.64 },
          Tower_South: {
            downloadBandwidthMbps: 600,
            uploadBandwidthMbps: 300,
            type: 'site',
            latitude: 39.7,
            longitude: -89.67,
            children: { AP_River_1: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100, type: 'ap', latitude: 39.81, longitude: -89.42 } },
          },
        },
      },
      Riverside: {
        downloadBandwidthMbps: 500,
        uploadBandwidthMbps: 250,
        type: 'site',
        children: { AP_River_2: { downloadBandwidthMbps: 150, uploadBandwidthMbps: 75, type: 'ap', latitude: 39.8, longitude: -89.4 } },
      },
    }),
  );
  assert.equal(readFileSync(devicesFile(), 'utf8'), devicesBefore, 'no circuit lost its parent: ShapedDevices.csv untouched');
  await shot(page, '76-network-tree-saved');
});

test('deleting a node circuits hang under: said before saving; the orphan questions: declined → nothing saved, moved → rows name the node above', async () => {
  const { page } = b;
  await openTree();
  const netBefore = readFileSync(netFile(), 'utf8');
  const devicesBefore = readFileSync(devicesFile(), 'utf8');
  await select('Downtown_Core/Tower_North');
  let asked = answer([true]);
  await page.getByTestId('node-delete').click();
  await row('Downtown_Core/Tower_North').waitFor({ state: 'detached' });
  assert.deepEqual(asked, ['Delete node "Tower_North" (under "Downtown_Core")?\n\n2 circuit(s) hang under it: when you save, you are asked where they go.']);
  assert.equal(await page.getByTestId('network-orphan').innerText(), '"Tower_North" is removed: 2 circuits hang under it.');

  asked = answer([false, false]);
  await save('Not saved');
  assert.equal(asked.length, 2, asked.join('\n---\n'));
  assert.match(asked[0]!, /"Tower_North": c-1001 \(Maria Lopez\), c-1002 \(Jonathan Whitaker\) → "Downtown_Core"/);
  assert.match(asked[1]!, /Save anyway and leave the 2 circuits without a parent node\?/);
  assert.equal(readFileSync(netFile(), 'utf8'), netBefore, 'declined: network.json unchanged');
  assert.equal(readFileSync(devicesFile(), 'utf8'), devicesBefore, 'declined: ShapedDevices.csv unchanged');
  await page.getByTestId('network-dirty').waitFor();

  answer([true]);
  await save('2 circuit(s) moved to "Downtown_Core"');
  const expected = JSON.parse(netBefore);
  delete expected.Downtown_Core.children.Tower_North;
  assert.equal(readFileSync(netFile(), 'utf8'), written(expected));
  assert.equal(readFileSync(devicesFile(), 'utf8'), devicesBefore.replaceAll(',Tower_North,', ',Downtown_Core,'), 'only the parents of the moved rows changed');
  assert.match(await row('Downtown_Core').innerText(), /4 circuits \(2 direct\)/);
  await shot(page, '77-network-tree-deleted-reparented');
  answer();
});

test('renaming a node circuits name: the page says before saving that lqosd cannot follow a rename; the orphan questions decide', async () => {
  const { page } = b;
  await openTree();
  const devicesBefore = readFileSync(devicesFile(), 'utf8');
  await select('Downtown_Core/Tower_South');
  await input('name').fill('Tower_South_Sector_A');
  await page.getByTestId('node-rename').click();
  await row('Downtown_Core/Tower_South_Sector_A').waitFor();
  assert.equal(
    (await page.getByTestId('network-orphan').innerText()).replace(/\s+/g, ' '),
    '"Tower_South" is renamed to "Tower_South_Sector_A": its 1 circuit still names "Tower_South". lqosd cannot move circuits to a renamed node: ' +
      'on Save it offers the nearest node above instead. To keep them under "Tower_South_Sector_A", answer Cancel to that, OK to save them ' +
      'without a parent, then set their Parent Node to "Tower_South_Sector_A" under Shaped Devices.',
  );
  await shot(page, '78-network-tree-rename-note');
  const asked = answer([false, true]);
  await save('Saved network.json');
  assert.match(asked[0]!, /"Tower_South": c-1004 \(Green Valley Bakery\) → "Downtown_Core"/);
  assert.match(asked[1]!, /Save anyway and leave the 1 circuit without a parent node\?/);
  const net = JSON.parse(readFileSync(netFile(), 'utf8'));
  assert.deepEqual(Object.keys(net.Downtown_Core.children), ['Tower_South_Sector_A']);
  assert.deepEqual(Object.keys(net.Downtown_Core.children.Tower_South_Sector_A.children), ['AP_River_1']);
  assert.equal(readFileSync(devicesFile(), 'utf8'), devicesBefore, 'kept: the row still names Tower_South');
  assert.match(await row('Downtown_Core/Tower_South_Sector_A').innerText(), /1 circuit \(0 direct\)/);
  answer();
});

test('Advanced: JSON keeps the tree edits, the tree keeps the JSON edits; JSON that does not parse stays in the JSON view', async () => {
  const { page } = b;
  await openTree();
  await select('Riverside');
  await input('downloadBandwidthMbps').fill('450');
  await page.getByTestId('network-view-toggle').click();
  const area = page.getByTestId('network-text');
  const net = JSON.parse(await area.inputValue());
  assert.equal(net.Riverside.downloadBandwidthMbps, 450);
  assert.deepEqual(Object.keys(net.Riverside.children), ['AP_River_2']);
  net.Riverside.uploadBandwidthMbps = 260;
  await area.fill(JSON.stringify(net, null, 2));
  await page.getByTestId('network-view-toggle').click();
  assert.match(await row('Riverside').innerText(), /↓ 450 \/ ↑ 260 Mbps/);
  await page.getByTestId('network-dirty').waitFor();

  await page.getByTestId('network-view-toggle').click();
  await area.fill('{ "Riverside": ');
  await page.getByTestId('network-view-toggle').click();
  assert.match(await page.getByTestId('network-view-error').innerText(), /^The JSON cannot be shown as a tree \(not valid JSON: .+\); fix it, or Discard to return to the saved file\.$/);
  assert.equal(await area.isVisible(), true, 'still in the JSON view');
  assert.equal(await saveButton().isDisabled(), true);
  await page.getByRole('button', { name: 'Discard' }).click();
  assert.equal(await area.inputValue(), readFileSync(netFile(), 'utf8').trimEnd());
  await page.getByTestId('network-view-toggle').click();
  await page.getByTestId('network-tree').waitFor();
  assert.equal(await page.getByTestId('network-dirty').count(), 0);
});

test('drag and drop moves a node under another; onto its own descendant is refused with the reason', async () => {
  const { page } = b;
  await openTree();
  await row('Riverside/AP_River_2').dragTo(row('Downtown_Core/Tower_South_Sector_A'));
  await row('Downtown_Core/Tower_South_Sector_A/AP_River_2').waitFor();
  assert.equal(await row('Riverside/AP_River_2').count(), 0);
  await page.getByTestId('node-form').locator('h2', { hasText: 'AP_River_2' }).waitFor();
  await row('Downtown_Core').dragTo(row('Downtown_Core/Tower_South_Sector_A/AP_River_1'));
  assert.equal(await page.getByTestId('network-move-error').innerText(), '"Downtown_Core" cannot move under its own descendant "AP_River_1" (under "Tower_South_Sector_A")');
  await row('Downtown_Core/Tower_South_Sector_A/AP_River_1').waitFor();
  await page.getByTestId('network-view-toggle').click();
  const net = JSON.parse(await page.getByTestId('network-text').inputValue());
  assert.deepEqual(Object.keys(net.Downtown_Core.children.Tower_South_Sector_A.children), ['AP_River_1', 'AP_River_2']);
  assert.deepEqual(net.Riverside.children, {});
  await page.getByRole('button', { name: 'Discard' }).click();
  await page.getByTestId('network-view-toggle').click();
  assert.equal(await page.getByTestId('network-dirty').count(), 0);
});

test('unsaved changes: leaving through the menu or reloading asks first', async () => {
  const { page } = b;
  await openTree();
  await select('Riverside');
  await input('uploadBandwidthMbps').fill('240');
  await page.getByTestId('network-dirty').waitFor();
  let asked = answer([false]);
  await page.getByRole('link', { name: 'Network Tree' }).click();
  await page.waitForTimeout(300);
  assert.deepEqual(asked, ['Discard unsaved changes to network.json?']);
  assert.match(page.url(), /\/network$/);

  // A reload: the browser's own "leave site?" question; dismissed, the edit is still there.
  const kinds: string[] = [];
  page.removeAllListeners('dialog');
  page.on('dialog', (d) => {
    kinds.push(d.type());
    void d.dismiss();
  });
  void page.reload().catch(() => undefined);
  await page.waitForTimeout(1000);
  assert.deepEqual(kinds, ['beforeunload']);
  assert.equal(await input('uploadBandwidthMbps').inputValue(), '240');

  asked = answer([true]);
  await page.getByRole('link', { name: 'Network Tree' }).click();
  await page.waitForURL('**/tree');
  assert.deepEqual(asked, ['Discard unsaved changes to network.json?']);
  answer();
});

test('privacy mode: the tree is shown with node names and coordinates masked, and cannot be edited', async () => {
  const { page } = b;
  await openTree();
  await page.getByTestId('privacy-toggle').click();
  try {
    await page.getByTestId('network-privacy').waitFor();
    await page.getByTestId('network-expand-all').click();
    assert.equal(await page.getByTestId('network-node').count(), 5);
    const text = await bodyText(page);
    assert.deepEqual(SITE_NAMES.concat(['Downtown_Core', 'AP_River_2', 'Tower_South_Sector_A']).filter((n) => text.includes(n)), []);
    assert.deepEqual(['39.78', '-89.65', '39.81', '-89.42', '39.8,'].filter((c) => text.includes(c)), [], 'coordinates shown');
    assert.match(await page.getByTestId('network-node').first().innerText(), /\[site\]\s+site\s+↓ 1000 \/ ↑ 500 Mbps · •••, ••• · 3 circuits \(2 direct\)$/);
    assert.equal(await page.locator('[data-edit]').count(), 0);
    assert.equal(await page.getByTestId('network-view-toggle').count(), 0);
    await shot(page, '79-network-tree-privacy');
  } finally {
    await page.getByTestId('privacy-toggle').click();
  }
});

test('a deep tree with long names: readable at 1400 px and at 390 px (nothing wider than the screen)', async () => {
  const { page } = b;
  // Twelve levels, each with a long-named node and a short sibling.
  let level: Record<string, unknown> = {};
  for (let i = 12; i >= 1; i--) {
    const long = `Level_${i}_Backhaul_Aggregation_Tower_With_A_Very_Long_Operator_Given_Name`;
    level = { [long]: { downloadBandwidthMbps: 10_000 - i * 100, uploadBandwidthMbps: 5_000 - i * 50, type: i % 2 ? 'site' : 'ap', latitude: 39 + i / 100, longitude: -89 - i / 100, children: level }, [`AP_${i}`]: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50, type: 'ap' } };
  }
  writeFileSync(netFile(), written(level));
  await openTree('Level_1_');
  await page.getByTestId('network-expand-all').click();
  assert.equal(await page.getByTestId('network-node').count(), 24);
  const deepest = page.getByTestId('network-node').filter({ hasText: 'Level_12_' });
  await deepest.locator('.node-main').click();
  await page.getByTestId('node-form').locator('h2', { hasText: 'Level_12_' }).waitFor();
  await shot(page, '79-network-tree-deep');
  const size = page.viewportSize()!;
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await page.waitForTimeout(200);
    const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(scroll <= client, `the page is ${scroll} px wide on a ${client} px screen`);
    const box = (await deepest.locator('.node-key').boundingBox())!;
    assert.ok(box.x + box.width <= client && box.width > 100, `the deepest name is readable within the screen (x ${box.x}, width ${box.width})`);
    await shot(page, '79-network-tree-deep-phone');
  } finally {
    await page.setViewportSize(size);
  }
  assert.deepEqual(b.errors, []);
});
