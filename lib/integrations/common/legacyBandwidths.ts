/**
 * Legacy site-rate files (`integrationSplynxBandwidths.csv`, `integrationUISPbandwidths.csv`,
 * `integrationWISPGateBandwidths.csv`; spec §3.1, §3.3, §3.7): `name,download,upload` in Mbps with one
 * header line, `#` comments allowed. Upstream now migrates them once into operator `adjust_site_speed`
 * entries of lqos_overrides.json and renames them; we do the same (the overrides layer is where every
 * run path applies site rates, lib/overrides/apply.ts, whether network.json is written or kept):
 *
 * - after a successful run of the integration the file belongs to, each row becomes
 *   `{type: adjust_site_speed, site_name, download_bandwidth_mbps, upload_bandwidth_mbps}` (no node_id:
 *   matched by the network.json node name), appended to `network_adjustments`;
 * - a name that already has an adjust_site_speed entry keeps it (the operator's newer value wins);
 * - lqos_overrides.json is rewritten atomically (created when absent), then the legacy file is renamed
 *   `<file>.migrated` (`.migrated-<unix seconds>` if that exists) and a one-time warning says so;
 * - a row that cannot be read, or an invalid lqos_overrides.json, migrates nothing: the file stays
 *   where it is and the warning names the file and line (the run itself succeeds);
 * - a dry run only says what would be migrated.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { readCsvRecords } from '../../inputs/shapedDevices.ts';
import { parseOverrides, parseOverridesText, OverridesError } from '../../overrides/load.ts';
import { writeFileAtomic, readTextIfExists } from '../../util/atomicFile.ts';
import { DATA_FILE_MODE, modeAtMost } from '../../util/fileModes.ts';
import type { IntegrationLogger } from './log.ts';

/** CRM display name → its legacy file (the other integrations never had one). */
export const LEGACY_BANDWIDTH_FILES: Readonly<Record<string, string>> = {
  UISP: 'integrationUISPbandwidths.csv',
  Splynx: 'integrationSplynxBandwidths.csv',
  WISPGate: 'integrationWISPGateBandwidths.csv',
};

export const OVERRIDES_FILE = 'lqos_overrides.json';

export interface LegacyRate {
  name: string;
  download: number;
  upload: number;
  line: number;
}

export interface MigrationResult {
  /** The legacy file, when there is one for this CRM and it exists. */
  file?: string;
  /** Rows added to lqos_overrides.json. */
  migrated: LegacyRate[];
  /** Rows whose name already had an adjust_site_speed entry. */
  kept: LegacyRate[];
  /** Where the legacy file went. */
  renamedTo?: string;
}

/** Reads `name,download,upload` rows (first non-comment line = header); throws Error naming the line. */
export function parseLegacyBandwidths(text: string, file: string): LegacyRate[] {
  const { records, error } = readCsvRecords(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  if (error) throw new Error(`${file}:${error.line}: ${error.message}`);
  const out: LegacyRate[] = [];
  for (const r of records.slice(1)) {
    if (r.fields.every((f) => f === '')) continue;
    if (r.fields.length !== 3) throw new Error(`${file}:${r.line}: expected 3 fields (name,download,upload), found ${r.fields.length}`);
    const [name, down, up] = r.fields;
    if (name === '') throw new Error(`${file}:${r.line}: the site name is empty`);
    const rate = (s: string, what: string) => {
      const n = Number(s);
      if (s === '' || !Number.isFinite(n) || n <= 0) throw new Error(`${file}:${r.line}: ${what} "${s}" is not a rate in Mbps (a number > 0)`);
      return n;
    };
    out.push({ name, download: rate(down, 'download'), upload: rate(up, 'upload'), line: r.line });
  }
  return out;
}

function freeName(path: string): string {
  const base = `${path}.migrated`;
  return existsSync(base) ? `${base}-${Math.floor(Date.now() / 1000)}` : base;
}

/** Migrates `crm`'s legacy file in `dir` into `dir`/lqos_overrides.json (see the file comment). */
export function migrateLegacyBandwidths(crm: string, dir: string, log: IntegrationLogger, dryRun = false): MigrationResult {
  const name = LEGACY_BANDWIDTH_FILES[crm];
  if (!name) return { migrated: [], kept: [] };
  const file = join(dir, name);
  const text = readTextIfExists(file);
  if (text === undefined) return { migrated: [], kept: [] };
  const overridesPath = join(dir, OVERRIDES_FILE);
  const nothing = (why: string): MigrationResult => {
    log.warn(`${crm}: ${why}; its site rates were NOT migrated to ${overridesPath} and do not apply — fix it and the next run migrates it`);
    return { file, migrated: [], kept: [] };
  };

  let rates: LegacyRate[];
  try {
    rates = parseLegacyBandwidths(text, file);
  } catch (e) {
    return nothing((e as Error).message);
  }
  let raw: Record<string, unknown> = {};
  const current = readTextIfExists(overridesPath);
  try {
    if (current !== undefined) {
      parseOverridesText(current, overridesPath);
      raw = JSON.parse(current.charCodeAt(0) === 0xfeff ? current.slice(1) : current) as Record<string, unknown>;
    }
  } catch (e) {
    const why = e instanceof OverridesError ? e.message.split('\n')[0] : (e as Error).message;
    return nothing(`${file} is waiting to be migrated, but ${why}`);
  }
  const adjustments = Array.isArray(raw.network_adjustments) ? [...(raw.network_adjustments as Record<string, unknown>[])] : [];
  const existing = new Set(adjustments.filter((a) => a.type === 'adjust_site_speed').map((a) => String(a.site_name)));
  const migrated: LegacyRate[] = [];
  const kept: LegacyRate[] = [];
  for (const r of rates) {
    if (existing.has(r.name)) {
      kept.push(r);
      continue;
    }
    existing.add(r.name);
    migrated.push(r);
    adjustments.push({ type: 'adjust_site_speed', site_name: r.name, download_bandwidth_mbps: r.download, upload_bandwidth_mbps: r.upload });
  }
  const keptNote = kept.length > 0 ? `; ${kept.length} name(s) already had a rate override there, which is kept (${kept.map((k) => `"${k.name}"`).join(', ')})` : '';
  if (dryRun) {
    log.warn(`${crm}: dry run: ${file} would be migrated: ${migrated.length} site rate(s) added to ${overridesPath} as adjust_site_speed entries${keptNote}; nothing changed`);
    return { file, migrated, kept };
  }

  const doc = { ...raw, network_adjustments: adjustments };
  parseOverrides(doc, overridesPath); // what we write must load
  try {
    writeFileAtomic(overridesPath, JSON.stringify(doc, null, 2) + '\n', { mode: modeAtMost(overridesPath, DATA_FILE_MODE), backup: current !== undefined });
  } catch (e) {
    return nothing(`cannot write ${overridesPath}: ${(e as Error).message}`);
  }
  const renamedTo = freeName(file);
  try {
    renameSync(file, renamedTo);
  } catch (e) {
    log.warn(`${crm}: migrated ${file} into ${overridesPath}, but could not rename it (${(e as Error).message}); the next run finds nothing new in it — move it away by hand`);
    return { file, migrated, kept };
  }
  log.warn(
    `${crm}: one-time migration: ${migrated.length} site rate(s) from ${file} are now adjust_site_speed entries in ${overridesPath} (they apply from this shaping run on; edit them there)${keptNote}; the old file was renamed ${renamedTo}`,
  );
  return { file, migrated, kept, renamedTo };
}
