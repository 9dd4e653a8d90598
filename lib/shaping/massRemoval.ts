/**
 * The mass-removal guard (pure): a run that would remove more than `[safety] max_removed_percent`
 * of the circuits in force (an empty CRM export, an emptied ShapedDevices.csv) is refused unless
 * forced — by `LibreQoS --force`, an admin's confirmation in the web UI (an approval naming the
 * circuits, ./removalApproval.ts), or `[safety] scheduler_allow_mass_removal` for the scheduler.
 * With nothing in force there is nothing to guard.
 */

export interface CircuitRef {
  id: string;
  name?: string;
}

export interface MassRemovalPolicy {
  /** `[safety] max_removed_percent` (0–100). */
  maxRemovedPercent: number;
  /** Forced by the operator (--force, the scheduler's switch, a confirmed web save). */
  force?: boolean;
  /** Circuit ids an admin confirmed removing (a forced web save); a removal within them is allowed. */
  approved?: ReadonlySet<string>;
}

export interface MassRemovalVerdict {
  /** true: refuse the run (nothing may be applied). */
  refuse: boolean;
  /** Circuits in force that the new plan does not have. */
  removed: number;
  /** Circuits in force. */
  total: number;
  /** removed / total in percent (0 when nothing is in force). */
  percent: number;
  limitPercent: number;
  /** The first removed circuits (ids and names, in id order), for messages. */
  sample: CircuitRef[];
  /** Why a removal over the limit was let through. */
  allowedBy?: 'force' | 'approval';
}

/** How many removed circuits a message names. */
export const SAMPLE_SIZE = 10;

/** Compares the circuits in force with the ids of the next plan; see the file comment. */
export function massRemovalVerdict(inForce: readonly CircuitRef[], nextIds: Iterable<string>, policy: MassRemovalPolicy): MassRemovalVerdict {
  const next = nextIds instanceof Set ? (nextIds as Set<string>) : new Set(nextIds);
  // Named in id order (c2 before c10), not in the plan's queue order.
  const gone = inForce.filter((c) => !next.has(c.id)).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const total = inForce.length;
  const percent = total === 0 ? 0 : (gone.length / total) * 100;
  const over = total > 0 && gone.length > 0 && percent > policy.maxRemovedPercent;
  const base = {
    removed: gone.length,
    total,
    percent,
    limitPercent: policy.maxRemovedPercent,
    sample: gone.slice(0, SAMPLE_SIZE).map((c) => (c.name ? { id: c.id, name: c.name } : { id: c.id })),
  };
  if (!over) return { refuse: false, ...base };
  if (policy.force) return { refuse: false, ...base, allowedBy: 'force' };
  if (policy.approved && gone.every((c) => policy.approved!.has(c.id))) return { refuse: false, ...base, allowedBy: 'approval' };
  return { refuse: true, ...base };
}

/** `id (name), id, …` of the sample, with "and N more". */
export function sampleText(v: Pick<MassRemovalVerdict, 'sample' | 'removed'>): string {
  const names = v.sample.map((c) => (c.name && c.name !== c.id ? `${c.id} (${c.name})` : c.id));
  const more = v.removed - v.sample.length;
  return names.join(', ') + (more > 0 ? ` and ${more} more` : '');
}

/** The operator-facing refusal: how many, which, and how to force it. */
export function refusalMessage(v: MassRemovalVerdict): string {
  return (
    `refused: this run would remove ${v.removed} of the ${v.total} shaped circuits (${v.percent.toFixed(1)} %, more than ` +
    `[safety] max_removed_percent = ${v.limitPercent}): ${sampleText(v)}. Nothing was applied; the shaping in force is unchanged. ` +
    'If the inputs are wrong (an empty or truncated CRM export, an emptied ShapedDevices.csv), fix them. If the removal is intended: ' +
    'run `LibreQoS --force`, confirm the save in the web UI, or set [safety] scheduler_allow_mass_removal = true for the scheduler ' +
    '(or raise max_removed_percent).'
  );
}
