/**
 * What a shaping run does with inputs that do not validate (used by ./run.ts): row-level errors
 * are triaged (./rowTriage.ts) so the rest still applies, and file-level errors are reported with
 * what the shaping in force is now (the last good inputs, ./lastGood.ts).
 */
import type { InputIssue, ValidationResult } from '../model.ts';
import type { Log } from '../util/log.ts';
import type { ShapingInputs } from './inputs.ts';
import type { LastGood } from './lastGood.ts';
import { triageRows, type SkippedRow } from './rowTriage.ts';

/** What one run learnt about its inputs (carried into its result). */
export interface RunInputsState {
  /** The last good inputs, read on first use (undefined: none stored, or this run applies them). */
  lastGood: () => LastGood | undefined;
  /** Rows skipped by triage in this run. */
  skipped: SkippedRow[];
  /** The errors that refused the inputs (file-level, or planning errors). */
  invalid?: InputIssue[];
}

export interface TriagedInputs {
  inputs: ShapingInputs;
  /** The validation of `inputs` (no errors). */
  validation: ValidationResult;
  remap: (issue: InputIssue) => InputIssue;
}

/**
 * `unknown-parent` is a warning to the validator, but a shaping run triages it like a row error: the
 * circuit keeps its last good shaping (or, if new, is listed as left out) instead of silently
 * falling out of shaping.
 */
export function unknownParentsAsErrors(issues: InputIssue[], devicesFile: string): InputIssue[] {
  return issues.map((i) => (i.code === 'unknown-parent' && i.file === devicesFile && i.line !== undefined ? { ...i, severity: 'error' as const } : i));
}

/** How many of the refusing errors a result carries (the log has all of them). */
export const INVALID_CARRIED = 20;

/**
 * Triage the rows of inputs whose validation found `issues`; undefined when an error is not
 * row-level (the run must be refused). Logs each skipped row and what happens to its circuit.
 */
export function triageInputs(inputs: ShapingInputs, issues: InputIssue[], st: RunInputsState, log: Log): TriagedInputs | undefined {
  const lg = st.lastGood()?.inputs;
  const t = triageRows({ ...inputs, issues, lastGood: lg ? { devicesText: lg.devicesText, devicesFile: lg.devicesFile } : undefined });
  if (!t.ok) return undefined;
  st.skipped = t.skipped;
  for (const s of t.skipped) {
    const what = s.circuitId === '' ? 'row without a Circuit ID' : `circuit "${s.circuitId}"`;
    const then = s.kept === 'last-good' ? 'it stays at its last good shaping' : 'it is left out (not in the last good inputs)';
    log.warn(
      { code: 'row-skipped', file: s.file, line: s.line, circuit: s.circuitId, issue: s.code },
      `${s.file}:${s.line}: ${what} skipped — ${s.column ? `column "${s.column}" ` : ''}${s.value ? `value "${s.value}": ` : ''}${s.reason}; ${then}`,
    );
  }
  const circuits = new Set(t.skipped.map((s) => `${s.circuitId}|${s.kept}`));
  log.warn(
    { code: 'rows-skipped', rows: t.skipped.length },
    `${t.skipped.length} row error(s) in ${inputs.devicesFile}: ${circuits.size} circuit(s) skipped (listed above), everything else is applied — fix those rows and run again`,
  );
  return { inputs: { ...inputs, devicesText: t.devicesText }, validation: t.validation, remap: t.remap };
}

/** The log line after a refusal: what is in force now. */
export function refusalNote(st: RunInputsState, somethingInForce: boolean): string {
  const lg = st.lastGood();
  if (lg && somethingInForce) {
    return `the shaping in force stays as it is: it was applied from the last good inputs of ${lg.meta.at} (a copy is in ${lg.inputs.devicesFile} and ${lg.inputs.networkFile})`;
  }
  return somethingInForce ? 'the shaping in force stays as it is' : 'nothing is shaped from these inputs';
}
