/**
 * Urgent issues the scheduler raised that no longer apply. lqosd's store keys issues by dedupe key
 * and lets any bus client resolve a key (`urgent_resolve`); the scheduler's keys are `scheduler:*`.
 * A scheduler process only remembers what it raised itself, so at start and at every cycle it asks
 * lqosd for the list and resolves:
 * - `scheduler:integration:<name>` of an integration that is not the one that runs now (disabled,
 *   replaced by another, or raised by an earlier process for a test/diagnostic command).
 * The enabled integration's own key is resolved by its next good run; `scheduler:config` by the
 * first good read of lqos.conf (./configWatch.ts); `scheduler:shaping` / `scheduler:overrides` by the
 * next good shaping run.
 */
import type { UrgentIssue } from '../api/urgent.ts';
import type { Logger } from '../util/log.ts';
import type { StatusReporter } from './reporter.ts';

export const INTEGRATION_KEY_PREFIX = 'scheduler:integration:';
export const urgentKeyFor = (integration: string) => `${INTEGRATION_KEY_PREFIX}${integration}`;

/** Resolves the integration issues of integrations other than `current`; returns the names resolved. */
export async function resolveStaleIntegrationIssues(reporter: StatusReporter, log: Logger, current: readonly string[]): Promise<string[]> {
  const list = await reporter.send<'urgent_list', { issues: UrgentIssue[] }>('urgent_list', {});
  if (!list) return [];
  const keep = new Set(current.map(urgentKeyFor));
  const done: string[] = [];
  for (const i of list.issues) {
    if (!i.key.startsWith(INTEGRATION_KEY_PREFIX) || keep.has(i.key)) continue;
    const name = i.key.slice(INTEGRATION_KEY_PREFIX.length);
    await reporter.resolve(i.key);
    log.info(`resolved the urgent issue of integration ${name}: it is no longer the enabled integration`);
    done.push(name);
  }
  return done;
}
