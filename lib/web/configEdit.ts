/**
 * PUT /api/config: a partial object of sections/keys merged into the TOML file, validated with the
 * config schema, written atomically (keeping `<file>.bak`).
 *
 * Merge rules: sections (tables) merge key by key; other values (scalars, lists) replace; `null`
 * removes a key or a whole section (e.g. `{"bridge": null, "single_interface": {...}}`); a secret key
 * sent as "set" / "not set" (what GET shows) keeps the stored value — send "" to clear a secret.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError, coreSchema, isTable, parseConfigText, type LoadedConfig, type Table } from '../config/load.ts';
import { configSchema } from '../config/schema.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import { collectSecretValues, isSecretKey, isSecretPlaceholder, scrubText } from './redact.ts';

/** Top-level keys of lqos.conf that are tables, with their key names. */
function configShape(): Map<string, string[] | null> {
  const top = coreSchema(configSchema);
  if (!(top instanceof z.ZodObject)) throw new Error('config schema is not an object');
  const out = new Map<string, string[] | null>();
  for (const [key, child] of Object.entries(top.shape as Record<string, z.ZodType>)) {
    const c = coreSchema(child);
    out.set(key, c instanceof z.ZodObject ? Object.keys(c.shape as Record<string, unknown>) : null);
  }
  return out;
}

/**
 * JSON schema of the PUT body: only known sections and keys (additionalProperties false); the value
 * types are left to the config schema, which names the key and the expected type in its messages.
 */
export function configPatchJsonSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [key, sectionKeys] of configShape()) {
    properties[key] = sectionKeys
      ? {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: Object.fromEntries(sectionKeys.map((k) => [k, {}])),
        }
      : {};
  }
  return { type: 'object', additionalProperties: false, minProperties: 1, properties };
}

/** Deep merge of a patch into a parsed TOML document (see the module comment for the rules). */
export function mergeConfigPatch(raw: Table, patch: Table): Table {
  const out: Table = { ...raw };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete out[key];
    } else if (isSecretKey(key) && isSecretPlaceholder(value)) {
      continue; // unchanged
    } else if (isTable(value) && isTable(out[key])) {
      out[key] = mergeConfigPatch(out[key] as Table, value);
    } else if (isTable(value)) {
      out[key] = mergeConfigPatch({}, value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

export class ConfigUpdateError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

/**
 * Merges, validates and writes. Returns the loaded result of the new text. Throws ConfigUpdateError
 * (messages scrubbed of secret values) when the result is invalid; the file is then untouched.
 */
export function applyConfigPatch(configPath: string, patch: Table): LoadedConfig {
  let text: string;
  let raw: Table;
  try {
    text = readFileSync(configPath, 'utf8');
    raw = parseToml(text) as Table;
  } catch (err) {
    throw new ConfigUpdateError(500, 'config_unreadable', `cannot read the current configuration: ${(err as Error).message.split('\n')[0]}`);
  }
  const merged = mergeConfigPatch(raw, patch);
  let newText: string;
  try {
    newText = `${stringifyToml(merged)}\n`;
  } catch (err) {
    throw new ConfigUpdateError(400, 'invalid_config', `cannot write these values as TOML: ${(err as Error).message}`);
  }
  const secrets = collectSecretValues(raw);
  collectSecretValues(merged, secrets);
  let loaded: LoadedConfig;
  try {
    loaded = parseConfigText(newText, configPath, { requireInterfaces: true });
  } catch (err) {
    if (err instanceof ConfigError) {
      const details = (err.details.length > 0 ? err.details : [err.message]).map((d) => scrubText(d, secrets));
      throw new ConfigUpdateError(422, 'invalid_config', `the configuration was not saved: ${details.join('; ')}`, details);
    }
    throw err;
  }
  writeFileAtomic(configPath, newText, { backup: true });
  return loaded;
}
