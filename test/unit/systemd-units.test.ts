/**
 * The systemd units' hardening (issue 14) as installed by scripts/install-services, and the
 * config file mode the installer leaves: read back from the installed files with stat, and parsed
 * by `systemd-analyze verify` where it exists.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/paths.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lqos-units-'));
  dirs.push(d);
  return d;
}
const mode = (p: string) => statSync(p).mode & 0o777;

async function install(dir: string, conf: string, extra: string[] = []) {
  const r = await execa(join(repoRoot, 'scripts/install-services'), ['--unit-dir', dir, '--conf', conf, '--no-systemctl', ...extra], { reject: false, all: true });
  assert.equal(r.exitCode, 0, r.all);
  return String(r.all);
}

/** `Key=value` lines of one section, [Service] by default (a key may repeat). */
function directives(unit: string, want = '[Service]'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) section = line;
    if (section !== want || line.startsWith('#') || !line.includes('=')) continue;
    const i = line.indexOf('=');
    const k = line.slice(0, i);
    out.set(k, [...(out.get(k) ?? []), line.slice(i + 1)]);
  }
  return out;
}
const one = (d: Map<string, string[]>, k: string) => {
  const v = d.get(k);
  assert.ok(v && v.length === 1, `${k} set exactly once (got ${JSON.stringify(v)})`);
  return v[0];
};
const words = (s: string) => s.split(/\s+/).filter(Boolean);

let installed: { dir: string; lqosd: Map<string, string[]>; scheduler: Map<string, string[]>; schedulerText: string } | undefined;
async function units() {
  if (!installed) {
    const dir = tmp();
    await install(dir, join(dir, 'lqos.conf'));
    const schedulerText = readFileSync(join(dir, 'lqos_scheduler.service'), 'utf8');
    installed = { dir, lqosd: directives(readFileSync(join(dir, 'lqosd.service'), 'utf8')), scheduler: directives(schedulerText), schedulerText };
  }
  return installed;
}

