/** The Reload button (admins): shape the configured input files now, as the scheduler's refresh does. */
import type { FastifyInstance } from 'fastify';
import type { ReloadResult } from '../../api/reload.ts';
import { BusError } from '../../bus/protocol.ts';
import { currentUser } from '../access.ts';
import type { WebDeps } from '../deps.ts';
import { HttpError } from '../http.ts';
import { reloadResult } from '../reloadResult.ts';

export async function reloadRoutes(app: FastifyInstance, d: WebDeps): Promise<void> {
  const { ctx } = d;
  app.post('/api/reload', { config: { access: 'admin' } }, async (req): Promise<ReloadResult> => {
    if (!ctx.refresh) throw new HttpError(404, 'not_available', 'this server cannot shape (no shaping service): run ./LibreQoS on the shaper');
    const by = currentUser(req).user.username;
    ctx.log.info({ by }, 'web: reload (shape the input files now)');
    try {
      const outcome = await ctx.refresh();
      ctx.log.info({ by, ok: outcome.ok, mode: outcome.mode, exitCode: outcome.exitCode }, 'web: reload finished');
      return reloadResult(outcome);
    } catch (e) {
      if (e instanceof BusError && e.code === 'busy') throw new HttpError(409, 'busy', e.message);
      if (e instanceof BusError) throw new HttpError(503, e.code, e.message);
      throw e;
    }
  });
}
