/** POST /api/reload (admins): shape the configured input files now, and what that did. */

/** A reason a row or a file was refused, where it is. */
export interface ReloadProblem {
  file: string;
  line?: number;
  /** CSV column or network.json path. */
  field?: string;
  message: string;
}

export interface ReloadResult {
  ok: boolean;
  /** LibreQoS's exit code for the same run (0 = applied). */
  exitCode: number;
  /** full: the queues were rebuilt; incremental: changed in place; none: nothing changed. */
  mode: 'full' | 'incremental' | 'none';
  seconds: number;
  commands: number;
  /** What changed against the plan in force (absent when nothing was applied). */
  changes?: { circuitsAdded: number; circuitsRemoved: number; circuitsChanged: number; nodesChanged: number };
  /** Rows skipped for row-level errors (their circuits keep their last good shaping). */
  skippedRows: number;
  /** The first problems (refused inputs or skipped rows), with file and line. */
  problems: ReloadProblem[];
  /** One line for the operator: what happened and, when it failed, what to do. */
  message: string;
  /** Set when the shaping in force comes from the last good inputs. */
  lastGood?: { at: string; applied: boolean };
  /** A dry run (`[queues] dry_run = true`): nothing was applied; what a real run would do. */
  dryRun?: { wouldDo: 'full' | 'incremental' | 'none'; circuits: number; commandsFile: string };
  /** Planned leaf qdisc → the one used on this kernel. */
  leafFallbacks: Record<string, string>;
}
