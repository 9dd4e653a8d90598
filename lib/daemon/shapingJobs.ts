/**
 * lqosd's shaping jobs: bus `refresh` (shape the configured input files) and bus `submit_plan`
 * (shape the submitted inputs). Both run the shaping service one at a time, record what is in
 * force (applied plan, last apply), and raise or resolve urgent issues.
 */
import { readFileSync } from 'node:fs';
import type { ShapingStatus } from '../api/status.ts';
import type { UrgentIssueStore } from '../api/urgent.ts';
import type { ResolvedConfig } from '../config/resolve.ts';
import type { ShapingPlan } from '../model.ts';
import { BusError, type RequestOf } from '../bus/protocol.ts';
import { EXIT } from '../shaping/exitCodes.ts';
import { readShapingInputs, type ShapingInputs } from '../shaping/inputs.ts';
import { failedOutcome, type ShapingOutcome, type ShapingRequest, type ShapingService } from '../shaping/service.ts';
import type { Log } from '../util/log.ts';
import { RecordingLog, recordLines } from '../util/logRecords.ts';
import type { DataplaneHost } from './dataplaneHost.ts';
import type { JobRunner } from './jobs.ts';

const REFRESH_KEY = 'lqosd:refresh';
const FALLBACK_KEY = 'lqosd:qdisc-fallback';

export interface ShapingJobsDeps {
  jobs: JobRunner;
  service: Pick<ShapingService, 'run'>;
  host: DataplaneHost;
  config: () => ResolvedConfig;
  status: ShapingStatus;
  urgent: UrgentIssueStore;
  log: Log;
  now: () => Date;
  /** Called with the plan now in force after each successful apply. */
  onApplied: (plan: ShapingPlan) => void;
}

export class ShapingJobs {
  constructor(private readonly d: ShapingJobsDeps) {}

  /** Bus `refresh`: shape ShapedDevices.csv and network.json in lqos_directory. */
  async refresh(): Promise<ShapingOutcome> {
    this.refuseWhileDegraded();
    return this.d.jobs.run('refresh', async () => {
      this.d.log.info('refresh: running the LibreQoS pipeline');
      const t0 = performance.now();
      const missing = new RecordingLog();
      const inputs = readShapingInputs(this.d.config().inputs, missing);
      const outcome = inputs ? await this.apply({ inputs }) : failedOutcome(EXIT.invalidInput, missing.records, t0);
      if (outcome.ok) {
        this.d.urgent.resolveKey(REFRESH_KEY);
        this.d.log.info(`refresh: finished in ${Math.round(outcome.seconds * 1000)} ms`);
      } else {
        this.d.log.error(`refresh: failed with exit code ${outcome.exitCode}`);
        const preview = recordLines(outcome.records, 10).join('\n');
        this.d.urgent.submit({ source: 'lqosd', severity: 'error', code: 'REFRESH_FAILED', message: `shaping refresh failed with exit code ${outcome.exitCode}:\n${preview}`, dedupeKey: REFRESH_KEY });
      }
      return outcome;
    });
  }

  /** Bus `submit_plan`: shape the inputs given inline or by path. */
  async submit(r: RequestOf<'submit_plan'>): Promise<ShapingOutcome> {
    this.refuseWhileDegraded();
    const inputs: ShapingInputs = {
      devicesText: readInput(r.devicesCsv, r.devicesPath, 'ShapedDevices file'),
      networkText: readInput(r.networkJson, r.networkPath, 'network file'),
      devicesFile: r.devicesPath ?? 'ShapedDevices.csv',
      networkFile: r.networkPath ?? 'network.json',
    };
    return this.d.jobs.run('plan apply', () => this.apply({ inputs, updateonly: r.updateonly, verbose: r.verbose }));
  }

  private refuseWhileDegraded(): void {
    const { status, config } = this.d;
    if (status.degraded && !config().config.queues.dry_run) throw new BusError('unavailable', status.degraded);
  }

  private async apply(req: ShapingRequest): Promise<ShapingOutcome> {
    const { host, config, log } = this.d;
    const rc = config();
    const { outcome, plan } = await this.d.service.run(req, { config: rc.config, interfaces: rc.interfaces, queues: host.queues, sink: host.sink, log });
    if (outcome.ok) {
      this.d.status.lastApply = { at: this.d.now().toISOString(), mode: outcome.mode, commands: outcome.commands, seconds: +outcome.seconds.toFixed(3) };
      if (plan) this.d.onApplied(plan);
    }
    this.noteFallbacks(outcome.leafFallbacks);
    return outcome;
  }

  /** This kernel lacks cake/fq_codel: shown in the status and raised once as an urgent issue. */
  private noteFallbacks(fb: Record<string, string>): void {
    if (Object.keys(fb).length === 0) return;
    this.d.status.leafFallbacks = fb;
    this.d.urgent.submit({
      source: 'lqosd',
      severity: 'warning',
      code: 'QDISC_FALLBACK',
      message: `This kernel lacks ${Object.keys(fb).join(' and ')}; circuits use ${[...new Set(Object.values(fb))].join(', ')} instead (shaping works, with less fairness/AQM). Load sch_cake / sch_fq_codel to restore them.`,
      context: fb,
      dedupeKey: FALLBACK_KEY,
    });
  }
}

function readInput(text: string | undefined, path: string | undefined, what: string): string {
  if (text !== undefined) return text;
  try {
    return readFileSync(path!, 'utf8');
  } catch (e) {
    throw new BusError('failed', `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}
