// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Damaged state files at lqosd's start (in-process lqosd on a workspace: fake dataplane attach, the
 * real shaping service forced into a dry run so no tc runs, the web server on 127.0.0.1:0).
 * applied_plan.json, planner_state.json, urgent_issues.json and lqusers.toml are each empty,
 * truncated or garbage. lqosd must start and stay up, warn naming each file, and behave safely:
 *   - applied plan → moved aside, "nothing known applied" (the next run is a full rebuild; an older
 *     backup is NOT taken for what the kernel holds);
 *   - planner state → moved aside, the newest readable backup restored (its class ids are used),
 *     else planning starts fresh;
 *   - urgent issues → moved aside, the backup restored, else an empty list;
 *   - users file → logins and first-run refused (503), first-run is NOT reopened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { BusClient } from '../../lib/bus/client.ts';
import { statePaths } from '../../lib/config/paths.ts';
import { serializePlan } from '../../lib/apply/appliedPlan.ts';
import { ShapingService, type ShapingRequest } from '../../lib/shaping/service.ts';
import { startWebServer } from '../../lib/web/server.ts';
import type { RunningDaemon } from '../../lib/daemon/daemon.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { Client } from '../support/http.ts';
import { buildPlan } from '../support/plan.ts';
import { ADMIN } from '../support/users.ts';
import { waitFor } from '../support/wait.ts';
import { workspaceFactory, type Workspace } from '../support/workspace.ts';

const newWorkspace = workspaceFactory();
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const NET = JSON.stringify({ AP_1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 } }) + '\n';
const CSV = [HEADER, 'a,A,a-d,Dev a,AP_1,,100.64.0.1,,1,1,10,5,', 'b,B,b-d,Dev b,AP_1,,100.64.0.2,,1,1,20,5,'].join('\n') + '\n';

/** A real (not dry-run) config on lo with the web UI on, so lqosd shapes at start. */
const conf = (dir: string) =>
  `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\n[single_interface]\ninterface = "lo"\ninternet_vlan = 2\nnetwork_vlan = 3\n[queues]\noverride_available_queues = 2\n`;

type Outcome = Awaited<ReturnType<ShapingService['run']>>['outcome'];

/** The real shaping service, forced into a dry run: nothing reaches tc. Keeps every outcome. */
function dryService(outcomes: Outcome[]) {
  const real = new ShapingService();
  return {
    run: async (req: ShapingRequest, env: Parameters<ShapingService['run']>[1]) => {
      const r = await real.run(req, { ...env, config: { ...env.config, queues: { ...env.config.queues, dry_run: true } } });
      outcomes.push(r.outcome);
      return r;
    },
  };
}

interface Started {
  d: RunningDaemon;
  bus: BusClient;
  web: Client;
  /** Every log line lqosd wrote (level, msg). */
  logs: { level: number; msg: string }[];
  /** The shaping runs' outcomes (their records hold the run's own log). */
  outcomes: Outcome[];
  stop(): Promise<void>;
}

async function start(w: Workspace): Promise<Started> {
  const logs: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as { level: number; msg: string });
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  let base = '';
  const outcomes: Outcome[] = [];
  const d = await startTestDaemon(w, {
    log,
    attachDataplane: async () => undefined,
    shaping: dryService(outcomes),
    shapeAtStart: true,
    web: async (ctx, sinks) => {
      const s = await startWebServer(ctx, { ...sinks, host: '127.0.0.1', port: 0, webRoot: join(w.dir, 'no-webui') });
      base = s.address;
      return s;
    },
  });
  const bus = new BusClient({ path: w.busPath });
  const stop = async () => {
    bus.close();
    await d.stop();
  };
  try {
    await waitFor(() => outcomes.length > 0, 30_000, 'the start-up run to finish');
  } catch (e) {
    await stop();
    throw e;
  }
  return { d, bus, web: new Client(base), logs, outcomes, stop };
}

const warned = (s: Started, re: RegExp) => s.logs.some((l) => l.level === 40 && re.test(l.msg));
const esc = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const asideOf = (path: string) => readdirSync(join(path, '..')).filter((n) => n.startsWith(`${path.split('/').pop()}.corrupt-`));

const DAMAGE: Record<string, (good: string) => string> = {
  empty: () => '',
  truncated: (good) => good.slice(0, Math.max(1, Math.floor(good.length / 2))),
  garbage: () => '\u0000\u00ff garbage \u0001 not a state file [[[',
};

