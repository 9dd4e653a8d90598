/**
 * PUT /api/config: a partial object of sections/keys merged into the TOML file, validated with the
 * config schema, written atomically with mode 0600 (it holds the CRM credentials; its backups too).
 *
 * Merge rules: sections (tables) merge key by key; other values (scalars, lists) replace; `null`
 * removes a key or a whole section (e.g. `{"bridge": null, "single_interface": {...}}`); a secret key
 * sent as "set" / "not set" (what GET shows) keeps the stored value — send "" to clear a secret.
 *
 * Two guards: a change of a section's URL (`url`, `*_url`) needs that section's stored secrets sent
 * again (else the stored token would go to the new address); a change of `state_directory` carries
 * the web users file (lqusers.toml) into the new directory, so the next start does not reopen
 * first-run, and is refused when the new directory is a system one or a shared one lqosd may not
 * narrow to 0750 (carryUsersFile).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError, coreSchema, isTable, parseConfigText, type LoadedConfig, type Table } from '../config/load.ts';
import { configSchema, systemStateDirectoryProblem } from '../config/schema.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import { patchTomlText } from '../config/tomlPatch.ts';
import { ensureStateDir, inspectStateDir, leftReason, STATE_DIR_MODE } from '../util/fileModes.ts';
import { collectSecretValues, isSecretKey, isSecretPlaceholder, isUrlKey, scrubText } from './redact.ts';

/** Mode of lqos.conf and its backups written by the web API: root only (CRM credentials). */
export const CONFIG_FILE_MODE = 0o600;
const USERS_FILE = 'lqusers.toml';

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

const hasValue = (v: unknown) => v !== undefined && v !== null && v !== '';

/**
 * Secrets that must be sent again because their section's URL changes: for each table of `patch`
 * that changes a URL-like key (isUrlKey) of the stored `raw` section, the section's secret keys
 * with a stored value that the patch does not replace (absent, or the "set" placeholder). Pure.
 * Returns `section.key` paths, e.g. `["uisp_integration.token"]`, and the URL keys that changed.
 */
export function secretsNeedingReentry(raw: Table, patch: Table): { urls: string[]; secrets: string[] } {
  const urls: string[] = [];
  const secrets: string[] = [];
  for (const [section, sp] of Object.entries(patch)) {
    if (!isTable(sp) || !isTable(raw[section])) continue;
    const stored = raw[section] as Table;
    // Removing a URL (null) changes it too: the schema default (e.g. http://localhost:8086) takes its place.
    const changed = Object.keys(sp).filter(
      (k) => isUrlKey(k) && (sp[k] === null ? hasValue(stored[k]) : JSON.stringify(sp[k]) !== JSON.stringify(stored[k] ?? '')),
    );
    if (changed.length === 0) continue;
    const kept = Object.keys(stored).filter((k) => isSecretKey(k) && hasValue(stored[k]) && (!(k in sp) || isSecretPlaceholder(sp[k])));
    if (kept.length === 0) continue;
    urls.push(...changed.map((k) => `${section}.${k}`));
    secrets.push(...kept.map((k) => `${section}.${k}`));
  }
  return { urls, secrets };
}

function requireSecretReentry(raw: Table, patch: Table): void {
  const { urls, secrets } = secretsNeedingReentry(raw, patch);
  if (secrets.length === 0) return;
  throw new ConfigUpdateError(
    400,
    'secret_reentry_required',
    `${urls.join(', ')} changes where the credentials are sent: enter ${secrets.join(', ')} again in the same save ` +
      '(the stored values are not sent to a new address); nothing was saved',
    secrets,
  );
}

export interface ConfigPatchContext {
  /** The state directory in force (absolute): a change moves the users file from here. */
  stateDirectory?: string;
  /** The users file in use (default `<stateDirectory>/lqusers.toml`). */
  usersFile?: string;
}

/**
 * When the save moves `state_directory`, before anything is written: refuses (422) a path that
 * resolves to a system directory (a relative one; absolute ones the schema refuses already) and
 * (409) an existing directory wider than 0750 that is not lqos-ts's own (lib/util/fileModes.ts
 * inspectStateDir: sticky, or holding other files), since lqosd narrows only a directory of its
 * own. Then copies the users file (mode 0600) into the new directory unless one is there already, so
 * the next start finds the same users (and does not reopen first-run); creating the directory
 * (0750) when absent. Refuses the save (409) when the copy cannot be made.
 */
