/** The Reload button's answer (pure): a refresh's outcome as the web UI shows it, without log records. */
import type { ReloadProblem, ReloadResult } from '../api/reload.ts';
import { refusalMessage } from '../shaping/massRemoval.ts';
import type { ShapingOutcome } from '../shaping/service.ts';

const MAX_PROBLEMS = 10;

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

function problemsOf(o: ShapingOutcome): ReloadProblem[] {
  const invalid = (o.invalid ?? []).map((i) => ({ file: i.file, ...(i.line ? { line: i.line } : {}), ...(i.column ? { field: i.column } : {}), message: i.message }));
  const skipped = (o.skipped ?? []).map((s) => ({
    file: s.file,
    line: s.line,
    ...(s.column ? { field: s.column } : {}),
    message: `${s.reason} (${s.kept === 'last-good' ? 'circuit kept at its last good shaping' : 'circuit left out: it had no last good shaping'})`,
  }));
  return [...invalid, ...skipped].slice(0, MAX_PROBLEMS);
}

function messageOf(o: ShapingOutcome, skippedRows: number): string {
  if (o.massRemoval?.refuse) return refusalMessage(o.massRemoval);
  if (o.invalid?.length) {
    const kept = o.lastGood ? `the last good inputs of ${o.lastGood.at} stay in force` : 'the shaping in force is unchanged';
    return `The input files were refused (${plural(o.invalid.length, 'error')}): nothing was applied and ${kept}. Fix the lines below and reload again.`;
  }
  if (!o.ok) return `The run failed (exit code ${o.exitCode}); the shaping in force is unchanged. See the urgent issues and lqosd's log (journalctl -u lqosd -b).`;
  const skipped = skippedRows ? ` ${plural(skippedRows, 'row')} skipped (listed below).` : '';
  if (o.dryRun) return dryRunMessage(o.dryRun) + skipped;
  const s = o.summary;
  const what = o.mode === 'none' || !s ? 'nothing changed' : changesText(s);
  const how = o.mode === 'full' ? 'rebuilt' : o.mode === 'incremental' ? 'updated in place' : 'checked';
  return `Applied: ${what} (${how}, ${plural(o.commands, 'command')}, ${o.seconds.toFixed(2)} s).${skipped}`;
}

function changesText(s: NonNullable<ShapingOutcome['summary']>): string {
  return `${plural(s.circuitsAdded, 'circuit')} added, ${s.circuitsRemoved} removed, ${s.circuitsChanged} changed${s.nodesChanged ? `, ${plural(s.nodesChanged, 'node')} changed` : ''}`;
}

function dryRunMessage(p: NonNullable<ShapingOutcome['dryRun']>): string {
  const would =
    p.wouldDo === 'full' ? `a full rebuild of ${plural(p.circuits, 'circuit')}` : p.wouldDo === 'incremental' ? `an update in place (${changesText(p.summary)})` : 'nothing: the plan is unchanged';
  return `Dry run ([queues] dry_run = true): nothing was applied. A real run would do ${would}. The planned tc commands are in ${p.commandsFile}; the pages show this plan as planned, not applied.`;
}

export function reloadResult(o: ShapingOutcome): ReloadResult {
  const skippedRows = o.skippedCount ?? o.skipped?.length ?? 0;
  const s = o.summary;
  return {
    ok: o.ok,
    exitCode: o.exitCode,
    mode: o.mode,
    seconds: o.seconds,
    commands: o.commands,
    ...(s && o.ok && !o.dryRun ? { changes: { circuitsAdded: s.circuitsAdded, circuitsRemoved: s.circuitsRemoved, circuitsChanged: s.circuitsChanged, nodesChanged: s.nodesChanged } } : {}),
    skippedRows,
    problems: problemsOf(o),
    message: messageOf(o, skippedRows),
    ...(o.lastGood ? { lastGood: o.lastGood } : {}),
    ...(o.dryRun ? { dryRun: { wouldDo: o.dryRun.wouldDo, circuits: o.dryRun.circuits, commandsFile: o.dryRun.commandsFile } } : {}),
    leafFallbacks: o.leafFallbacks,
  };
}
