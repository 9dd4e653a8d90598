// test-gate: shared (CPU only; see test/support/gate.ts)
/** Journal lines from pino records: priority prefix, message first, key=value fields, one line each. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { journalDestination, journalLine, stderrIsJournal, syslogPriority } from '../../lib/util/journalFormat.ts';
import { logFormat } from '../../lib/util/log.ts';

test('pino levels map to syslog priorities journald understands', () => {
  assert.deepEqual([10, 20, 30, 40, 50, 60].map(syslogPriority), [7, 7, 6, 4, 3, 2]);
});

test('a record becomes <N>message key=value, pino bookkeeping dropped, odd values quoted', () => {
  const line = journalLine({ level: 40, time: 1, pid: 7, hostname: 'h', name: 'lqosd', msg: 'refresh failed', file: '/etc/lqos.conf', line: 12, note: 'two words', empty: '', obj: { a: 1 } });
  assert.equal(line, '<4>refresh failed file=/etc/lqos.conf line=12 note="two words" empty="" obj="{\\"a\\":1}"');
});

test('newlines never split a record into several journal entries', () => {
  const line = journalLine({ level: 30, msg: 'first\nsecond', detail: 'a\nb' });
  assert.equal(line.split('\n').length, 1);
  assert.equal(line, '<6>first second detail="a\\nb"');
});

test('errors read as Type: message, with code; the stack only at error level', () => {
  const err = { type: 'DataplaneError', message: 'attach failed', code: 'EPERM', stack: 'DataplaneError: attach failed\n    at x (a.ts:1:1)' };
  assert.equal(journalLine({ level: 40, msg: 'retrying', err }), '<4>retrying err="DataplaneError: attach failed" err.code=EPERM');
  const e = journalLine({ level: 50, msg: 'gave up', err });
  assert.match(e, /^<3>gave up err="DataplaneError: attach failed" err\.code=EPERM err\.stack="DataplaneError: attach failed\\n {4}at x \(a\.ts:1:1\)"$/);
});

test('the destination turns each JSON line into one journal line; a non-JSON chunk keeps info priority', () => {
  const out: string[] = [];
  const d = journalDestination((l) => out.push(l));
  d.write('{"level":50,"msg":"boom"}\n');
  d.write('not json\n');
  assert.deepEqual(out, ['<3>boom\n', '<6>not json\n']);
});

test('JOURNAL_STREAM counts only when it names the stream stderr really is', () => {
  const st = () => ({ dev: 9, ino: 2660357 });
  assert.equal(stderrIsJournal({ JOURNAL_STREAM: '9:2660357' }, st), true);
  assert.equal(stderrIsJournal({ JOURNAL_STREAM: '9:1' }, st), false, 'stderr redirected elsewhere by the unit');
  assert.equal(stderrIsJournal({}, st), false);
  assert.equal(stderrIsJournal({ JOURNAL_STREAM: 'junk' }, st), false);
  assert.equal(stderrIsJournal({ JOURNAL_STREAM: '9:2660357' }, () => undefined), false);
});

test('LQOS_LOG_FORMAT picks the format; an unknown value is reported, not silently used', () => {
  assert.equal(logFormat({ LQOS_LOG_FORMAT: 'journal' }).format, 'journal');
  assert.equal(logFormat({ LQOS_LOG_FORMAT: 'json' }).format, 'json');
  const odd = logFormat({ LQOS_LOG_FORMAT: 'xml' });
  assert.equal(odd.unknown, 'xml');
  assert.notEqual(odd.format, 'xml');
});
