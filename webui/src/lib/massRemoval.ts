/**
 * Saving inputs that would unshape many circuits: lqosd refuses the save with 409 `mass_removal`
 * (more than [safety] max_removed_percent of the circuits in force would go). The admin is asked,
 * naming how many and which circuits; on confirmation the save is sent again with `force: true`.
 */
import type { MassRemovalRefusal } from '../../../lib/api/index.ts';
import { ApiError, put } from './api';

/** How a question shows subscriber and site names: the page's privacy layer (usePrivacy), else as they are. */
export interface NameMasks {
  name: (v: string) => string;
  site: (v: string) => string;
}
export const AS_IS: NameMasks = { name: (v) => v, site: (v) => v };

/** `id (name)`, or the id alone when the name adds nothing or privacy mode masks it. */
export function circuitLabel(c: { id: string; name?: string }, masks: NameMasks): string {
  if (!c.name || c.name === c.id || masks.name(c.name) !== c.name) return c.id;
  return `${c.id} (${c.name})`;
}

/** The confirmation text for a refusal body. */
export function removalQuestion(b: Pick<MassRemovalRefusal, 'removed' | 'total' | 'limitPercent' | 'sample'>, masks: NameMasks = AS_IS): string {
  const first = b.sample.map((c) => circuitLabel(c, masks)).join(', ');
  const more = b.removed - b.sample.length;
  return (
    `This save would unshape ${b.removed} of the ${b.total} shaped circuits — more than the ${b.limitPercent} % allowed ` +
    `([safety] max_removed_percent).\n\nFirst: ${first}${more > 0 ? ` and ${more} more` : ''}.\n\n` +
    'Only continue if these subscribers really should lose their shaping. Save anyway?'
  );
}

/** PUT `body`; on a mass-removal refusal ask, then PUT again with `force: true`. Undefined: the admin declined. */
export async function putConfirmingRemoval<T>(
  path: string,
  body: Record<string, unknown>,
  ask: (q: string) => boolean = (q) => confirm(q),
  masks: NameMasks = AS_IS,
): Promise<T | undefined> {
  try {
    return await put<T>(path, body);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409 && err.code === 'mass_removal')) throw err;
    if (!ask(removalQuestion(err.body as unknown as MassRemovalRefusal, masks))) return undefined;
    return put<T>(path, { ...body, force: true });
  }
}
