/**
 * lqos.conf: read (secrets redacted), its key descriptions, and edits (validated, then reloaded; the
 * reply names the changed keys that wait for an lqosd restart).
 */
import type { FastifyInstance } from 'fastify';
import type { ConfigPayload, ConfigSaved, ConfigSchemaPayload } from '../../api/config.ts';
import { describeConfig } from '../../config/describe.ts';
import { changedKeys, restartOnlyChanges } from '../../config/restart.ts';
import { currentUser } from '../access.ts';
import { applyConfigPatch, configPatchJsonSchema, ConfigUpdateError } from '../configEdit.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import { isSecretKey, redactSecrets } from '../redact.ts';

export async function configRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx, serialized } = d;

  app.get('/api/config', { config: { access: 'read_only' } }, async (): Promise<ConfigPayload> => ({
    path: ctx.configPath,
    config: redactSecrets(ctx.config()),
  }));

  // Every lqos.conf key with its type, range, accepted values and secret-ness (the config forms).
  const schema: ConfigSchemaPayload = { keys: describeConfig(isSecretKey) };
  app.get('/api/config/schema', { config: { access: 'read_only' } }, async (): Promise<ConfigSchemaPayload> => schema);

  app.put<{ Body: Record<string, unknown> }>(
    '/api/config',
    { config: { access: 'admin' }, schema: { body: configPatchJsonSchema() } },
    async (req): Promise<ConfigSaved> =>
      serialized(async () => {
        let loaded;
        const before = ctx.config();
        try {
          loaded = applyConfigPatch(ctx.configPath, req.body, { stateDirectory: ctx.config().state_directory, usersFile: d.usersFile });
        } catch (err) {
          if (err instanceof ConfigUpdateError) throw new HttpError(err.status, err.code, err.message, { details: err.details });
          throw err;
        }
        ctx.log.info({ user: currentUser(req).user.username, sections: Object.keys(req.body) }, 'web: configuration changed');
        try {
          await ctx.reloadConfig();
        } catch (err) {
          ctx.log.error({ err: (err as Error).message }, 'web: config written but reload failed');
          throw new HttpError(500, 'reload_failed', 'the configuration was saved but lqosd could not reload it; see the lqosd log');
        }
        // Keys lqosd reads only at start: saved and reloaded, but in force only after a restart.
        const restartRequired = restartOnlyChanges(changedKeys(before, ctx.config()));
        return { ok: true, warnings: loaded.warnings, restartRequired, config: redactSecrets(ctx.config()) };
      }),
  );
}
