/**
 * What lqosd tells the operator about the inputs after each shaping run: an urgent issue when the
 * inputs are refused (naming the file and line, and what is in force instead), one listing the rows
 * that were skipped (replaced on every run, cleared when none are skipped), and the status field
 * "shaping from last good inputs of <time>".
 */
import { sep } from 'node:path';
import type { LastGoodStatus, ShapingStatus } from '../api/status.ts';
import type { UrgentIssueStore } from '../api/urgent.ts';
import { formatIssue } from '../inputs/validate.ts';
import type { InputIssue } from '../model.ts';
import type { SkippedRow } from '../shaping/rowTriage.ts';
import type { ShapingOutcome } from '../shaping/service.ts';
import type { Log } from '../util/log.ts';

export const INVALID_INPUTS_KEY = 'lqosd:invalid-inputs';
export const SKIPPED_ROWS_KEY = 'lqosd:skipped-rows';
/** Rows listed in the skipped-rows message (all of them are in its context, up to the store's cap). */
const LISTED_ROWS = 30;

export interface InputsHealthDeps {
  /** The config in force: where the effective inputs (with lqos_overrides.json) are written. */
  config: () => { state: { effectiveDir: string } };
  status: ShapingStatus;
  urgent: UrgentIssueStore;
  log: Log;
  now: () => Date;
}

function place(i: Pick<InputIssue, 'file' | 'line'>, d: InputsHealthDeps): string {
  const where = i.line === undefined ? i.file : `${i.file} line ${i.line}`;
  // With lqos_overrides.json in effect the run shapes the effective copies (lib/shaping/effectiveInputs.ts).
  return i.file.startsWith(d.config().state.effectiveDir + sep) ? `${where} (your file with lqos_overrides.json applied; line numbers refer to this copy)` : where;
}

function skippedLine(s: SkippedRow, d: InputsHealthDeps): string {
  const what = s.circuitId === '' ? 'row without Circuit ID' : `circuit "${s.circuitId}"`;
  const then = s.kept === 'last-good' ? 'kept at its last good shaping' : 'left out (new circuit)';
  return `${place(s, d)}: ${what} — ${s.column ? `${s.column} ` : ''}${s.value ? `"${s.value}" ` : ''}(${s.code}): ${s.reason} → ${then}`;
}

function noteSkipped(outcome: ShapingOutcome, d: InputsHealthDeps): void {
  const skipped = outcome.skipped ?? [];
  if (skipped.length === 0) {
    // Only a run that planned the current inputs can say "no rows skipped".
    if (!outcome.invalid && !outcome.lastGood && outcome.exitCode === 0) d.urgent.resolveKey(SKIPPED_ROWS_KEY);
    return;
  }
  const lines = skipped.slice(0, LISTED_ROWS).map((s) => skippedLine(s, d));
  if (skipped.length > LISTED_ROWS) lines.push(`… and ${skipped.length - LISTED_ROWS} more (see the context and lqosd's log)`);
  d.urgent.submit({
    source: 'lqosd',
    severity: 'warning',
    code: 'ROWS_SKIPPED',
    message:
      `${skipped.length} row(s) of the shaping inputs have errors; their circuits were skipped and everything else was applied:\n${lines.join('\n')}\n` +
      'Fix these rows (LibreQoS --validate lists every error) and run LibreQoS again, or wait for the next scheduled refresh.',
    context: { rows: skipped },
    dedupeKey: SKIPPED_ROWS_KEY,
  });
}

function noteInvalid(outcome: ShapingOutcome, d: InputsHealthDeps): void {
  const invalid = outcome.invalid ?? [];
  if (invalid.length === 0) {
    if (outcome.ok && !outcome.lastGood) {
      d.urgent.resolveKey(INVALID_INPUTS_KEY);
      if (d.status.lastGood) d.log.info('shaping from the current inputs again (no longer from the last good inputs)');
      delete d.status.lastGood;
    }
    return;
  }
  const first = invalid[0];
  const lg = outcome.lastGood;
  const inForce = lg
    ? `lqosd is shaping from the last good inputs of ${lg.at}${lg.applied ? ' (re-applied now)' : ''}.`
    : 'There are no last good inputs to fall back on; nothing new is applied until the inputs are fixed.';
  const shown = invalid.slice(0, 3).map(formatIssue);
  if (invalid.length > 3) shown.push(`… and more (LibreQoS --validate lists every error)`);
  d.urgent.submit({
    source: 'lqosd',
    severity: 'error',
    code: 'INPUTS_INVALID',
    message:
      `The shaping inputs cannot be used: ${place(first, d)}: ${first.message}\n${shown.join('\n')}\n${inForce}\n` +
      'Fix the file (LibreQoS --validate checks it without applying) and run LibreQoS again, or wait for the next scheduled refresh.',
    context: { errors: invalid, lastGood: lg },
    dedupeKey: INVALID_INPUTS_KEY,
  });
  if (lg) {
    const reason = `${place(first, d)}: ${first.message}`;
    const since = d.status.lastGood?.since ?? d.now().toISOString();
    const st: LastGoodStatus = { at: lg.at, since, reason, file: first.file };
    if (first.line !== undefined) st.line = first.line;
    d.status.lastGood = st;
    d.log.warn(`shaping from the last good inputs of ${lg.at}: ${reason}`);
  }
}

/** Raises or resolves the inputs' urgent issues and the last-good status after a run. */
export function noteInputsHealth(outcome: ShapingOutcome, d: InputsHealthDeps): void {
  noteInvalid(outcome, d);
  noteSkipped(outcome, d);
}
