/**
 * `LibreQoS integration <name>` (bin/integration.ts parses the arguments, then loads this): runs one
 * CRM/NMS integration, prints what it built (or, with --dry-run, what it would write) and the run
 * summary line. Returns the exit code: 0 success, 1 integration failed (nothing written), 2 unknown
 * integration or an invalid/missing configuration file.
 */
import { ConfigError } from '../config/load.ts';
import { loadResolvedConfig } from '../config/resolve.ts';
import type { LqosConfig } from '../config/schema.ts';
import { secretValues } from '../config/secrets.ts';
import { IntegrationError } from '../integrations/common/errors.ts';
import { collectWarnings, summaryWarnings } from '../integrations/common/log.ts';
import type { RunResult } from '../integrations/common/run.ts';
import { SUMMARY_ENV, summaryLine, writeSummaryFile, type RunSummaryFile } from '../integrations/common/summary.ts';
import { getIntegration, integrationNames, type IntegrationEntry } from '../integrations/registry.ts';
import { createLogger } from '../util/log.ts';

export interface IntegrationCommandOptions {
  config?: string;
  out?: string;
  dryRun?: boolean;
  verbose?: boolean;
}

const out = (s: string) => process.stdout.write(`${s}\n`);

export async function runIntegrationCommand(name: string, o: IntegrationCommandOptions): Promise<number> {
  const entry = getIntegration(name);
  if (!entry) {
    process.stderr.write(`integration: unknown integration "${name}"; choose one of: ${integrationNames().join(', ')}\n`);
    return 2;
  }
  let config: LqosConfig;
  try {
    config = loadResolvedConfig({ path: o.config }).config;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`integration: ${err.message}\n`);
      for (const d of err.details) process.stderr.write(`  ${d}\n`);
      return 2;
    }
    throw err;
  }
  // Every warning is also kept for the run summary (LQOS_INTEGRATION_SUMMARY_FILE, lib/integrations/common/summary.ts).
  const log = collectWarnings(createLogger(`integration:${entry.name}`, o.verbose ? 'debug' : 'warn'));
  const outDir = o.out ?? config.lqos_directory;
  const started = Date.now();
  try {
    const r = await entry.module.run(config, { log, outDir, dryRun: o.dryRun });
    report(r, o, outDir);
    if (r.output) summarise(r, { entry, config, o, started, warnings: log.warnings });
    return 0;
  } catch (err) {
    if (err instanceof IntegrationError) {
      process.stderr.write(`integration: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`integration: ${entry.module.CRM} failed unexpectedly: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

/** What the integration built, and what it wrote (or with --dry-run would write). */
function report(r: RunResult, o: IntegrationCommandOptions, outDir: string): void {
  out(
    `${r.crm} (strategy ${r.strategy}): ${r.sites} sites, ${r.aps} APs, ${r.circuits} circuits, ${r.devices} devices, ${r.skipped.length} skipped, ${r.warnings.length} warnings`,
  );
  if (r.skipped.length > 0) {
    out('skipped:');
    for (const s of r.skipped) out(`  ${s.id} "${s.name}": ${s.reason}`);
  }
  if (r.warnings.length > 0 && o.verbose) {
    out('warnings:');
    for (const w of r.warnings) out(`  ${w}`);
  }
  const kept = r.output?.networkJson === 'kept';
  if (o.dryRun && r.preview) {
    if (kept) {
      out(`dry run: nothing written. ${outDir}/network.json would be kept (always_overwrite_network_json = false).`);
      out(`Would write ${outDir}/ShapedDevices.csv:`);
    } else {
      out(`dry run: nothing written. Would write ${outDir}/network.json:`);
      out(r.preview.networkJson.trimEnd());
      out(`and ${outDir}/ShapedDevices.csv:`);
    }
    out(r.preview.shapedDevicesCsv.trimEnd());
  } else if (r.written) {
    out(kept ? `wrote ${r.written.shapedDevicesCsv}; kept ${r.written.networkJson} (always_overwrite_network_json = false)` : `wrote ${r.written.networkJson} and ${r.written.shapedDevicesCsv}`);
  }
}

/** The run summary: the file for the scheduler (LQOS_INTEGRATION_SUMMARY_FILE) and its one line. */
function summarise(
  r: RunResult,
  { entry, config, o, started, warnings }: { entry: IntegrationEntry; config: LqosConfig; o: IntegrationCommandOptions; started: number; warnings: string[] },
): void {
  const output = r.output!;
  const summary: RunSummaryFile = {
    integration: entry.name,
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - started,
    circuits: output.circuits,
    devices: { total: output.devices },
    warnings: summaryWarnings(warnings, secretValues(config, process.env)),
    networkJson: output.networkJson,
  };
  const file = process.env[SUMMARY_ENV];
  if (file && !o.dryRun && r.written) {
    try {
      writeSummaryFile(file, summary);
    } catch (err) {
      // The files are written: a summary that cannot be saved is no failure of the run.
      process.stderr.write(`integration: could not write the run summary ${file}: ${(err as Error).message}\n`);
    }
  }
  out(`${o.dryRun ? '(dry run) ' : ''}${summaryLine(summary, r.crm)}`);
}
