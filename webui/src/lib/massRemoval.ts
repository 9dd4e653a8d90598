/**
 * Saving inputs that would unshape many circuits: lqosd refuses the save with 409 `mass_removal`
 * (more than [safety] max_removed_percent of the circuits in force would go). The admin is asked,
 * naming how many and which circuits; on confirmation the save is sent again with `force: true`.
 */
import type { MassRemovalRefusal } from '../../../lib/api/index.ts';
import { ApiError, put } from './api';

/** The confirmation text for a refusal body. */
export function removalQuestion(b: Pick<MassRemovalRefusal, 'removed' | 'total' | 'limitPercent' | 'sample'>): string {
  const first = b.sample.map((c) => (c.name && c.name !== c.id ? `${c.id} (${c.name})` : c.id)).join(', ');
  const more = b.removed - b.sample.length;
  return (
    `This save would unshape ${b.removed} of the ${b.total} shaped circuits — more than the ${b.limitPercent} % allowed ` +
    `([safety] max_removed_percent).\n\nFirst: ${first}${more > 0 ? ` and ${more} more` : ''}.\n\n` +
    'Only continue if these subscribers really should lose their shaping. Save anyway?'
  );
}

/** PUT `body`; on a mass-removal refusal ask, then PUT again with `force: true`. Undefined: the admin declined. */
export async function putConfirmingRemoval<T>(path: string, body: Record<string, unknown>, ask: (q: string) => boolean = (q) => confirm(q)): Promise<T | undefined> {
  try {
    return await put<T>(path, body);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409 && err.code === 'mass_removal')) throw err;
    if (!ask(removalQuestion(err.body as unknown as MassRemovalRefusal))) return undefined;
    return put<T>(path, { ...body, force: true });
  }
}