for (const [kind, damage] of Object.entries(DAMAGE)) {
  test(`${kind} applied_plan.json, planner_state.json, urgent_issues.json, lqusers.toml: lqosd up, warnings name each file, safe behaviour`, async () => {
    const w = newWorkspace({ prefix: `lqosd-corrupt-${kind}-`, conf, runDir: true });
    const paths = statePaths(join(w.dir, 'state'));
    const users = join(w.dir, 'state', 'lqusers.toml');
    w.write('network.json', NET);
    w.write('ShapedDevices.csv', CSV);
    // Good state: an applied plan and planner state from a run, a users file with an admin.
    const s0 = await start(w);
    let plannerGood: string;
    try {
      plannerGood = readFileSync(paths.plannerState, 'utf8');
      writeFileSync(users, `[[users]]\nusername = "${ADMIN.username}"\npassword_hash = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY"\nrole = "admin"\n`, { mode: 0o600 });
    } finally {
      await s0.stop();
    }
    // As after a completed first run: the setup token of the first start is gone.
    rmSync(join(w.dir, 'state', 'first-run.token'), { force: true });
    const withBackups = kind === 'truncated';
    const goodUrgent = JSON.stringify({ version: 1, nextId: 2, issues: [{ id: '1', key: 'test:KEPT_ISSUE', source: 'test', severity: 'warning', code: 'KEPT_ISSUE', message: 'from before the crash', firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-01T00:00:00.000Z', count: 1, acknowledged: false }] });
    // The backups a later run would have made: planner state with a remembered, distinctive class id for "a".
    const plannerBak = JSON.parse(plannerGood);
    plannerBak.circuits.a = { queue: plannerBak.circuits.a.queue, minor: 0x77 };
    const damaged: Record<string, string> = {
      [paths.appliedPlan]: damage('{"nodes":[],"circuits":[],"mappings":[],"queues":2}'),
      [paths.plannerState]: damage(plannerGood),
      [paths.urgentIssues]: damage(goodUrgent),
      [users]: damage(readFileSync(users, 'utf8')),
    };
    for (const [p, text] of Object.entries(damaged)) writeFileSync(p, text);
    const appliedBak = serializePlan(buildPlan({ devices: CSV, network: NET }).plan);
    if (withBackups) {
      writeFileSync(`${paths.appliedPlan}.bak`, appliedBak);
      writeFileSync(`${paths.plannerState}.bak`, JSON.stringify(plannerBak));
      writeFileSync(`${paths.urgentIssues}.bak`, goodUrgent);
    }

    const s = await start(w);
    try {
      // Up, and stays up after the start-up run.
      assert.equal((await s.bus.request<'ping', any>('ping')) !== undefined, true);
      assert.equal(s.d.context.appliedPlan(), undefined, 'nothing known applied');

      // applied_plan.json: moved aside, warned, not replaced by anything; the run is a full rebuild.
      assert.ok(warned(s, new RegExp(`${esc(paths.appliedPlan)} is not a valid applied plan .*moved it to .*corrupt-.*nothing known applied`)), JSON.stringify(s.logs.filter((l) => l.level >= 40)));
      assert.equal(asideOf(paths.appliedPlan).length, 1);
      assert.equal(readFileSync(join(paths.appliedPlan, '..', asideOf(paths.appliedPlan)[0]!), 'utf8'), damaged[paths.appliedPlan], 'kept for inspection');
      const startRun = s.outcomes[0]!.records.map((r) => r.msg);
      assert.ok(startRun.some((m) => /dry run: nothing applied \(a real run would do a full rebuild\)/.test(m)), startRun.join('\n'));
      assert.ok(!existsSync(paths.appliedPlan), 'no backup is taken for the plan in force');
      if (withBackups) assert.equal(readFileSync(`${paths.appliedPlan}.bak`, 'utf8'), appliedBak);

      // planner_state.json: moved aside; the backup restored and used, or a fresh start.
      assert.equal(asideOf(paths.plannerState).length, 1);
      const planner = JSON.parse(readFileSync(paths.plannerState, 'utf8'));
      if (withBackups) {
        assert.ok(warned(s, new RegExp(`${esc(paths.plannerState)} is not a valid planner state .*restored the newest readable backup ${esc(paths.plannerState)}\\.bak`)));
        assert.equal(planner.circuits.a.minor, 0x77, 'the class id remembered in the backup is kept');
      } else {
        assert.ok(warned(s, new RegExp(`${esc(paths.plannerState)} is not a valid planner state .*planning starts fresh`)));
        assert.ok(planner.circuits.a, 'a fresh state was planned and saved');
      }

      // urgent_issues.json: moved aside; the backup's issue is back, or the list is empty.
      assert.equal(asideOf(paths.urgentIssues).length, 1);
      assert.ok(warned(s, new RegExp(`${esc(paths.urgentIssues)} is not a valid urgent issue list`)));
      const issues = (await s.bus.request<'urgent_list', any>('urgent_list')).issues as { code: string }[];
      assert.equal(issues.some((i) => i.code === 'KEPT_ISSUE'), withBackups);

      // lqusers.toml: not "no users": first-run stays closed, logins refused with 503, the file untouched.
      const st = await s.web.get('/api/auth/status');
      assert.equal(st.status, 200, st.text);
      assert.notEqual(st.json.firstRun, true, `first-run must not reopen for a ${kind} users file: ${st.text}`);
      const fr = await s.web.post('/api/auth/first-run', { username: 'intruder', password: 'intruder-pass-1' });
      assert.ok(fr.status >= 400, `first-run refused: ${fr.status} ${fr.text}`);
      const login = await s.web.post('/api/auth/login', ADMIN);
      assert.equal(login.status, 503, login.text);
      assert.equal(readFileSync(users, 'utf8'), damaged[users], 'the users file is left for the operator');
      assert.ok(!existsSync(join(w.dir, 'state', 'first-run.token')), 'no first-run setup token is offered');

      // Still up: a refresh runs and answers.
      const again = await s.bus.request<'refresh', any>('refresh');
      assert.equal(again.exitCode, 0, JSON.stringify(again.records?.slice?.(0, 5)));
    } finally {
      await s.stop();
    }
  });
}
