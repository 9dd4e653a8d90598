// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lib/cli/supportBundle.ts redactConfText: lqos.conf's secrets are removed from the text itself, so
 * a file that does not parse as TOML (when operators send bundles) leaks none either.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactConfText } from '../../lib/cli/supportBundle.ts';

test('a secret at the start of a line, inside an inline table, quoted or bare, in a multi-line string: replaced; everything else as written', () => {
  const text = [
    '# comment: token = "not a value"',
    '[uisp_integration]',
    'token = "S1-basic"   # the NMS token',
    "  'api_key' = 'S2-literal'",
    'url = "https://nms.example"',
    'splynx_integration = { enable_splynx = true, api_secret = "S3-inline\\"quoted", url = "https://crm" }',
    "powercode = { api_key = 'S4-inline-literal' }",
    'sonar = { api_key = S5bare, x = 1 }',
    'password = """S6-first-line',
    'S6-second-line',
    'S6-last"""',
    'after = 1',
    'passphrase = """S7-one-line"""',
    'this line = is [broken toml',
  ].join('\n');
  const out = redactConfText(text);
  for (const s of ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7']) assert.ok(!out.includes(s), `${s} left in:\n${out}`);
  assert.deepEqual(out.split('\n'), [
    '# comment: token = "not a value"',
    '[uisp_integration]',
    'token = "***" # value removed by the support bundle',
    "  'api_key' = \"***\" # value removed by the support bundle",
    'url = "https://nms.example"',
    'splynx_integration = { enable_splynx = true, api_secret = "***", url = "https://crm" }',
    'powercode = { api_key = "***" }',
    'sonar = { api_key = "***", x = 1 }',
    'password = "***" # value removed by the support bundle',
    '# value removed by the support bundle',
    '# value removed by the support bundle',
    'after = 1',
    'passphrase = "***" # value removed by the support bundle',
    'this line = is [broken toml',
  ]);
});
