/**
 * The inputs every shaping run shapes: the operator's ShapedDevices.csv and network.json with
 * `lqos_overrides.json` applied. Every run path builds them here — the scheduler, `LibreQoS`
 * (submit to lqosd, `--direct`, dry run, `--validate`) and lqosd's own refresh — so no path can
 * undo the operator's overrides.
 *
 * - No overrides file, or one with nothing that changes the inputs: the operator's files as they
 *   are (stale effective copies are removed, they would only confuse).
 * - Overrides in effect: the result is written to `<state_directory>/shaping/effective/`
 *   (`ShapedDevices.csv`, `network.json`, and `overrides_applied.json` saying what changed); the
 *   operator's files are never rewritten. `write: false` (`--validate`) builds it in memory only.
 *   The effective files keep the operator's line numbers (lib/overrides/apply.ts), so messages name
 *   them after the operator's files: `/…/ShapedDevices.csv (with lqos_overrides.json applied):57`
 *   is line 57 of the operator's file as the overrides change it. Rows a persistent device adds come
 *   after the operator's last line (logged with their line). Only when the devices file had to be
 *   rewritten row by row do messages name the effective copy itself.
 * - An invalid overrides file refuses the run: nothing is applied, the error names
 *   lqos_overrides.json, the JSON path and what is wrong.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { inputPaths, type InputPaths, type StatePaths } from '../config/paths.ts';
import { applyOverrides } from '../overrides/apply.ts';
import { loadOverrides, OverridesError, type LoadedOverrides } from '../overrides/load.ts';
import { hasEffect } from '../overrides/schema.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import { DATA_FILE_MODE } from '../util/fileModes.ts';
import type { Log } from '../util/log.ts';
import { RecordingLog, replayRecords } from '../util/logRecords.ts';
import { OVERRIDES_APPLIED_FILE } from './overridesApplied.ts';
import { readShapingInputs, type ShapingInputs } from './inputs.ts';

export type EffectiveInputs =
  | {
      ok: true;
      inputs: ShapingInputs;
      /** True when lqos_overrides.json changed the inputs (`inputs` are then the effective copies). */
      overridden: boolean;
      /** What the overrides changed, one line each. */
      changes: string[];
      /**
       * Where `inputs` are on disk (what a submit to lqosd reads), when they differ from the names in
       * `inputs` (the effective copies, named after the operator's files); absent for an in-memory build.
       */
      files?: { devices: string; network: string };
    }
  | {
      ok: false;
      /** `overrides`: lqos_overrides.json is invalid; `input`: an input file is missing. */
      reason: 'overrides' | 'input';
      /** What is wrong and what to do (already logged). */
      message: string;
      overridesError?: OverridesError;
    };

export interface EffectiveInputsOptions {
  /** Write the effective copies (default true); false: build them in memory (validation only). */
  write?: boolean;
  /** The operator's files, when the caller has read them already (they are not read again). */
  source?: ShapingInputs;
}

export interface EffectiveInputsPaths {
  inputs: Pick<InputPaths, 'devices' | 'network' | 'overrides'>;
  state: Pick<StatePaths, 'effectiveDir'>;
}

function loadOrFail(file: string, log: Log): LoadedOverrides | Extract<EffectiveInputs, { ok: false }> {
  try {
    return loadOverrides(file);
  } catch (e) {
    if (!(e instanceof OverridesError)) throw e;
    log.error({ code: 'overrides-invalid', file }, `${e.message}\nFix ${file} (or remove it) and run again; nothing was applied and the shaping in force is unchanged.`);
    return { ok: false, reason: 'overrides', message: e.message, overridesError: e };
  }
}

