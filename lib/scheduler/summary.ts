/**
 * The integration run summary, scheduler side (the contract in lib/scheduler/README.md): the
 * scheduler hands each integration run a fresh path in $LQOS_INTEGRATION_SUMMARY_FILE; after a
 * successful exit it reads that file, bounds it (at most SUMMARY_MAX_WARNINGS warnings of at most
 * SUMMARY_MAX_WARNING_CHARS characters, the rest counted in `warningsOmitted`), hides any credential
 * of lqos.conf that slipped into a warning, validates it (zod, the bus schema) and sends it to lqosd
 * (`scheduler_summary`). An absent or invalid file is a log warning, never a failure.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { IntegrationRunSummary } from '../api/scheduler.ts';
import { hideSecrets } from '../config/secrets.ts';
import { SUMMARY_ENV } from '../integrations/common/summary.ts';
import { integrationSummaryShape, SUMMARY_MAX_WARNING_CHARS, SUMMARY_MAX_WARNINGS } from '../bus/protocol.ts';
import { stripAnsi } from '../util/text.ts';

/** The variable naming the file an integration writes its run summary to (one definition: the integration's). */
export const SUMMARY_FILE_ENV = SUMMARY_ENV;
/** Largest summary file read (a bounded summary is a few kB). */
export const SUMMARY_MAX_FILE_BYTES = 256 * 1024;

/** Lenient on unknown keys (a newer integration may add some), strict on the known ones. */
const fileSchema = z.object({ ...integrationSummaryShape, warnings: z.array(z.string()) });

/** A fresh private directory + the path the integration is to write (remove the directory afterwards). */
export function freshSummaryPath(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-summary-'));
  return { dir, file: join(dir, 'summary.json') };
}

export type SummaryRead = { ok: true; summary: IntegrationRunSummary } | { ok: false; warning: string };

/** Reads, bounds and validates a summary file (see the file comment). Never throws. */
export function readRunSummary(file: string, integration: string, secrets: readonly string[] = []): SummaryRead {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      ok: false,
      warning: code === 'ENOENT' ? `integration ${integration} wrote no run summary (${SUMMARY_FILE_ENV}); nothing to show for this run` : `cannot read the run summary of ${integration} (${file}): ${(e as Error).message}`,
    };
  }
  if (text.length > SUMMARY_MAX_FILE_BYTES) return { ok: false, warning: `the run summary of ${integration} is ${text.length} bytes (at most ${SUMMARY_MAX_FILE_BYTES}); ignored` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, warning: `the run summary of ${integration} is not JSON (${(e as Error).message}); ignored` };
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, warning: `the run summary of ${integration} is invalid at ${first.path.join('.') || '(top)'}: ${first.message}; ignored` };
  }
  const all = parsed.data.warnings.map((w) => {
    const clean = hideSecrets(stripAnsi(w), secrets).replace(/\s*\n\s*/g, ' ').trim();
    return clean.length > SUMMARY_MAX_WARNING_CHARS ? `${clean.slice(0, SUMMARY_MAX_WARNING_CHARS - 1)}…` : clean;
  });
  const omitted = Math.max(0, all.length - SUMMARY_MAX_WARNINGS) + (parsed.data.warningsOmitted ?? 0);
  const { warningsOmitted: _drop, ...rest } = parsed.data;
  const summary: IntegrationRunSummary = { ...rest, warnings: all.slice(0, SUMMARY_MAX_WARNINGS), ...(omitted > 0 ? { warningsOmitted: omitted } : {}) };
  return { ok: true, summary };
}

/** One line for the journal. */
export function summaryText(s: IntegrationRunSummary): string {
  const c = s.circuits;
  const w = s.warnings.length + (s.warningsOmitted ?? 0);
  return `${s.integration}: ${c.total} circuits (${c.added} added, ${c.removed} removed, ${c.changed} changed), ${s.devices.total} devices, ${w} warning${w === 1 ? '' : 's'}, network.json ${s.networkJson}, ${(s.durationMs / 1000).toFixed(1)} s`;
}

export function removeSummaryDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
