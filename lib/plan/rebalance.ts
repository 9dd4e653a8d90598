/**
 * Rebalancing top-level sites over CPU queues (pure). Queues are sticky — a site keeps the queue
 * (and so the class ids) it was given — which alone would leave new queues empty forever after the
 * queue count grows. So, when the queue count changed since the last run, or the load is badly
 * skewed (the busiest queue carries more than SKEW_RATIO × the mean), or a rebalance started in an
 * earlier run is still under way, a bounded number of sites move per run:
 *
 * - load of a site = the sum of Download Max + Upload Max (Mbps) of the circuits in its subtree,
 *   at least 1 (the weight bin-packing uses); a queue's load = the sum over its top-level nodes,
 *   generated parent nodes included (those are pinned and never move);
 * - each move takes a site whose queue was remembered from an earlier run (fresh sites were just
 *   placed) from the busiest queue that has a suitable one to the emptiest queue, and only if it
 *   does not overshoot (2 × its load ≤ the gap between the two queues), so every move strictly
 *   narrows the spread and the same inputs can never make a site move back (no ping-pong);
 * - at most `max(1, floor(BUDGET_FRACTION × top-level sites))` moves per run;
 * - a site moved in the last COOLDOWN_RUNS runs is not moved again.
 * The rebalance stays "under way" (persisted) while moves are made or held back by the cool-down,
 * and ends with the first run that finds nothing worth moving.
 */
import type { InputIssue } from '../model.ts';
import type { PlannerState } from './plannerState.ts';

export const REBALANCE = {
  /** The busiest queue's load above this multiple of the mean starts a rebalance. */
  SKEW_RATIO: 1.5,
  /** Moves per run: this fraction of the top-level sites (at least one). */
  BUDGET_FRACTION: 0.1,
  /** Runs during which a moved site stays put. */
  COOLDOWN_RUNS: 3,
} as const;

export interface RebalanceSite {
  name: string;
  queue: number;
  /** Load, see above. */
  weight: number;
  /** Generated parent nodes are pinned to their queue. */
  pinned: boolean;
  /** The queue came from the previous state (false: placed in this run). */
  stored: boolean;
}

export interface RebalanceInput {
  queues: number;
  sites: RebalanceSite[];
  /** Queue count of the previous run, if known. */
  previousQueues?: number;
  /** A rebalance was under way at the end of the previous run. */
  underWay: boolean;
  /** This run's number and the run in which each site was last moved (the cool-down). */
  run: number;
  lastMoved: Record<string, number>;
}

export interface RebalanceMove {
  name: string;
  from: number;
  to: number;
  weight: number;
  /** Loads of the two queues before this move. */
  fromLoad: number;
  toLoad: number;
}

export interface RebalanceResult {
  /** Why it ran ('none': it did not). */
  reason: 'queue-count' | 'skew' | 'continuing' | 'none';
  moves: RebalanceMove[];
  /** Persist: continue next run. */
  underWay: boolean;
}

export function moveBudget(sites: number): number {
  return Math.max(1, Math.floor(REBALANCE.BUDGET_FRACTION * sites));
}

/** The queue (1..Q) with the least load in `loads` (index 0 unused); the lowest number on ties. */
export function leastLoaded(loads: readonly number[]): number {
  let best = 1;
  for (let q = 2; q < loads.length; q++) if (loads[q]! < loads[best]!) best = q;
  return best;
}

export function rebalance(input: RebalanceInput): RebalanceResult {
  const Q = input.queues;
  const sites = input.sites;
  const loads = new Array<number>(Q + 1).fill(0);
  for (const s of sites) loads[s.queue]! += s.weight;
  const total = loads.reduce((a, b) => a + b, 0);
  const busiest = Math.max(...loads.slice(1));
  let reason: RebalanceResult['reason'] = 'none';
  if (input.previousQueues !== undefined && input.previousQueues !== Q) reason = 'queue-count';
  else if (input.underWay) reason = 'continuing';
  else if (Q >= 2 && total > 0 && busiest > REBALANCE.SKEW_RATIO * (total / Q)) reason = 'skew';
  if (reason === 'none' || Q < 2) return { reason: 'none', moves: [], underWay: false };

  const budget = moveBudget(sites.filter((s) => !s.pinned).length);
  const cooling = (s: RebalanceSite) => {
    const last = input.lastMoved[s.name];
    return last !== undefined && input.run - last <= REBALANCE.COOLDOWN_RUNS;
  };
  // Candidates per queue, heaviest first (ties by name); a site moved in this run leaves its list.
  const movable = new Map<number, RebalanceSite[]>();
  for (const s of sites) {
    if (s.pinned || !s.stored) continue;
    let list = movable.get(s.queue);
    if (!list) movable.set(s.queue, (list = []));
    list.push(s);
  }
  for (const list of movable.values()) list.sort((a, b) => b.weight - a.weight || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const moves: RebalanceMove[] = [];
  let heldBack = false;
  while (moves.length < budget) {
    const to = leastLoaded(loads);
    const step = bestMove(movable, loads, to, cooling);
    if (step.heldBack) heldBack = true;
    if (!step.site) break;
    const s = step.site;
    moves.push({ name: s.name, from: s.queue, to, weight: s.weight, fromLoad: loads[s.queue]!, toLoad: loads[to]! });
    loads[s.queue]! -= s.weight;
    loads[to]! += s.weight;
    movable.get(s.queue)!.splice(step.index, 1);
  }
  return { reason, moves, underWay: moves.length > 0 || heldBack };
}

/**
 * The site to move to queue `to`: from the busiest queue that has one, the heaviest site that does
 * not overshoot (2 × weight ≤ the gap). `heldBack`: a site that would qualify is in its cool-down.
 */
function bestMove(
  movable: Map<number, RebalanceSite[]>,
  loads: number[],
  to: number,
  cooling: (s: RebalanceSite) => boolean,
): { site?: RebalanceSite; index: number; heldBack: boolean } {
  const sources = [];
  for (let q = 1; q < loads.length; q++) if (q !== to && loads[q]! > loads[to]! && movable.get(q)?.length) sources.push(q);
  sources.sort((a, b) => loads[b]! - loads[a]! || a - b);
  let heldBack = false;
  for (const from of sources) {
    const list = movable.get(from)!;
    const limit = (loads[from]! - loads[to]!) / 2;
    // First index whose weight fits (the list is sorted by weight, descending).
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.weight > limit) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length; i++) {
      if (!cooling(list[i]!)) return { site: list[i]!, index: i, heldBack };
      heldBack = true;
    }
  }
  return { index: -1, heldBack };
}

