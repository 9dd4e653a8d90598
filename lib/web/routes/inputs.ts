/** ShapedDevices.csv and network.json: read with their issues, replaced (validated first) by admins. */
import type { FastifyInstance } from 'fastify';
import type { NetworkPayload, NetworkSaved, ShapedDevicesPayload, ShapedDevicesSaved } from '../../api/inputs.ts';
import { inputPaths, statePaths } from '../../config/paths.ts';
import { writeApproval } from '../../shaping/removalApproval.ts';
import { currentUser } from '../access.ts';
import type { OrphanDecision } from '../orphans.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import {
  InputsRejected,
  MassRemovalRefused,
  OrphansRefused,
  type RemovalCheck,
  type RemovalGuard,
  networkBodySchema,
  readNetworkPayload,
  readShapedDevicesPayload,
  replaceNetwork,
  replaceShapedDevices,
  shapedDevicesBodySchema,
  type CircuitBody,
} from '../inputsEdit.ts';
import { owningIntegration } from '../inputsOwner.ts';
import { CellEditError } from '../../inputs/csvCellEdit.ts';
import type { WebContext } from '../context.ts';

/** An enabled integration rewrites the files on every refresh: editing them here would be lost. */
function ensureEditable(ctx: WebContext): void {
  const owner = owningIntegration(ctx.config());
  if (!owner) return;
  throw new HttpError(
    409,
    'integration_owns_inputs',
    `the ${owner.section.replace(/_integration$/, '')} integration is enabled (${owner.section}.${owner.key} = true); ` +
      'it owns ShapedDevices.csv and network.json and rewrites them on every refresh — edit the CRM, or disable the integration to edit them here',
  );
}

/** Runs a replace; refused inputs become 422 with the issues, a refused mass removal 409. */
function replaceOrRefuse<T>(replace: () => T): T {
  try {
    return replace();
  } catch (err) {
    if (err instanceof InputsRejected) throw new HttpError(422, 'invalid_inputs', err.message, { issues: err.issues });
    if (err instanceof OrphansRefused) throw new HttpError(409, 'orphaned_circuits', err.message, { orphans: err.report });
    if (err instanceof CellEditError) throw new HttpError(422, 'cannot_reparent', err.message);
    if (err instanceof MassRemovalRefused) {
      const v = err.verdict;
      throw new HttpError(409, 'mass_removal', err.message, { removed: v.removed, total: v.total, limitPercent: v.limitPercent, sample: v.sample });
    }
    throw err;
  }
}

/** The mass-removal guard of a save (lib/shaping/massRemoval.ts): the plan in force and the limit. */
function guardOf(ctx: WebContext, force: boolean | undefined): RemovalGuard {
  return { inForce: ctx.appliedPlan(), maxRemovedPercent: ctx.config().safety.max_removed_percent, force: force === true };
}

/**
 * A confirmed removal over the limit: recorded (lib/shaping/removalApproval.ts) so the run that
 * follows the save applies it instead of refusing it again. Returns how many circuits go.
 */
function approveRemoval(ctx: WebContext, removal: RemovalCheck | undefined, user: string, file: string): number | undefined {
  if (!removal) return undefined;
  const v = removal.verdict;
  writeApproval(statePaths(ctx.config().state_directory), { at: new Date().toISOString(), by: user, circuits: removal.removedIds });
  ctx.log.warn(
    { user, removed: v.removed, total: v.total, sample: v.sample.map((c) => c.id) },
    `web: ${user} confirmed a ${file} save that unshapes ${v.removed} of ${v.total} circuits (over [safety] max_removed_percent = ${v.limitPercent}); the next run applies it`,
  );
  return v.removed;
}

export async function inputsRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, serialized } = d;
  const ownedBy = () => owningIntegration(ctx.config())?.section ?? null;

  app.get('/api/shaped-devices', { config: { access: 'read_only' } }, async (): Promise<ShapedDevicesPayload> => ({
    ...readShapedDevicesPayload(inputPaths(ctx.config())),
    ownedBy: ownedBy(),
  }));

  app.put<{ Body: { circuits: CircuitBody[]; force?: boolean } }>(
    '/api/shaped-devices',
    { config: { access: 'admin' }, bodyLimit: 256 * 1024 * 1024, schema: { body: shapedDevicesBodySchema } },
    async (req): Promise<ShapedDevicesSaved> =>
      serialized(() => {
        ensureEditable(ctx);
        const { removal, ...result } = replaceOrRefuse(() => replaceShapedDevices(inputPaths(ctx.config()), req.body.circuits, guardOf(ctx, req.body.force)));
        const user = currentUser(req).user.username;
        const removed = approveRemoval(ctx, removal, user, 'ShapedDevices.csv');
        ctx.log.info({ user, circuits: result.circuits }, 'web: ShapedDevices.csv replaced');
        return { ok: true, ...result, ...(removed !== undefined ? { removed } : {}) };
      }),
  );

  app.get('/api/network', { config: { access: 'read_only' } }, async (): Promise<NetworkPayload> => ({
    ...readNetworkPayload(inputPaths(ctx.config())),
    ownedBy: ownedBy(),
  }));

  app.put<{ Body: { network: Record<string, unknown>; force?: boolean; orphans?: OrphanDecision } }>(
    '/api/network',
    { config: { access: 'admin' }, bodyLimit: 64 * 1024 * 1024, schema: { body: networkBodySchema } },
    async (req): Promise<NetworkSaved> =>
      serialized(() => {
        ensureEditable(ctx);
        const { removal, ...result } = replaceOrRefuse(() =>
          replaceNetwork(inputPaths(ctx.config()), req.body.network, guardOf(ctx, req.body.force), req.body.orphans),
        );
        const user = currentUser(req).user.username;
        const removed = approveRemoval(ctx, removal, user, 'network.json');
        ctx.log.info({ user, nodes: result.nodes, reparented: result.reparented?.count }, 'web: network.json replaced');
        return { ok: true, ...result, ...(removed !== undefined ? { removed } : {}) };
      }),
  );
}