export function carryUsersFile(configPath: string, newStateDir: string, ctx: ConfigPatchContext): string | undefined {
  if (ctx.stateDirectory === undefined) return undefined;
  const to = resolve(dirname(resolve(configPath)), newStateDir);
  if (to === resolve(ctx.stateDirectory)) return undefined;
  const system = systemStateDirectoryProblem(to);
  if (system) throw new ConfigUpdateError(422, 'invalid_config', `the configuration was not saved: state_directory: ${system}`, [`state_directory: ${system}`]);
  const from = ctx.usersFile ?? join(ctx.stateDirectory, USERS_FILE);
  const dest = join(to, USERS_FILE);
  try {
    refuseSharedStateDir(to);
    if (!existsSync(from) || existsSync(dest)) return undefined;
    ensureStateDir(to, STATE_DIR_MODE);
    writeFileAtomic(dest, readFileSync(from, 'utf8'), { mode: 0o600 });
    return dest;
  } catch (err) {
    if (err instanceof ConfigUpdateError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    const sandbox = code === 'EROFS' ? ' (under systemd lqosd may write only its ReadWritePaths: add the directory with `systemctl edit lqosd`)' : '';
    throw new ConfigUpdateError(
      409,
      'state_directory_unusable',
      `state_directory ${to}: cannot copy the web users file ${from} there (${(err as Error).message})${sandbox}; ` +
        'nothing was saved. Create the directory (root, mode 0750) or copy the file yourself, then save again',
    );
  }
}

/** 409 when `dir` exists, is wider than 0750 and is not lqos-ts's own (it would be left wide). */
function refuseSharedStateDir(dir: string): void {
  let outcome;
  try {
    outcome = inspectStateDir(dir, STATE_DIR_MODE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'ENOENT') return; // reported by the copy (or created then)
    throw err;
  }
  if (outcome.action !== 'left') return;
  throw new ConfigUpdateError(
    409,
    'state_directory_shared',
    `state_directory ${dir} ${leftReason(outcome)}; lqosd narrows its state directory to 0750 ` +
      'only when the directory is its own, and keeps subscriber data and the web users there. Nothing was saved: choose a new ' +
      `or empty directory (such as ${join(dir, 'lqos-state')}), or narrow this one yourself (chmod 0750 ${dir}) if nothing else needs it wider`,
  );
}

/**
 * Merges, validates and writes. Returns the loaded result of the new text. Throws ConfigUpdateError
 * (messages scrubbed of secret values) when the result is invalid; the file is then untouched.
 */
export function applyConfigPatch(configPath: string, patch: Table, ctx: ConfigPatchContext = {}): LoadedConfig {
  let text: string;
  let raw: Table;
  try {
    text = readFileSync(configPath, 'utf8');
    raw = parseToml(text) as Table;
  } catch (err) {
    throw new ConfigUpdateError(500, 'config_unreadable', `cannot read the current configuration: ${(err as Error).message.split('\n')[0]}`);
  }
  requireSecretReentry(raw, patch);
  const merged = mergeConfigPatch(raw, patch);
  let newText: string;
  let wholeFile = false;
  try {
    // In place when it can be (comments, order and spacing kept: lib/config/tomlPatch.ts), else the whole document.
    const inPlace = patchTomlText(text, merged);
    newText = inPlace ?? `${stringifyToml(merged)}\n`;
    wholeFile = inPlace === undefined;
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
  carryUsersFile(configPath, loaded.config.state_directory, ctx);
  writeFileAtomic(configPath, newText, { backup: true, mode: CONFIG_FILE_MODE });
  if (wholeFile) {
    loaded.warnings.push(
      `${basename(configPath)} was written whole, so its comments and layout were not kept (it uses dotted keys, inline tables or a value the editor cannot change in place); the previous file is ${basename(configPath)}.bak`,
    );
  }
  return loaded;
}
