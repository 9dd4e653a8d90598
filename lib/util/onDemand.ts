/**
 * Loads a package the first time a run needs it (Node's synchronous require), so a command's
 * start-up does not pay for a library only some runs use (csv-parse's fallback parser,
 * csv-stringify, pino-pretty). The caller names the type: `loadOnDemand<typeof import('x')>('x')`.
 */
import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

export function loadOnDemand<T>(name: string): T {
  return requireFromHere(name) as T;
}
