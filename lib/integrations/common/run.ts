/**
 * What every integration's `run()` shares: its options, the options of its requests and the final
 * build → validate → write step.
 */
import type { TopologyBuilder } from './graph.ts';
import type { BuildResult, IntegrationSummary } from './graphModel.ts';
import type { HttpOptions, RequestOptions } from './http.ts';
import type { IntegrationLogger } from './log.ts';
import { formatIssue } from '../../inputs/validate.ts';
import { validateIntegrationOutput, writeIntegrationOutput } from './output.ts';
import { IntegrationError } from './errors.ts';

export interface RunOptions {
  log: IntegrationLogger;
  /** Directory receiving network.json and ShapedDevices.csv (normally `lqos_directory`). */
  outDir: string;
  /** Build and validate, but write nothing; the summary then carries the file texts in `preview`. */
  dryRun?: boolean;
  /** HTTP timeouts/retries (tests shorten them); they win over an integration's own defaults. */
  http?: HttpOptions;
  /** Environment for settings that have no lqos.conf key (REST source). Default `process.env`. */
  env?: Record<string, string | undefined>;
}

export interface RunResult extends IntegrationSummary {
  /** On a dry run: the texts that would have been written. */
  preview?: { networkJson: string; shapedDevicesCsv: string };
}

/**
 * The options of one request of a run: the integration's own (headers, a longer timeout, hints), then
 * the run's HTTP overrides (tests shorten them), and the run's logger.
 */
export function runRequest(crm: string, opts: RunOptions, own: Omit<RequestOptions, 'crm' | 'log'> = {}): RequestOptions {
  return { crm, ...own, ...opts.http, log: opts.log };
}

/** Builds the pair, then writes it (validated, atomic) — or, on a dry run, only validates it. */
export function finishRun(builder: TopologyBuilder, opts: RunOptions): RunResult {
  const crm = builder.opts.crm;
  const built: BuildResult = builder.build();
  const { networkJson, shapedDevicesCsv, summary } = built;
  if (opts.dryRun) {
    const errors = validateIntegrationOutput(networkJson, shapedDevicesCsv).filter((i) => i.severity === 'error');
    if (errors.length > 0) {
      const lines = errors.map(formatIssue);
      throw new IntegrationError(`${crm}: the generated files fail validation (${errors.length} errors):\n  ${lines.slice(0, 20).join('\n  ')}`, {
        crm,
        details: lines,
      });
    }
    return { ...summary, preview: { networkJson, shapedDevicesCsv } };
  }
  const written = writeIntegrationOutput({ networkJson, shapedDevicesCsv, dir: opts.outDir, crm });
  opts.log.info(
    `${crm}: wrote ${written.networkJson} and ${written.shapedDevicesCsv} (${summary.sites} sites, ${summary.aps} APs, ${summary.circuits} circuits, ${summary.devices} devices, ${summary.skipped.length} skipped)`,
  );
  return { ...summary, written: { networkJson: written.networkJson, shapedDevicesCsv: written.shapedDevicesCsv } };
}
