/** The value at a key path (`['queues', 'dry_run']`) inside parsed TOML or a config object; undefined when absent. */
export function valueAt(raw: unknown, at: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const k of at) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}
