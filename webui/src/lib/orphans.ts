/**
 * Saving a network.json that removes nodes circuits hang under: lqosd refuses with 409
 * `orphaned_circuits` until the admin says where those circuits go. Asked in two steps: move them
 * to the nearest remaining node above (their rows are rewritten in place), else save anyway and
 * leave them without a parent, else do not save.
 */
import type { NetworkSaved, OrphanDecision, OrphanReport } from '../../../lib/api/index.ts';
import { ApiError } from './api';
import { AS_IS, circuitLabel, putConfirmingRemoval, type NameMasks } from './massRemoval';

function listed(r: OrphanReport, masks: NameMasks): string {
  return r.groups
    .map((g) => {
      const names = g.circuits.slice(0, 5).map((c) => circuitLabel(c, masks)).join(', ');
      const more = g.circuits.length > 5 ? ` and ${g.circuits.length - 5} more` : '';
      return `• "${masks.site(g.parent)}": ${names}${more} → ${g.moveTo ? `"${masks.site(g.moveTo)}"` : 'the top level'}`;
    })
    .join('\n');
}

/** The first question: move them (OK) or not (Cancel). */
export function reparentQuestion(r: OrphanReport, masks: NameMasks = AS_IS): string {
  return (
    `This save removes ${r.groups.length === 1 ? 'a node' : 'nodes'} that ${r.count} circuit${r.count === 1 ? '' : 's'} hang under:\n\n${listed(r, masks)}\n\n` +
    'Move them to the node shown (the nearest one that remains above)? ShapedDevices.csv is changed for those rows only.'
  );
}

/** The second question, when they are not moved: save anyway (OK) or not at all (Cancel). */
export function keepQuestion(r: OrphanReport): string {
  return `Save anyway and leave the ${r.count} circuit${r.count === 1 ? '' : 's'} without a parent node? They are not shaped from their rows until you fix them (lqosd keeps their last good shaping).`;
}

/** PUT /api/network, asking about orphaned circuits and mass removal. Undefined: the admin declined. */
export async function putNetwork(network: unknown, ask: (q: string) => boolean = (q) => confirm(q), masks: NameMasks = AS_IS): Promise<NetworkSaved | undefined> {
  const put = (orphans?: OrphanDecision) => putConfirmingRemoval<NetworkSaved>('/api/network', { network, ...(orphans ? { orphans } : {}) }, ask, masks);
  try {
    return await put();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409 && err.code === 'orphaned_circuits')) throw err;
    const report = (err.body as unknown as { orphans: OrphanReport }).orphans;
    if (ask(reparentQuestion(report, masks))) return put('reparent');
    if (ask(keepQuestion(report))) return put('keep');
    return undefined;
  }
}