test('lqosd.service: sandboxed, with exactly the capabilities it needs and a memory bound', async () => {
  const { lqosd: d } = await units();
  assert.equal(one(d, 'NoNewPrivileges'), 'yes');
  assert.equal(one(d, 'ProtectSystem'), 'strict');
  assert.equal(one(d, 'ProtectHome'), 'yes');
  assert.equal(one(d, 'UMask'), '0077');
  assert.equal(one(d, 'PrivateTmp'), 'yes');
  assert.deepEqual(words(one(d, 'RestrictAddressFamilies')).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  const caps = words(one(d, 'CapabilityBoundingSet'));
  for (const c of ['CAP_NET_ADMIN', 'CAP_BPF', 'CAP_SYS_ADMIN', 'CAP_PERFMON']) assert.ok(caps.includes(c), c);
  for (const c of ['CAP_SYS_MODULE', 'CAP_NET_RAW', 'CAP_SYS_PTRACE', 'CAP_SETUID']) assert.ok(!caps.includes(c), `${c} not granted`);
  assert.match(one(d, 'MemoryMax'), /^\d+[KMGT]$/);
  // Where lqosd writes: state + inputs (default /opt/libreqos), the config's directory, bpffs, the probe's netns dir, its run dir.
  const rw = words(one(d, 'ReadWritePaths')).map((p) => p.replace(/^-/, ''));
  for (const p of ['/opt/libreqos', '/etc', '/sys/fs/bpf', '/run/netns', `${repoRoot}/dataplane/build`]) assert.ok(rw.includes(p), `ReadWritePaths has ${p}`);
  assert.equal(one(d, 'RuntimeDirectory'), 'lqos');
  assert.equal(one(d, 'RuntimeDirectoryPreserve'), 'yes', 'the bus dir and locks survive a restart');
});

test('lqos_scheduler.service: no kernel capabilities, read-only system, and NO PrivateTmp (/tmp logs contract)', async () => {
  const { scheduler: d, schedulerText } = await units();
  assert.equal(one(d, 'NoNewPrivileges'), 'yes');
  assert.equal(one(d, 'ProtectSystem'), 'strict');
  assert.equal(one(d, 'ProtectHome'), 'yes');
  assert.equal(one(d, 'UMask'), '0077');
  assert.deepEqual(words(one(d, 'RestrictAddressFamilies')).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  const caps = words(one(d, 'CapabilityBoundingSet'));
  for (const c of ['CAP_NET_ADMIN', 'CAP_BPF', 'CAP_SYS_ADMIN', 'CAP_PERFMON', 'CAP_NET_RAW']) assert.ok(!caps.includes(c), `${c} not granted`);
  // Only what replacing input files in a directory of another account needs (integrations write them).
  assert.deepEqual(caps.sort(), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER']);
  // Failed integration output must land in the host's /tmp (docs/OPERATIONS.md "Scheduler logs").
  assert.ok(!d.has('PrivateTmp'), 'the scheduler must not set PrivateTmp');
  assert.doesNotMatch(schedulerText, /^\s*PrivateTmp\s*=/m);
  const rw = words(one(d, 'ReadWritePaths')).map((p) => p.replace(/^-/, ''));
  for (const p of ['/tmp', '/run/lqos', '/opt/libreqos']) assert.ok(rw.includes(p), `ReadWritePaths has ${p}`);
  assert.ok(d.has('MemoryMax'));
  assert.equal(one(d, 'ExecReload'), '/bin/kill -HUP $MAINPID');
  // Started even when lqosd fails to start (it waits for the bus itself), stopped and restarted with it.
  const unit = directives(schedulerText, '[Unit]');
  assert.ok(!unit.has('Requires'), 'Requires=lqosd.service would leave the scheduler "dependency failed" when lqosd fails');
  assert.ok((unit.get('Wants') ?? []).flatMap(words).includes('lqosd.service'), `Wants: ${JSON.stringify(unit.get('Wants'))}`);
  assert.equal(one(unit, 'PartOf'), 'lqosd.service');
});

test('systemd-analyze verify accepts the installed units', async (t) => {
  const which = await execa('sh', ['-c', 'command -v systemd-analyze'], { reject: false });
  if (which.exitCode !== 0) return t.skip('systemd-analyze not installed');
  const { dir } = await units();
  const v = await execa('systemd-analyze', ['verify', join(dir, 'lqosd.service'), join(dir, 'lqos_scheduler.service')], { reject: false, all: true, cwd: dir });
  assert.equal(v.exitCode, 0, v.all);
  assert.equal(String(v.all).trim(), '', v.all);
});

test('install-services: a new config is 0600; an existing 0644 config and its backups are narrowed to 0600, contents kept', async () => {
  const fresh = tmp();
  await install(fresh, join(fresh, 'lqos.conf'));
  assert.equal(mode(join(fresh, 'lqos.conf')), 0o600);
  assert.equal(mode(join(fresh, 'lqosd.service')), 0o644, 'unit files stay world-readable (systemd reads them)');

  const old = tmp();
  const conf = join(old, 'lqos.conf');
  writeFileSync(conf, 'lqos_directory = "/x"\n[uisp_integration]\ntoken = "kept"\n');
  writeFileSync(`${conf}.bak`, 'old\n');
  writeFileSync(`${conf}.bak.1`, 'older\n');
  for (const f of [conf, `${conf}.bak`, `${conf}.bak.1`]) chmodSync(f, 0o644);
  chmodSync(`${conf}.bak.1`, 0o400); // already tighter: stays as it is
  const out = await install(old, conf);
  assert.match(out, /lqos\.conf: narrowed to 600/);
  assert.equal(mode(conf), 0o600);
  assert.equal(mode(`${conf}.bak`), 0o600);
  assert.equal(mode(`${conf}.bak.1`), 0o400);
  assert.equal(readFileSync(conf, 'utf8'), 'lqos_directory = "/x"\n[uisp_integration]\ntoken = "kept"\n');
  assert.ok(existsSync(`${conf}.bak`));
});

test('install-services: a drop-in gives both units write access to the configured lqos_directory and state_directory', async (t) => {
  const d = tmp();
  const conf = join(d, 'lqos.conf');
  writeFileSync(conf, 'lqos_directory = "/srv/isp/src"\nstate_directory = "/var/lib/lqos-test"\n');
  const out = await install(d, conf);
  for (const u of ['lqosd.service', 'lqos_scheduler.service']) {
    const dropin = readFileSync(join(d, `${u}.d`, '10-lqos-paths.conf'), 'utf8');
    const dv = directives(dropin);
    assert.deepEqual(dv.get('ReadWritePaths'), ['-/srv/isp/src -/var/lib/lqos-test'], dropin);
    assert.deepEqual(dv.get('ExecStartPre'), ['+/bin/mkdir -p /srv/isp/src /var/lib/lqos-test'], dropin);
    assert.equal(dv.get('ProtectHome'), undefined, 'directories outside /home keep ProtectHome=yes');
  }
  assert.match(out, /10-lqos-paths\.conf \(ReadWritePaths=-\/srv\/isp\/src -\/var\/lib\/lqos-test\)/);
  assert.ok(!existsSync('/srv/isp/src'), 'the installer itself creates no directories');

  // Under /home: ProtectHome is lifted for these units only.
  const h = tmp();
  writeFileSync(join(h, 'lqos.conf'), 'lqos_directory = "/home/ops/libreqos/src"\n');
  await install(h, join(h, 'lqos.conf'));
  const homeDropin = directives(readFileSync(join(h, 'lqosd.service.d', '10-lqos-paths.conf'), 'utf8'));
  assert.deepEqual(homeDropin.get('ReadWritePaths'), ['-/home/ops/libreqos/src -/home/ops/libreqos/state']);
  assert.deepEqual(homeDropin.get('ProtectHome'), ['no']);

  // A checkout under /root (root's clone, run in place): its programs must stay readable.
  const r0 = tmp();
  writeFileSync(join(r0, 'lqos.conf'), 'lqos_directory = "/srv/isp/src"\n');
  await install(r0, join(r0, 'lqos.conf'), ['--installed-at', '/root/lqos-ts']);
  const rootUnit = readFileSync(join(r0, 'lqosd.service'), 'utf8');
  assert.match(rootUnit, /^ExecStart=\/root\/lqos-ts\/lqosd$/m);
  assert.deepEqual(directives(readFileSync(join(r0, 'lqosd.service.d', '10-lqos-paths.conf'), 'utf8')).get('ProtectHome'), ['read-only'], 'a checkout under /root is readable, not writable');

  // A config that cannot be read: the units are still installed, with a message saying what to fix.
  const bad = tmp();
  writeFileSync(join(bad, 'lqos.conf'), 'lqos_directory = [\n');
  const r = await execa(join(repoRoot, 'scripts/install-services'), ['--unit-dir', bad, '--conf', join(bad, 'lqos.conf'), '--no-systemctl'], { reject: false, all: true });
  assert.equal(r.exitCode, 0, r.all);
  assert.match(String(r.all), /could not read the directories from .*lqos\.conf .*run this script again/s);
  assert.ok(!existsSync(join(bad, 'lqosd.service.d')));

  const which = await execa('sh', ['-c', 'command -v systemd-analyze'], { reject: false });
  if (which.exitCode !== 0) return t.skip('systemd-analyze not installed');
  const v = await execa('systemd-analyze', ['verify', join(d, 'lqosd.service')], { reject: false, all: true, cwd: d });
  assert.equal(v.exitCode, 0, v.all);
});
