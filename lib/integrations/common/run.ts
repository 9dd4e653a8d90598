/**
 * What every integration's `run()` shares: its options, the options of its requests and the final
 * build → validate → write step.
 */
import type { TopologyBuilder } from './graph.ts';
import type { BuildResult, IntegrationSummary } from './graphModel.ts';
import type { HttpOptions, RequestOptions } from './http.ts';
import type { IntegrationLogger } from './log.ts';
import { composeOutput, SHAPED_DEVICES_CSV, writeIntegrationOutput } from './output.ts';
import { migrateLegacyBandwidths } from './legacyBandwidths.ts';
import { diffCircuits, type CircuitChanges } from './summary.ts';
import { join } from 'node:path';
import { readTextIfExists } from '../../util/atomicFile.ts';
import { addMikrotikIpv6 } from './mikrotikIpv6.ts';

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
  /**
   * What the run wrote (or, on a dry run, would write): network.json written or kept, rows taken from
   * appendToShapedDevices.csv, and the circuits compared with the ShapedDevices.csv in place before
   * (for the run summary, ./summary.ts).
   */
  output?: { networkJson: 'written' | 'kept'; appended: number; circuits: CircuitChanges; devices: number };
}

/**
 * The options of one request of a run: the integration's own (headers, a longer timeout, hints), then
 * the run's HTTP overrides (tests shorten them), and the run's logger.
 */
export function runRequest(crm: string, opts: RunOptions, own: Omit<RequestOptions, 'crm' | 'log'> = {}): RequestOptions {
  return { crm, ...own, ...opts.http, log: opts.log };
}

/**
 * Adds the MikroTik IPv6 prefixes (when on; mikrotikIpv6.ts), builds the pair, adds the rows of
 * appendToShapedDevices.csv and picks network.json (generated, or the operator's kept one:
 * output.ts composeOutput), validates, then writes (atomic) and migrates a legacy site-rate file
 * (legacyBandwidths.ts) — or, on a dry run, only validates and reports.
 */
export async function finishRun(builder: TopologyBuilder, opts: RunOptions): Promise<RunResult> {
  const crm = builder.opts.crm;
  await addMikrotikIpv6(builder, opts.log, { timeoutMs: opts.http?.timeoutMs ?? 30_000 });
  const built: BuildResult = builder.build();
  const { summary } = built;
  const out = composeOutput({
    crm,
    dir: opts.outDir,
    networkJson: built.networkJson,
    shapedDevicesCsv: built.shapedDevicesCsv,
    alwaysOverwriteNetworkJson: builder.opts.alwaysOverwriteNetworkJson ?? true,
    log: opts.log,
  });
  const { networkJson, shapedDevicesCsv } = out;
  const csvPath = join(opts.outDir, SHAPED_DEVICES_CSV);
  const { devices, ...circuits } = diffCircuits(readTextIfExists(csvPath), shapedDevicesCsv);
  const output = { networkJson: out.networkMode, appended: out.appended, circuits, devices };
  if (opts.dryRun) {
    migrateLegacyBandwidths(crm, opts.outDir, opts.log, true);
    return { ...summary, preview: { networkJson, shapedDevicesCsv }, output };
  }
  const keep = out.networkMode === 'kept';
  const written = writeIntegrationOutput({ networkJson, shapedDevicesCsv, dir: opts.outDir, crm, writeNetworkJson: !keep, issues: out.issues });
  opts.log.info(
    `${crm}: wrote ${keep ? '' : `${written.networkJson} and `}${written.shapedDevicesCsv}${keep ? ` (kept your ${written.networkJson}: always_overwrite_network_json = false)` : ''} ` +
      `(${summary.sites} sites, ${summary.aps} APs, ${summary.circuits} circuits, ${summary.devices} devices, ${summary.skipped.length} skipped, ${out.appended} appended rows)`,
  );
  // After a successful write only: a failed run changes nothing.
  migrateLegacyBandwidths(crm, opts.outDir, opts.log);
  return { ...summary, written: { networkJson: written.networkJson, shapedDevicesCsv: written.shapedDevicesCsv }, output };
}
