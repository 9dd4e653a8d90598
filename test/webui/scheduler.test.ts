// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The scheduler display (top-bar indicator + popover, dashboard card) driven by lqosd's real
 * tracker (lib/scheduler/status.ts) over the `scheduler` websocket channel: the running step with
 * its percentage, the last integration run's summary (counts, duration, warnings), stale progress,
 * and privacy mode masking subscriber data inside warnings.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SchedulerStatusTracker } from '../../lib/scheduler/status.ts';
import { type Browser, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
let clock = Date.now();
const tracker = new SchedulerStatusTracker({ now: () => new Date(clock) });

before(async () => {
  h = await startUiHarness();
  // lqosd's real tracker instead of the fake: what the page shows is what scheduler_status computes.
  (h.ctx as { scheduler: unknown }).scheduler = tracker;
  tracker.heartbeat('idle');
  tracker.success();
  b = await browserAsAdmin(h);
});
after(async () => {
  await closeUi(b, h);
});

test('the running step shows as "Applying shaping (4/4, 75 %)" in the top bar, the popover and the dashboard; the run summary with warnings', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('scheduler-card').waitFor();
  tracker.integrationSummary({
    integration: 'uisp',
    finishedAt: new Date(clock - 60_000).toISOString(),
    durationMs: 12_345,
    circuits: { total: 412, added: 5, removed: 2, changed: 17 },
    devices: { total: 530 },
    warnings: ['duplicate IP 100.64.10.11 omitted (Maria Lopez CPE)', 'site "Tower_East" has no coordinates'],
    warningsOmitted: 3,
    networkJson: 'kept',
  });
  tracker.heartbeat('refreshing');
  tracker.progress({ active: true, phase: 'apply', label: 'Applying shaping', step: 4, steps: 4 });

  const stepEl = page.getByTestId('scheduler-step');
  await stepEl.waitFor({ timeout: 5000 });
  assert.equal((await stepEl.innerText()).trim(), '· Applying shaping (4/4, 75 %)');
  assert.match(await page.getByTestId('scheduler-card-progress').innerText(), /Applying shaping \(4\/4, 75 %\)/);
  assert.match(await page.getByTestId('scheduler-card-run').innerText(), /uisp: 412 circuits \(\+5 −2 ~17\), 5 warning\(s\)/);

  await page.getByTestId('scheduler-indicator').click();
  const pop = page.getByTestId('scheduler-popover');
  await pop.waitFor();
  assert.match(await page.getByTestId('scheduler-progress').innerText(), /Applying shaping \(4\/4, 75 %\)/);
  assert.equal(await page.getByTestId('scheduler-progress').locator('meter').getAttribute('value'), '75');
  const run = await page.getByTestId('scheduler-run').innerText();
  assert.match(run, /uisp · 12\.3 s/);
  assert.match(run, /412 \(5 added, 2 removed, 17 changed\)/);
  assert.match(run, /530/);
  assert.match(run, /network\.json\s+kept \(the operator’s file\)/);
  const warnings = await page.getByTestId('scheduler-run-warnings').locator('li').allInnerTexts();
  assert.equal(warnings.length, 3);
  assert.match(warnings[0], /duplicate IP 100\.64\.10\.11 omitted/);
  assert.match(warnings[2], /… and 3 more/);
  await shot(page, '22-scheduler-progress-summary');

  // Privacy mode masks subscriber addresses inside the warnings.
  await page.getByTestId('privacy-toggle').click();
  if (!(await pop.isVisible())) await page.getByTestId('scheduler-indicator').click();
  const masked = (await page.getByTestId('scheduler-run-warnings').innerText());
  assert.ok(!masked.includes('100.64.10.11'), `address shown in privacy mode: ${masked}`);
  assert.match(masked, /duplicate IP .* omitted/);
  await page.getByTestId('privacy-toggle').click();
  assert.deepEqual(b.errors, []);
});

test('an idle heartbeat after a running step: the step is stale and leaves the top bar; the end of a cycle shows 100 %', async () => {
  const { page } = b;
  tracker.heartbeat('idle');
  await page.getByTestId('scheduler-step').waitFor({ state: 'detached', timeout: 5000 });
  const pop = page.getByTestId('scheduler-popover');
  if (!(await pop.isVisible())) await page.getByTestId('scheduler-indicator').click();
  await page.waitForFunction(() => /stale/.test(document.querySelector('[data-testid=scheduler-progress]')?.textContent ?? ''), undefined, { timeout: 5000 });
  assert.equal(await page.getByTestId('scheduler-progress').locator('meter').count(), 0, 'no bar for a stale step');
  tracker.progress({ active: false, phase: 'ready', label: 'Up to date', step: 4, steps: 4 });
  await page.waitForFunction(() => /Up to date \(4\/4, 100 %\)/.test(document.querySelector('[data-testid=scheduler-progress]')?.textContent ?? ''), undefined, { timeout: 5000 });
  assert.doesNotMatch(await page.getByTestId('scheduler-progress').innerText(), /stale/);
  await shot(page, '23-scheduler-ready');
});
