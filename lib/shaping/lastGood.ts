/**
 * The last good inputs: after every successful (non-dry-run) apply, a copy of exactly the inputs
 * that produced the shaping now in force — the effective text (operator files + lqos_overrides.json,
 * after row triage), not the operator's raw files — so that lqosd can re-apply it on its own after a
 * restart when the current inputs are unusable, without depending on lqos_overrides.json or on rows
 * it had to skip.
 *
 * Files (upstream's names, so upstream runbooks that look for them still find them):
 *   <state>/shaping/lastGoodConfig.csv        ShapedDevices.csv as applied
 *   <state>/shaping/lastGoodConfig.json       network.json as applied
 *   <state>/shaping/lastGoodConfig.meta.json  { version, at, sources, sha256, skippedRows }
 * Each file is written atomically; the meta file is written last and carries the SHA-256 of both
 * texts, so a crash between the three renames leaves a pair that does not match its meta and is
 * ignored (with a warning) rather than a torn pair that is applied.
 */
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { StatePaths } from '../config/paths.ts';
import { readTextIfExists, writeFilesAtomic } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';
import type { ShapingInputs } from './inputs.ts';

export interface LastGoodMeta {
  version: 1;
  /** When the inputs were applied (ISO time). */
  at: string;
  /** The files the inputs were read from (the operator's, or the effective copies). */
  sources: { devices: string; network: string };
  sha256: { devices: string; network: string };
  /** Rows of the source that were skipped (kept at their earlier shaping or left out) in that run. */
  skippedRows: number;
}

export interface LastGood {
  meta: LastGoodMeta;
  /** The stored copies as shaping inputs (file names are the stored copies'). */
  inputs: ShapingInputs;
}

const metaSchema = z.object({
  version: z.literal(1),
  at: z.string(),
  sources: z.object({ devices: z.string(), network: z.string() }),
  sha256: z.object({ devices: z.string(), network: z.string() }),
  skippedRows: z.number().int().nonnegative(),
});

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Stores `inputs` as the last good inputs (call only after a successful real apply). */
export function saveLastGood(paths: Pick<StatePaths, 'lastGoodCsv' | 'lastGoodJson' | 'lastGoodMeta'>, inputs: ShapingInputs, opts: { at?: Date; skippedRows?: number } = {}): LastGoodMeta {
  const meta: LastGoodMeta = {
    version: 1,
    at: (opts.at ?? new Date()).toISOString(),
    sources: { devices: inputs.devicesFile, network: inputs.networkFile },
    sha256: { devices: sha256(inputs.devicesText), network: sha256(inputs.networkText) },
    skippedRows: opts.skippedRows ?? 0,
  };
  // All three are written before any is replaced: a full disk keeps the previous copy whole.
  writeFilesAtomic([
    { path: paths.lastGoodCsv, data: inputs.devicesText },
    { path: paths.lastGoodJson, data: inputs.networkText },
    { path: paths.lastGoodMeta, data: JSON.stringify(meta, null, 1) + '\n' },
  ]);
  return meta;
}

/**
 * The stored last good inputs, or undefined when there are none. A copy that cannot be trusted (no
 * or unreadable meta, or texts that do not match it) is reported on `log` and not returned.
 */
export function loadLastGood(paths: Pick<StatePaths, 'lastGoodCsv' | 'lastGoodJson' | 'lastGoodMeta'>, log?: Log): LastGood | undefined {
  const metaPath = paths.lastGoodMeta;
  const metaText = readTextIfExists(metaPath);
  const devicesText = readTextIfExists(paths.lastGoodCsv);
  const networkText = readTextIfExists(paths.lastGoodJson);
  if (metaText === undefined) {
    if (devicesText !== undefined) log?.warn(`${paths.lastGoodCsv} has no ${metaPath} (written by an older version or an interrupted save); it is not used as last good inputs until the next successful run`);
    return undefined;
  }
  let meta: LastGoodMeta;
  try {
    const parsed = metaSchema.safeParse(JSON.parse(metaText));
    if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
    meta = parsed.data as LastGoodMeta;
  } catch (e) {
    log?.warn(`${metaPath} cannot be read (${(e as Error).message}); the last good inputs are not used until the next successful run`);
    return undefined;
  }
  if (devicesText === undefined || networkText === undefined || sha256(devicesText) !== meta.sha256.devices || sha256(networkText) !== meta.sha256.network) {
    log?.warn(`the last good inputs in ${dirname(metaPath)} do not match ${metaPath} (an interrupted save?); they are not used until the next successful run`);
    return undefined;
  }
  return { meta, inputs: { devicesFile: paths.lastGoodCsv, networkFile: paths.lastGoodJson, devicesText, networkText } };
}
