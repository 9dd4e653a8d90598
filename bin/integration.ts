#!/usr/bin/env -S node --import tsx
/**
 * Run one CRM/NMS integration by hand:
 *
 *   ./LibreQoS integration <name> [--dry-run] [--config PATH] [--out DIR] [--verbose]
 *
 * Fetches from the CRM, builds network.json + ShapedDevices.csv, validates them and writes both into
 * `lqos_directory` (or --out). --dry-run prints what would be written and writes nothing.
 * Exit codes: 0 success, 1 integration failed (IntegrationError; nothing written), 2 bad usage or an
 * invalid/missing configuration file.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../lib/config/load.ts';
import { loadResolvedConfig } from '../lib/config/resolve.ts';
import { IntegrationError } from '../lib/integrations/common/errors.ts';
import { collectWarnings, summaryWarnings } from '../lib/integrations/common/log.ts';
import { secretValues } from '../lib/config/secrets.ts';
import { SUMMARY_ENV, summaryLine, writeSummaryFile, type RunSummaryFile } from '../lib/integrations/common/summary.ts';
import { getIntegration, integrationNames } from '../lib/integrations/registry.ts';
import { createLogger } from '../lib/util/log.ts';
import { exitWithParent, watchParent } from '../lib/util/parentWatch.ts';

// Started by the scheduler: stop as soon as the scheduler is gone (even after kill -9), never run on as an orphan.
watchParent(exitWithParent);

const program = new Command()
  .name('integration')
  .description('Import sites and circuits from a CRM/NMS into network.json and ShapedDevices.csv')
  .argument('<name>', `integration to run: ${integrationNames().join(', ')}`)
  .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
  .option('--out <dir>', 'write the files here instead of lqos_directory')
  .option('--dry-run', 'build and validate, print what would be written, write nothing')
  .option('-v, --verbose', 'print every warning and debug logs')
  .showHelpAfterError()
  .exitOverride();

try {
  program.parse(process.argv);
} catch (err) {
  process.exit(err instanceof CommanderError && err.exitCode === 0 ? 0 : 2);
}
const [name] = program.args;
const o = program.opts<{ config?: string; out?: string; dryRun?: boolean; verbose?: boolean }>();

const entry = getIntegration(name);
if (!entry) {
  process.stderr.write(`integration: unknown integration "${name}"; choose one of: ${integrationNames().join(', ')}\n`);
  process.exit(2);
}

let config;
try {
  config = loadResolvedConfig({ path: o.config }).config;
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`integration: ${err.message}\n`);
    for (const d of err.details) process.stderr.write(`  ${d}\n`);
    process.exit(2);
  }
  throw err;
}

// Every warning is also kept for the run summary (LQOS_INTEGRATION_SUMMARY_FILE, lib/integrations/common/summary.ts).
const log = collectWarnings(createLogger(`integration:${entry.name}`, o.verbose ? 'debug' : 'warn'));
const outDir = o.out ?? config.lqos_directory;
const out = (s: string) => process.stdout.write(`${s}\n`);
const started = Date.now();
try {
  const r = await entry.module.run(config, { log, outDir, dryRun: o.dryRun });
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
  if (r.output) {
    const summary: RunSummaryFile = {
      integration: entry.name,
      finishedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
      circuits: r.output.circuits,
      devices: { total: r.output.devices },
      warnings: summaryWarnings(log.warnings, secretValues(config, process.env)),
      networkJson: r.output.networkJson,
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
  process.exit(0);
} catch (err) {
  if (err instanceof IntegrationError) {
    process.stderr.write(`integration: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`integration: ${entry.module.CRM} failed unexpectedly: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
}
