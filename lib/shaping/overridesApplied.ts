/**
 * What lqos_overrides.json changed in the inputs, as the last build of the effective inputs recorded
 * it (`<state_directory>/shaping/effective/overrides_applied.json`, ./effectiveInputs.ts). lqosd shows
 * it in the status after each apply, so the web UI says when the shaping in force differs from
 * ShapedDevices.csv / network.json and why.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { OverridesStatus } from '../api/status.ts';

export const OVERRIDES_APPLIED_FILE = 'overrides_applied.json';

/** Changes and warnings the status carries at most (the file has them all). */
export const OVERRIDES_STATUS_MAX = 50;

const appliedSchema = z.object({ at: z.string().max(64), overrides: z.string().max(4096), changes: z.array(z.string()), warnings: z.array(z.string()) });

/**
 * The record in `effectiveDir`; undefined when there is none (no overrides in effect) or it cannot be
 * read as one (`onInvalid` is told why).
 */
export function readOverridesApplied(effectiveDir: string, onInvalid?: (why: string) => void): OverridesStatus | undefined {
  const file = join(effectiveDir, OVERRIDES_APPLIED_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') onInvalid?.(`${file}: ${(e as Error).message}`);
    return undefined;
  }
  let parsed: z.infer<typeof appliedSchema>;
  try {
    parsed = appliedSchema.parse(JSON.parse(text));
  } catch (e) {
    onInvalid?.(`${file} is not a record of applied overrides: ${(e as Error).message.split('\n')[0]}`);
    return undefined;
  }
  const clip = (s: string) => (s.length > 300 ? `${s.slice(0, 299)}…` : s);
  return {
    at: parsed.at,
    file: parsed.overrides,
    changes: parsed.changes.slice(0, OVERRIDES_STATUS_MAX).map(clip),
    changeCount: parsed.changes.length,
    warnings: parsed.warnings.slice(0, OVERRIDES_STATUS_MAX).map(clip),
    warningCount: parsed.warnings.length,
  };
}
