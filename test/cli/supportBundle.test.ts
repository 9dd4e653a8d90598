/**
 * `./LibreQoS support-bundle`: one tar.gz with the box's state and no credential in any file —
 * every canary of test/support/configs.ts's webConfig, a secret-named environment variable and a
 * token echoed into a kept scheduler log are checked against every extracted file. Run in a network
 * namespace whose eth0/eth1 (the config's bridge) carry an HTB tree, so the tc dump is real.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SECRETS, webConfig } from '../support/configs.ts';
import { repoRoot } from '../support/paths.ts';
import { tempDir } from '../support/workspace.ts';

const NS = `lqsb-${process.pid}`;
const ENV_CANARY = 'REST-ENV-TOKEN-999';
const LOG_CANARY = SECRETS.uisp;
const PLANTED = { link: 'ROOT-ONLY-CANARY-777', foreign: 'FOREIGN-CANARY-555' };
let dir = '';

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

before(() => {
  dir = tempDir('lqos-support-');
  writeFileSync(join(dir, 'lqos.conf'), `# operator's comment: keep me\n${webConfig(dir)}`);
  writeFileSync(join(dir, 'network.json'), '{}\n');
  writeFileSync(join(dir, 'ShapedDevices.csv'), 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\nc1,Alice,d1,Alice router,,,100.64.0.1,,5,1,100,20,\n');
  mkdirSync(join(dir, 'state', 'shaping'), { recursive: true });
  mkdirSync(join(dir, 'schedlogs'));
  writeFileSync(join(dir, 'schedlogs', 'lqos_scheduler__uisp_20261205_101010.log'), `GET /nms/api/v2.1/sites x-auth-token: ${LOG_CANARY}\nHTTP 401\n`);
  // What another local user can plant where the scheduler keeps its logs (/tmp): a link to a file
  // only root may read, a FIFO (reading it would block the bundle), a file of their own.
  writeFileSync(join(dir, 'root-only.txt'), `${PLANTED.link}\n`, { mode: 0o600 });
  symlinkSync(join(dir, 'root-only.txt'), join(dir, 'schedlogs', 'lqos_scheduler__evil_20261205_101011.log'));
  sh('mkfifo', [join(dir, 'schedlogs', 'lqos_scheduler__fifo_20261205_101012.log')]);
  writeFileSync(join(dir, 'schedlogs', 'lqos_scheduler__foreign_20261205_101013.log'), `${PLANTED.foreign}\n`);
  chownSync(join(dir, 'schedlogs', 'lqos_scheduler__foreign_20261205_101013.log'), 65534, 65534);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['-n', NS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  sh('ip', ['netns', 'exec', NS, 'tc', 'qdisc', 'add', 'dev', 'eth1', 'root', 'handle', '1:', 'htb', 'default', '2']);
  sh('ip', ['netns', 'exec', NS, 'tc', 'class', 'add', 'dev', 'eth1', 'parent', '1:', 'classid', '1:5', 'htb', 'rate', '10mbit']);
});
after(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  if (dir) spawnSync('rm', ['-rf', dir]);
});

function bundle(name: string, extra: string[] = []) {
  const out = join(dir, `${name}.tar.gz`);
  const r = spawnSync(
    'ip',
    ['netns', 'exec', NS, join(repoRoot, 'LibreQoS'), 'support-bundle', '--config', join(dir, 'lqos.conf'), '--out', out,
      '--scheduler-log-dir', join(dir, 'schedlogs'), ...extra],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, LQOS_REST_TOKEN: ENV_CANARY, LQOS_RUN_DIR: join(dir, 'run') } },
  );
  assert.equal(r.status, 0, `support-bundle failed: ${r.stderr}\n${r.stdout}`);
  const x = join(dir, `${name}-x`);
  mkdirSync(x);
  sh('tar', ['-xzf', out, '-C', x]);
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else files.set(p.slice(x.length + '/lqos-support/'.length), readFileSync(p, 'utf8'));
    }
  };
  walk(x);
  return { out, stdout: r.stdout, files };
}

test('support-bundle: state, tc dump, logs and config in one tar.gz; no credential in any file', () => {
  const { out, stdout, files } = bundle('plain');
  assert.match(stdout, /support-bundle: wrote .*plain\.tar\.gz \(\d+ KiB, \d+ files, mode 0600\)/);
  assert.equal(statSync(out).mode & 0o777, 0o600, 'the archive must be mode 0600');
  for (const f of ['README.txt', 'lqos.conf', 'versions.txt', 'system.txt', 'tc/eth0.txt', 'tc/eth1.txt', 'dataplane.txt', 'lqosd/status.json', 'logs/journal.txt', 'state/listing.txt', 'inputs/summary.txt']) {
    assert.ok(files.has(f), `${f} missing from the bundle (has: ${[...files.keys()].join(', ')})`);
  }
  const canaries = [...Object.values(SECRETS), ENV_CANARY];
  const leaks = [...files].flatMap(([name, text]) => canaries.filter((c) => text.includes(c)).map((c) => `${name}: ${c}`));
  assert.deepEqual(leaks, [], 'credentials found in the bundle');

  const conf = files.get('lqos.conf')!;
  assert.match(conf, /^# operator's comment: keep me$/m, 'lqos.conf keeps its comments');
  assert.match(conf, /^to_network = "eth1"$/m, 'non-secret keys stay as written');
  assert.match(conf, /^token = "\*\*\*" # value removed by the support bundle$/m);
  assert.match(conf, /^snmp_community = "\*\*\*"/m);

  assert.match(files.get('tc/eth1.txt')!, /qdisc htb 1: root/, 'the tc dump of the shaping interface');
  assert.match(files.get('tc/eth1.txt')!, /class htb 1:5 root .*rate 10Mbit/);
  assert.match(files.get('lqosd/status.json')!, /lqosd did not answer "status"/, 'no lqosd here: the bundle says so');
  assert.match(files.get('versions.txt')!, /^lqos-ts \d+\.\d+\.\d+ at /m);
  const kept = files.get('logs/lqos_scheduler__uisp_20261205_101010.log');
  assert.ok(kept, 'the kept scheduler log is in the bundle');
  assert.match(kept, /x-auth-token: \*\*\*/, 'the token in the scheduler log is replaced');
  // Planted files are left out, and the bundle says which and why (it finished: the FIFO did not block it).
  const planted = [...files].filter(([, text]) => text.includes(PLANTED.link) || text.includes(PLANTED.foreign)).map(([n]) => n);
  assert.deepEqual(planted, [], 'a planted log (link target or another user\'s file) is in the bundle');
  const skipped = files.get('logs/skipped.txt') ?? '';
  assert.match(skipped, /lqos_scheduler__evil_20261205_101011\.log: a symbolic link, not followed/);
  assert.match(skipped, /lqos_scheduler__fifo_20261205_101012\.log: not a regular file/);
  assert.match(skipped, /lqos_scheduler__foreign_20261205_101013\.log: owned by uid 65534, not by the scheduler's user \(uid 0\)/);
  assert.match(files.get('inputs/summary.txt')!, /ShapedDevices\.csv: \d+ bytes, 2 lines, sha256 [0-9a-f]{64}/);
  assert.match(files.get('inputs/summary.txt')!, /contents not included/);
  assert.ok(![...files.keys()].some((n) => n.includes('lqusers') || n.endsWith('.csv')), 'no users file, no customer inputs by default');
});

test('support-bundle --include-inputs adds the input files as they are', () => {
  const { files } = bundle('inputs', ['--include-inputs']);
  assert.equal(files.get('inputs/ShapedDevices.csv'), readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'));
  assert.equal(files.get('inputs/network.json'), '{}\n');
});

test('support-bundle --out naming an existing file or link: nothing is overwritten, exit 8, the message says what to do', () => {
  const target = join(dir, 'precious.txt');
  writeFileSync(target, 'KEEP\n');
  const link = join(dir, 'planted-out.tar.gz');
  symlinkSync(target, link);
  for (const out of [link, target]) {
    const r = spawnSync(join(repoRoot, 'LibreQoS'), ['support-bundle', '--config', join(dir, 'lqos.conf'), '--out', out, '--scheduler-log-dir', join(dir, 'schedlogs')], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, LQOS_RUN_DIR: join(dir, 'run') },
    });
    assert.equal(r.status, 8, `${out}: ${r.stderr}\n${r.stdout}`);
    assert.match(r.stderr, /already has that name; nothing was overwritten\. Pass another --out path/);
  }
  assert.equal(readFileSync(target, 'utf8'), 'KEEP\n', 'the link target was overwritten');
  assert.ok(lstatSync(link).isSymbolicLink());
});