/** The operator's files with lqos_overrides.json applied (see the file comment). Logs what it does. */
export function buildEffectiveInputs(paths: EffectiveInputsPaths, log: Log, opts: EffectiveInputsOptions = {}): EffectiveInputs {
  const write = opts.write ?? true;
  const file = paths.inputs.overrides;
  const loaded = loadOrFail(file, log);
  if ('ok' in loaded) return loaded;
  const missing = new RecordingLog((r) => replayRecords([r], log));
  const source = opts.source ?? readShapingInputs(paths.inputs, missing);
  if (!source) return { ok: false, reason: 'input', message: missing.records.find((r) => r.level === 'error')?.msg ?? 'an input file is missing' };

  const eff = paths.state.effectiveDir;
  if (!loaded.present || !hasEffect(loaded.overrides)) {
    if (write && existsSync(eff)) rmSync(eff, { recursive: true, force: true });
    if (loaded.present) log.info(`${file}: nothing in it changes the inputs; shaping ${source.devicesFile} and ${source.networkFile} as they are`);
    return { ok: true, inputs: source, overridden: false, changes: [] };
  }

  const { devices, network } = paths.inputs;
  const e = applyOverrides(source, loaded.overrides, { devices, network });
  const out = inputPaths({ lqos_directory: eff });
  const labels = effectiveLabels(source, e, write ? out.devices : undefined);
  for (const c of e.changes) log.info(`override: ${c}`);
  for (const a of e.appended) log.info(`override: ${a.entry} (device ${a.deviceId}) is line ${a.line} of ${labels.devices}`);
  for (const w of e.warnings) log.warn({ code: 'override-unmatched', file }, `override: ${w}`);
  const inputs: ShapingInputs = { devicesFile: labels.devices, networkFile: labels.network, devicesText: e.devicesText, networkText: e.networkText };
  if (write) {
    // Subscriber data: 0640 (docs/OPERATIONS.md, file modes).
    writeFileAtomic(out.devices, e.devicesText, { mode: DATA_FILE_MODE });
    writeFileAtomic(out.network, e.networkText, { mode: DATA_FILE_MODE });
    const applied = { at: new Date().toISOString(), overrides: file, sources: { devices, network }, namedInMessages: labels, devicesLinesKept: e.devicesLayoutKept, appended: e.appended, changes: e.changes, warnings: e.warnings };
    writeFileAtomic(join(eff, OVERRIDES_APPLIED_FILE), JSON.stringify(applied, null, 2) + '\n', { mode: DATA_FILE_MODE });
  }
  log.info(
    { code: 'overrides-applied', changes: e.changes.length, warnings: e.warnings.length, file },
    `lqos_overrides.json: ${e.changes.length} change(s) applied` + (write ? `; effective inputs written to ${eff}` : ' (in memory)'),
  );
  return { ok: true, inputs, overridden: true, changes: e.changes, ...(write ? { files: { devices: out.devices, network: out.network } } : {}) };
}

const APPLIED = ' (with lqos_overrides.json applied)';

/**
 * What messages call the effective files: the operator's own name for a file the overrides left as
 * it is; the operator's name marked as overridden for one that keeps the operator's lines; the
 * effective copy (`copy`, or a note in memory) for a devices file rewritten row by row.
 */
function effectiveLabels(source: ShapingInputs, e: ReturnType<typeof applyOverrides>, copy: string | undefined): { devices: string; network: string } {
  const devices =
    e.devicesText === source.devicesText ? source.devicesFile : e.devicesLayoutKept ? source.devicesFile + APPLIED : (copy ?? `${source.devicesFile} (with lqos_overrides.json applied, rows renumbered)`);
  const network = e.networkText === source.networkText ? source.networkFile : source.networkFile + APPLIED;
  return { devices, network };
}

/**
 * The files of a bus `submit_plan` for these inputs: the paths lqosd reads, and (only when they
 * differ, as an older lqosd refuses the fields) what its messages call them.
 */
export function submittedFiles(eff: Extract<EffectiveInputs, { ok: true }>): { devicesPath: string; networkPath: string; devicesLabel?: string; networkLabel?: string } {
  const files = eff.files ?? { devices: eff.inputs.devicesFile, network: eff.inputs.networkFile };
  return {
    devicesPath: files.devices,
    networkPath: files.network,
    ...(files.devices !== eff.inputs.devicesFile ? { devicesLabel: eff.inputs.devicesFile } : {}),
    ...(files.network !== eff.inputs.networkFile ? { networkLabel: eff.inputs.networkFile } : {}),
  };
}
