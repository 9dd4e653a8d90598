// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Fault: kill -9 of the scheduler while an integration runs (issue 14). The real `./scheduler`
 * runs the real UISP integration child (bin/integration.ts) against a local CRM that accepts the
 * connection and never answers; once the child is waiting on it, the scheduler gets SIGKILL. Then,
 * read back from /proc and the disk: no process of that integration is left (the parent pipe's
 * end-of-file stops it, lib/util/parentWatch.ts), no temp file is left, and the operator's
 * ShapedDevices.csv / network.json are byte-identical to before.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { signalGroup, startTimeOf } from '../../lib/util/processes.ts';
import { loConfig } from '../support/configs.ts';
import { repoRoot } from '../support/paths.ts';
import { makeSchedWorkspace, startTestDaemon } from '../scheduler/helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  cmdline: string;
}

/** Every process on the host, from /proc (pid, parent, process group, command line). */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) in parentheses: state ppid pgrp ...
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z') continue; // a zombie has exited; only its parent's wait is missing
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      out.push({ pid: Number(e), ppid: Number(rest[1]), pgid: Number(rest[2]), cmdline });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Files whose names mark a temp file of an atomic write (`x.tmp-<pid>-<hex>`, `x.<pid>.<t>.tmp`). */
function tempFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.tmp-|\.tmp$|\.prev$/.test(n)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** A CRM that takes every request and never answers. */
async function silentCrm(): Promise<{ url: string; requests: IncomingMessage[]; server: Server }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req) => {
    requests.push(req); // never answered
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

test('kill -9 of the scheduler mid-integration: no orphan integration, no temp files, inputs unchanged', async () => {
  const crm = await silentCrm();
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        crm.server.closeAllConnections();
        crm.server.close(() => r());
      }),
  );
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  // A long integration timeout: only the scheduler's death may stop the child here.
  w.writeConfig(
    loConfig(w.dir, 'integration_timeout_secs = 600\n') +
      `[uisp_integration]\nenable_uisp = true\nurl = "${crm.url}"\ntoken = "tok-scheduler-kill"\nsite = "Tower"\n`,
  );
  const before = { devices: readFileSync(w.devices), network: readFileSync(w.network) };
  const d = await startTestDaemon(w);
  cleanups.push(() => d.stop());

  const sched = spawn(join(repoRoot, 'scheduler'), ['--config', w.config], {
    cwd: repoRoot,
    stdio: 'ignore',
    env: { ...process.env, LQOS_LOG_FORMAT: 'json', LQOS_BUS_PATH: w.busPath, LQOS_RUN_DIR: w.runDir, LQOS_SCHEDULER_LOG_DIR: w.logDir, TMPDIR: w.dir },
  });
  const schedPid = sched.pid!;
  const exited = new Promise<void>((r) => sched.once('exit', () => r()));
  const schedStarted = startTimeOf(schedPid);
  cleanups.push(() => signalGroup(schedPid, 'SIGKILL', schedStarted)); // never a later owner of the PID

  // The integration child is running and waiting on the CRM.
  await waitFor('the UISP request', () => (crm.requests.length > 0 ? true : undefined), 60_000);
  const child = await waitFor(
    'the integration child in /proc (bin/integration.ts through tsx, or the compiled build/bin/integration.mjs)',
    () => processes().find((p) => p.ppid === schedPid && /bin\/integration\.(ts|mjs)\b/.test(p.cmdline) && p.cmdline.includes(w.config)),
    10_000,
  );
  const childStarted = startTimeOf(child.pid);
  // Only matters if an assertion below failed: leave no orphan behind (and never a later owner of the PID).
  cleanups.push(() => signalGroup(child.pid, 'SIGKILL', childStarted));
  assert.equal(child.pgid, child.pid, 'the integration runs as its own process group');
  const groupBefore = processes().filter((p) => p.pgid === child.pid);
  assert.ok(groupBefore.length >= 1);

  process.kill(schedPid, 'SIGKILL');
  await exited;

  // The whole integration group goes away on its own (the HTTP timeout alone would take 30 s+ per attempt).
  const left = await waitFor(
    'the integration group to end',
    () => {
      const ps = processes().filter((p) => p.pgid === child.pid || p.pid === child.pid || p.cmdline.includes(w.config));
      return ps.length === 0 ? ps : undefined;
    },
    10_000,
  ).catch(() => processes().filter((p) => p.pgid === child.pid || p.cmdline.includes(w.config)));
  assert.deepEqual(left.map((p) => `${p.pid} ${p.cmdline}`), [], 'no process of the killed scheduler\'s integration remains');

  assert.deepEqual(tempFiles(w.dir), [], 'no temp files in the input or state directory');
  assert.ok(readFileSync(w.devices).equals(before.devices), 'ShapedDevices.csv byte-identical');
  assert.ok(readFileSync(w.network).equals(before.network), 'network.json byte-identical');
});
