/** ShapedDevices.csv and network.json: read with their issues, replaced (validated first) by admins. */
import type { FastifyInstance } from 'fastify';
import type { NetworkPayload, NetworkSaved, ShapedDevicesPayload, ShapedDevicesSaved } from '../../api/inputs.ts';
import { inputPaths } from '../../config/paths.ts';
import { currentUser } from '../access.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import {
  InputsRejected,
  networkBodySchema,
  readNetworkPayload,
  readShapedDevicesPayload,
  replaceNetwork,
  replaceShapedDevices,
  shapedDevicesBodySchema,
  type CircuitBody,
} from '../inputsEdit.ts';
import { owningIntegration } from '../inputsOwner.ts';
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

/** Runs a replace; refused inputs become 422 with the issues. */
function replaceOrRefuse<T>(replace: () => T): T {
  try {
    return replace();
  } catch (err) {
    if (err instanceof InputsRejected) throw new HttpError(422, 'invalid_inputs', err.message, { issues: err.issues });
    throw err;
  }
}

export async function inputsRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, serialized } = d;
  const ownedBy = () => owningIntegration(ctx.config())?.section ?? null;

  app.get('/api/shaped-devices', { config: { access: 'read_only' } }, async (): Promise<ShapedDevicesPayload> => ({
    ...readShapedDevicesPayload(inputPaths(ctx.config())),
    ownedBy: ownedBy(),
  }));

  app.put<{ Body: { circuits: CircuitBody[] } }>(
    '/api/shaped-devices',
    { config: { access: 'admin' }, bodyLimit: 256 * 1024 * 1024, schema: { body: shapedDevicesBodySchema } },
    async (req): Promise<ShapedDevicesSaved> =>
      serialized(() => {
        ensureEditable(ctx);
        const result = replaceOrRefuse(() => replaceShapedDevices(inputPaths(ctx.config()), req.body.circuits));
        ctx.log.info({ user: currentUser(req).user.username, circuits: result.circuits }, 'web: ShapedDevices.csv replaced');
        return { ok: true, ...result };
      }),
  );

  app.get('/api/network', { config: { access: 'read_only' } }, async (): Promise<NetworkPayload> => ({
    ...readNetworkPayload(inputPaths(ctx.config())),
    ownedBy: ownedBy(),
  }));

  app.put<{ Body: { network: Record<string, unknown> } }>(
    '/api/network',
    { config: { access: 'admin' }, bodyLimit: 64 * 1024 * 1024, schema: { body: networkBodySchema } },
    async (req): Promise<NetworkSaved> =>
      serialized(() => {
        ensureEditable(ctx);
        const result = replaceOrRefuse(() => replaceNetwork(inputPaths(ctx.config()), req.body.network));
        ctx.log.info({ user: currentUser(req).user.username, nodes: result.nodes }, 'web: network.json replaced');
        return { ok: true, ...result };
      }),
  );
}
