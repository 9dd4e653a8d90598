/** Whether a CRM integration owns ShapedDevices.csv / network.json (the editors are then read-only). */
import type { LqosConfig } from '../config/schema.ts';

/**
 * The enabled CRM integration that owns the input files, if any: the first `*_integration` section
 * with an `enable_*` key set to true.
 */
export function owningIntegration(config: LqosConfig): { section: string; key: string } | undefined {
  for (const [section, value] of Object.entries(config as Record<string, unknown>)) {
    if (!section.endsWith('_integration') || typeof value !== 'object' || value === null) continue;
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key.startsWith('enable_') && v === true) return { section, key };
    }
  }
  return undefined;
}
