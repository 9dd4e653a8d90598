// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The run summary's parts (lib/integrations/common/summary.ts, log.ts): the circuit comparison,
 * warnings collected through the run's logger, and the limits and secret redaction of the warnings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collectWarnings, summaryWarnings } from '../../lib/integrations/common/log.ts';
import { secretValues } from '../../lib/config/secrets.ts';
import { diffCircuits } from '../../lib/integrations/common/summary.ts';
import { captureLogger, crmConfig } from './helpers.ts';

const H = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n';

describe('run summary', () => {
  it('diffCircuits: added / removed / changed by rates, parent, devices and addresses; format-only differences are no change', () => {
    const before = `${H}a,A,a1,A,P,,100.64.0.1,,1,1,10,10,\nb,B,b1,B,P,,100.64.0.2,,1,1,10,10,\nc,C,c1,C,P,,100.64.0.3,,1,1,10,10,\nd,D,d1,D,P,,100.64.0.4,,1,1,10,10,\ne,E,e1,E,P,,100.64.0.5,,1,1,10,10,\ng,G,g1,G,P,,100.64.0.7,,1,1,10,10,\n`;
    const after =
      `${H}a,A renamed,a1,A,P,,100.64.0.1/32,,1.0,1,10.00,10,comment\n` + // same: name/comment/format only
      `b,B,b1,B,P,,100.64.0.2,,1,1,20,10,\n` + // rate
      `c,C,c1,C,Q,,100.64.0.3,,1,1,10,10,\n` + // parent
      `d,D,d1,D,P,,100.64.0.4,,1,1,10,10,\nd,D,d2,D2,P,,100.64.0.40,,1,1,10,10,\n` + // a device more
      `e,E,e1,E,P,,100.64.0.55,,1,1,10,10,\n` + // address
      `f,F,f1,F,P,,100.64.0.6,,1,1,10,10,\n`; // new; g removed
    assert.deepEqual(diffCircuits(before, after), { total: 6, added: 1, removed: 1, changed: 4, devices: 7 });
    assert.deepEqual(diffCircuits(undefined, after), { total: 6, added: 6, removed: 0, changed: 0, devices: 7 });
  });

  it('collectWarnings keeps every warn text once, in order, and passes every call on', () => {
    const inner = captureLogger();
    const log = collectWarnings(inner);
    log.warn('one');
    log.info('not a warning');
    log.warn({ code: 'x' }, 'two');
    log.warn('one');
    assert.deepEqual(log.warnings, ['one', 'two']);
    assert.equal(inner.lines.length, 4);
  });

  it('summaryWarnings: secrets of the config replaced, colour codes removed, at most 300 characters each and 50 in all', () => {
    const canary = 'CANARY-secret-7f3a9';
    const config = crmConfig(`[splynx_integration]\napi_key = "${canary}"\napi_secret = "other-secret-value"\nurl = "https://splynx.example/"\n`);
    const secrets = secretValues(config, { LQOS_REST_TOKEN: 'rest-token-value', PATH: '/usr/bin' });
    assert.ok(secrets.includes(canary) && secrets.includes('other-secret-value') && secrets.includes('rest-token-value'));
    assert.ok(!secrets.includes('https://splynx.example/') && !secrets.includes('/usr/bin'), 'URLs and ordinary variables are no secrets');
    const many = [`GET /x?key=${canary} failed`, '\u001b[31mred\u001b[0m text', 'x'.repeat(1000), ...Array.from({ length: 60 }, (_, i) => `w${i}`)];
    const out = summaryWarnings(many, secrets);
    assert.equal(out.length, 50);
    assert.equal(out[0], 'GET /x?key=*** failed');
    assert.equal(out[1], 'red text');
    assert.equal(out[2].length, 300);
    assert.equal(out[49], '… and 14 more warnings (./LibreQoS integration <name> --dry-run prints them all)');
    assert.ok(!JSON.stringify(out).includes(canary));
  });
});
