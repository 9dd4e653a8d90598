// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * FileUrgentIssueStore: dedupe, acknowledge, clear, resolve, eviction, persistence, corrupt file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileUrgentIssueStore } from '../../lib/urgent/store.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lqos-urgent-'));
  dirs.push(d);
  return d;
}

/** A clock that advances one second per call. */
function ticking(start = Date.parse('2025-01-01T00:00:00Z')) {
  let t = start;
  return () => new Date((t += 1000));
}

const warnings: string[] = [];
const log = { warn: (m: string) => void warnings.push(m), info: () => {} } as never;

test('submit creates an issue; the same key bumps count and lastSeen instead of adding', () => {
  const s = new FileUrgentIssueStore({ path: join(tmp(), 'u.json'), now: ticking() });
  const a = s.submit({ source: 'LibreQoS', severity: 'warning', code: 'TC_QDISC_CAPACITY', message: 'first' });
  assert.equal(a.key, 'LibreQoS:TC_QDISC_CAPACITY');
  assert.equal(a.count, 1);
  const b = s.submit({ source: 'LibreQoS', severity: 'warning', code: 'TC_QDISC_CAPACITY', message: 'second' });
  assert.equal(b.id, a.id);
  assert.equal(b.count, 2);
  assert.equal(b.message, 'second');
  assert.equal(b.firstSeen, a.firstSeen);
  assert.ok(b.lastSeen > a.lastSeen);
  assert.equal(s.list().length, 1);
  // An explicit dedupeKey separates issues with the same code.
  s.submit({ source: 'LibreQoS', severity: 'error', code: 'TC_U16_OVERFLOW', message: 'cpu 1', dedupeKey: 'TC_U16_OVERFLOW_CPU_1' });
  s.submit({ source: 'LibreQoS', severity: 'error', code: 'TC_U16_OVERFLOW', message: 'cpu 2', dedupeKey: 'TC_U16_OVERFLOW_CPU_2' });
  assert.equal(s.list().length, 3);
  assert.equal(s.activeCount(), 3);
  // Newest first.
  assert.equal(s.list()[0]!.message, 'cpu 2');
});

test('acknowledge keeps the issue; a repeat stays acknowledged unless the severity rises', () => {
  const s = new FileUrgentIssueStore({ path: join(tmp(), 'u.json'), now: ticking() });
  const a = s.submit({ source: 'API', severity: 'warning', code: 'X', message: 'm' });
  assert.equal(s.acknowledge(a.id), true);
  assert.equal(s.acknowledge('999'), false);
  assert.equal(s.list().length, 1);
  assert.equal(s.list()[0]!.acknowledged, true);
  assert.equal(s.activeCount(), 0);
  s.submit({ source: 'API', severity: 'warning', code: 'X', message: 'again' });
  assert.equal(s.list()[0]!.acknowledged, true, 'same severity: still acknowledged');
  s.submit({ source: 'API', severity: 'info', code: 'X', message: 'lower' });
  assert.equal(s.list()[0]!.acknowledged, true, 'lower severity: still acknowledged');
  s.submit({ source: 'API', severity: 'error', code: 'X', message: 'worse' });
  assert.equal(s.list()[0]!.acknowledged, false, 'severity rose: needs attention again');
  assert.equal(s.list()[0]!.severity, 'error');
  assert.equal(s.activeCount(), 1);
});

test('clear by id, clear all, resolveKey', () => {
  const s = new FileUrgentIssueStore({ path: join(tmp(), 'u.json'), now: ticking() });
  const a = s.submit({ source: 's', severity: 'error', code: 'A', message: 'a' });
  s.submit({ source: 's', severity: 'error', code: 'B', message: 'b', dedupeKey: 'kb' });
  s.submit({ source: 's', severity: 'error', code: 'C', message: 'c' });
  assert.equal(s.clear(a.id), 1);
  assert.equal(s.clear(a.id), 0);
  assert.equal(s.resolveKey('kb'), true);
  assert.equal(s.resolveKey('kb'), false);
  assert.deepEqual(s.list().map((i) => i.code), ['C']);
  assert.equal(s.clear(), 1);
  assert.equal(s.list().length, 0);
});

test('bounded: the oldest issues are evicted first; a refreshed issue counts as new', () => {
  const s = new FileUrgentIssueStore({ path: join(tmp(), 'u.json'), max: 3, now: ticking() });
  for (const c of ['A', 'B', 'C']) s.submit({ source: 's', severity: 'warning', code: c, message: c });
  s.submit({ source: 's', severity: 'warning', code: 'A', message: 'A again' }); // A is now the newest
  s.submit({ source: 's', severity: 'warning', code: 'D', message: 'D' }); // evicts B
  assert.deepEqual(s.list().map((i) => i.code).sort(), ['A', 'C', 'D']);
  s.submit({ source: 's', severity: 'warning', code: 'E', message: 'E' }); // evicts C
  assert.deepEqual(s.list().map((i) => i.code).sort(), ['A', 'D', 'E']);
});

