/**
 * Reading and writing `planner_state.json` (the pure format is lib/plan/plannerState.ts). A damaged file is
 * moved aside and the newest readable backup restored (class ids stay as they were at that run);
 * with no readable backup planning starts fresh. Either way a warning names the files.
 */
import { prepareFileAtomic, type PreparedWrite } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';
import { readRecovering } from '../util/recoverFile.ts';
import { emptyPlannerState, parsePlannerState, serializePlannerState, type ParsedPlannerState, type PlannerState } from '../plan/plannerState.ts';

/** Parses a whole file; throws when the file as a whole is unusable (bad entries are only notes). */
function parseWhole(text: string): ParsedPlannerState {
  const parsed = parsePlannerState(text);
  if (parsed.unreadable) throw new Error(parsed.unreadable);
  return parsed;
}

/** The stored state (see the file comment); entry-level problems are in `notes`. */
export function loadPlannerState(path: string, log?: Pick<Log, 'warn'>, now?: () => Date): ParsedPlannerState {
  const r = readRecovering(path, {
    parse: parseWhole,
    what: 'planner state',
    onLoss: 'planning starts fresh: circuits and sites get new class ids and the next apply rebuilds the queues in full',
    log,
    now,
  });
  return r.value ?? { state: emptyPlannerState(), notes: [] };
}

/** Saves the state (crash-safe, keeping rotated backups). */
export function savePlannerState(path: string, state: PlannerState): void {
  preparePlannerState(path, state).commit();
}

/** savePlannerState in two steps: written now (a full disk fails here), visible on commit(). */
export function preparePlannerState(path: string, state: PlannerState): PreparedWrite {
  return prepareFileAtomic(path, serializePlannerState(state), { backup: true });
}