/** A top-level node as the planner placed it before rebalancing. */
export interface TopLevelSite {
  name: string;
  /** Generated parent nodes: pinned to their queue. */
  pinned: boolean;
  weight: number;
  /** Queue in this run so far (remembered, or placed now). */
  queue: number;
  /** Queue remembered from the previous run, if any. */
  previousQueue?: number;
}

export interface RebalanceArgs {
  queues: number;
  sites: TopLevelSite[];
  prev: PlannerState;
  next: PlannerState;
  /** network.json's name, for the reports. */
  file: string;
  warnings: InputIssue[];
}

const WHY: Record<RebalanceResult['reason'], string> = {
  'queue-count': 'the queue count changed',
  skew: 'the CPU queues are unevenly loaded',
  continuing: 'continuing the rebalance of earlier runs',
  none: '',
};

/**
 * Runs the rebalance on the planner's top-level placement: returns the new queue of each moved
 * site, reports every queue change of a remembered site (a warning naming the site and old → new
 * queue) and records the run, the queue count, the cool-downs and whether to continue in `next`.
 */
export function rebalanceTopLevel(a: RebalanceArgs): Map<string, number> {
  const run = (a.prev.run ?? 0) + 1;
  const lastMoved: Record<string, number> = {};
  for (const [name, r] of Object.entries(a.prev.moves ?? {})) if (run - r <= REBALANCE.COOLDOWN_RUNS) lastMoved[name] = r;
  const movedTo = new Map<string, number>();
  // Sites whose remembered queue no longer exists were placed afresh: a move too.
  for (const s of a.sites) {
    if (s.pinned || s.previousQueue === undefined || s.previousQueue === s.queue) continue;
    lastMoved[s.name] = run;
    a.warnings.push(moveIssue(a.file, s.name, s.previousQueue, s.queue, `queue ${s.previousQueue} no longer exists (${a.queues} queue(s) now)`));
  }
  const r = rebalance({
    queues: a.queues,
    sites: a.sites.map((s) => ({ name: s.name, queue: s.queue, weight: s.weight, pinned: s.pinned, stored: s.previousQueue === s.queue })),
    previousQueues: a.prev.queues,
    underWay: a.prev.rebalancing ?? false,
    run,
    lastMoved,
  });
  const why = r.reason === 'queue-count' ? `the queue count changed from ${a.prev.queues} to ${a.queues}` : WHY[r.reason];
  for (const m of r.moves) {
    movedTo.set(m.name, m.to);
    lastMoved[m.name] = run;
    a.warnings.push(
      moveIssue(a.file, m.name, m.from, m.to, `${why}; its load ${fmt(m.weight)}, queue ${m.from} had ${fmt(m.fromLoad)}, queue ${m.to} had ${fmt(m.toLoad)} — load = Download + Upload Max of the circuits`),
    );
  }
  a.next.run = run;
  a.next.queues = a.queues;
  const present = new Set(a.sites.map((s) => s.name));
  const moves = Object.fromEntries(Object.entries(lastMoved).filter(([name]) => present.has(name)));
  if (Object.keys(moves).length > 0) a.next.moves = moves;
  if (r.underWay) a.next.rebalancing = true;
  return movedTo;
}

function fmt(mbps: number): string {
  return `${Math.round(mbps * 10) / 10} Mbps`;
}

function moveIssue(file: string, name: string, from: number, to: number, detail: string): InputIssue {
  return {
    severity: 'warning',
    code: 'site-queue-moved',
    file,
    column: name,
    message: `top-level site "${name}" moved from CPU queue ${from} to queue ${to} (${detail}); its classes are rebuilt on the new queue with new class ids`,
  };
}