test('persisted atomically and reloaded by a new store (ids keep counting up)', () => {
  const dir = tmp();
  const path = join(dir, 'state', 'urgent_issues.json');
  const s1 = new FileUrgentIssueStore({ path, now: ticking() });
  const a = s1.submit({ source: 's', severity: 'error', code: 'A', message: 'a', context: { cpu: 3 } });
  s1.submit({ source: 's', severity: 'warning', code: 'B', message: 'b' });
  s1.acknowledge(a.id);
  assert.ok(existsSync(path));
  // Three saves: the file plus the two earlier versions as rotated backups, no temp files.
  assert.deepEqual(readdirSync(join(dir, 'state')).sort(), ['urgent_issues.json', 'urgent_issues.json.bak', 'urgent_issues.json.bak.1']);
  assert.equal(JSON.parse(readFileSync(`${path}.bak`, 'utf8')).issues.length, 2, '.bak: before the acknowledge');
  assert.equal(JSON.parse(readFileSync(`${path}.bak.1`, 'utf8')).issues.length, 1, '.bak.1: after the first submit');
  const s2 = new FileUrgentIssueStore({ path, now: ticking(Date.parse('2025-02-01T00:00:00Z')) });
  assert.deepEqual(s2.list(), s1.list());
  assert.equal(s2.list().find((i) => i.code === 'A')!.acknowledged, true);
  assert.deepEqual(s2.list().find((i) => i.code === 'A')!.context, { cpu: 3 });
  const c = s2.submit({ source: 's', severity: 'warning', code: 'C', message: 'c' });
  assert.ok(Number(c.id) > Math.max(...s1.list().map((i) => Number(i.id))), 'no id reused');
});

test('a corrupt file is moved aside with a warning and the store starts empty', () => {
  for (const bad of ['{not json', JSON.stringify({ version: 1, nextId: 1, issues: [{ id: 1 }] }), '[]']) {
    const dir = tmp();
    const path = join(dir, 'urgent_issues.json');
    writeFileSync(path, bad);
    warnings.length = 0;
    const s = new FileUrgentIssueStore({ path, log });
    assert.equal(s.list().length, 0);
    assert.equal(warnings.length, 1, bad);
    assert.match(warnings[0]!, /not a valid urgent issue list.*moved it to .*corrupt-/);
    const aside = readdirSync(dir).filter((f) => f.includes('.corrupt-'));
    assert.equal(aside.length, 1);
    assert.equal(readFileSync(join(dir, aside[0]!), 'utf8'), bad, 'the bad file is kept for inspection');
    s.submit({ source: 's', severity: 'error', code: 'A', message: 'a' });
    assert.equal(new FileUrgentIssueStore({ path }).list().length, 1, 'a fresh file is written');
  }
});

test('a corrupt file with a readable backup: the backup is restored with a warning naming both', () => {
  const dir = tmp();
  const path = join(dir, 'urgent_issues.json');
  const s1 = new FileUrgentIssueStore({ path, now: ticking() });
  s1.submit({ source: 's', severity: 'error', code: 'A', message: 'a' });
  s1.submit({ source: 's', severity: 'error', code: 'B', message: 'b' });
  s1.submit({ source: 's', severity: 'error', code: 'C', message: 'c' });
  const good = readFileSync(path, 'utf8');
  writeFileSync(`${path}.bak`, '{"version":1,"nextId":'); // the newest backup is damaged too
  writeFileSync(path, good.slice(0, 40)); // truncated
  warnings.length = 0;
  const s2 = new FileUrgentIssueStore({ path, log });
  assert.deepEqual(s2.list().map((i) => i.code), ['A'], 'the state of .bak.1 (one issue)');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, new RegExp(`${path}.*moved it to .*corrupt-.*restored the newest readable backup ${path}\\.bak\\.1.*skipped: ${path}\\.bak`));
  assert.equal(JSON.parse(readFileSync(path, 'utf8')).issues.length, 1, 'the backup was written back as the file');
});

test('long messages and contexts are cut and ANSI colours stripped', () => {
  const s = new FileUrgentIssueStore({ path: join(tmp(), 'u.json') });
  const i = s.submit({ source: 's', severity: 'error', code: 'A', message: '\u001b[31mred\u001b[0m ' + 'x'.repeat(10_000), context: { big: 'y'.repeat(50_000) } });
  assert.ok(i.message.startsWith('red x'));
  assert.ok(i.message.length < 4100);
  assert.equal(typeof i.context, 'string');
  assert.ok((i.context as string).length < 16_100);
});
