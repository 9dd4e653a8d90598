/**
 * lqosd's apply service (bus `submit_plan`): validates, plans and compiles the submitted inputs
 * and applies the difference to the kernel through the dataplane lqosd already owns — the same
 * core as the LibreQoS command's direct path (lib/run/shapingRun.ts). Runs are serialised by the
 * daemon. The run's log lines are returned to the client so `LibreQoS` prints them.
 */
import { pino } from 'pino';
import { interfacesOf } from '../config/load.ts';
import type { LeafQdisc, ShapingPlan } from '../model.ts';
import { dataplaneMappingSink } from '../run/kernelHooks.ts';
import { EXIT } from '../run/exitCodes.ts';
import { hostQueueCount } from '../run/queueCount.ts';
import { planAndApply } from '../run/shapingRun.ts';
import { readIfExists, statePaths } from '../run/stateFiles.ts';
import { deserializePlan } from '../apply/appliedPlan.ts';
import type { ApplyPlanHandler, ApplyReport } from './daemon.ts';

export interface ApplyServiceOptions {
  /** bpffs directory of the pinned maps lqosd attached. */
  pinRoot: string;
  /** Probe once per daemon: qdisc kinds missing on this kernel → fallback leaves. */
  substitutes?: () => Promise<Record<string, LeafQdisc> | undefined>;
}

export function createApplyService(opts: ApplyServiceOptions): ApplyPlanHandler {
  let substitutes: Promise<Record<string, LeafQdisc> | undefined> | undefined;
  return async (req, ctx): Promise<ApplyReport> => {
    const t0 = performance.now();
    const lines: string[] = [];
    // Collect the run's log for the client; mirror warnings and errors into lqosd's own log.
    const log = pino(
      { level: 'debug', base: undefined },
      {
        write: (line: string) => {
          lines.push(line.trimEnd());
          try {
            const j = JSON.parse(line) as { level: number; msg: string };
            if (j.level >= 40) ctx.log[j.level >= 50 ? 'error' : 'warn'](`apply: ${j.msg}`);
          } catch {
            /* not JSON */
          }
        },
      },
    );
    const config = ctx.config();
    const ifaces = interfacesOf(config);
    const dryRun = config.queues.dry_run;
    const fail = (code: number, message: string): ApplyReport => {
      log.error(message);
      return { ok: false, mode: 'none', commands: 0, seconds: (performance.now() - t0) / 1000, exitCode: code, log: lines };
    };
    if (!ifaces) return fail(EXIT.config, 'the configuration has neither [bridge] nor [single_interface]');
    const queues = hostQueueCount(config, ifaces, dryRun, log);
    if (queues === null) return fail(EXIT.config, 'cannot size the queues');
    if (!dryRun && opts.substitutes) substitutes ??= opts.substitutes();
    const subs = dryRun ? undefined : await substitutes;
    const leafFallbacks: Record<string, string> = {};
    for (const [kind, leaf] of Object.entries(subs ?? {})) {
      leafFallbacks[kind] = [leaf.kind, ...leaf.args].join(' ');
      log.warn({ code: 'qdisc-fallback', planned: kind, using: leafFallbacks[kind] }, `${kind} is not available in this kernel; circuits planned with ${kind} use ${leafFallbacks[kind]}`);
    }
    const r = await planAndApply({
      config,
      ifaces,
      queues,
      inputs: {
        devicesFile: req.devicesFile ?? 'ShapedDevices.csv',
        networkFile: req.networkFile ?? 'network.json',
        devicesText: req.devicesCsv,
        networkText: req.networkJson,
      },
      paths: statePaths(config.state_directory),
      log,
      dryRun,
      updateonly: req.updateonly ?? false,
      verbose: req.verbose ?? false,
      substitute: subs,
      sinkFor: dryRun ? undefined : async () => dataplaneMappingSink(opts.pinRoot),
    });
    const plan: ShapingPlan | undefined = r.code === EXIT.ok && !dryRun ? r.plan : undefined;
    return {
      ok: r.code === EXIT.ok,
      mode: r.report?.mode ?? 'none',
      commands: r.report?.tcCommands ?? 0,
      seconds: (performance.now() - t0) / 1000,
      plan,
      exitCode: r.code,
      summary: r.report?.summary,
      leafFallbacks,
      log: lines,
    };
  };
}

/** The plan in force according to the state directory (re-adopted when lqosd starts). */
export function appliedPlanOnDisk(stateDirectory: string): ShapingPlan | undefined {
  return deserializePlan(readIfExists(statePaths(stateDirectory).appliedPlan));
}
