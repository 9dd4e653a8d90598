/**
 * What every integration's `run()` shares: its options and the final build → validate → write step.
 */
import type { BuildResult, IntegrationSummary, TopologyBuilder } from './graph.ts';
import type { HttpOptions } from './http.ts';
import type { IntegrationLogger } from './log.ts';
import { formatIssue } from '../../inputs/validate.ts';
import { validateIntegrationOutput, writeIntegrationOutput } from './output.ts';
import { IntegrationError } from './errors.ts';

export interface RunOptions {
  log: IntegrationLogger;
  /** Directory receiving network.json and ShapedDevices.csv (normally `lqos_directory`). */
  outDir: string;
  /** Build and validate, but write nothing; the summary then carries the file texts in `preview`. */
  dryRun?: boolean;
  /** HTTP timeouts/retries (tests shorten them). Integration-specific config values win where the spec has one. */
  http?: HttpOptions;
  /** Environment for settings that have no lqos.conf key (REST source). Default `process.env`. */
  env?: Record<string, string | undefined>;
}

export interface RunResult extends IntegrationSummary {
  /** On a dry run: the texts that would have been written. */
  preview?: { networkJson: string; shapedDevicesCsv: string };
}

/** Builds the pair, then writes it (validated, atomic) — or, on a dry run, only validates it. */
export function finishRun(builder: TopologyBuilder, opts: RunOptions): RunResult {
  const crm = builder.opts.crm;
  const built: BuildResult = builder.build();
  const { networkJson, shapedDevicesCsv, summary } = built;
  if (opts.dryRun) {
    const errors = validateIntegrationOutput(networkJson, shapedDevicesCsv).filter((i) => i.severity === 'error');
    if (errors.length > 0) {
      const lines = errors.map(formatIssue);
      throw new IntegrationError(`${crm}: the generated files fail validation (${errors.length} errors):\n  ${lines.slice(0, 20).join('\n  ')}`, {
        crm,
        details: lines,
      });
    }
    return { ...summary, preview: { networkJson, shapedDevicesCsv } };
  }
  const written = writeIntegrationOutput({ networkJson, shapedDevicesCsv, dir: opts.outDir, crm });
  opts.log.info(
    `${crm}: wrote ${written.networkJson} and ${written.shapedDevicesCsv} (${summary.sites} sites, ${summary.aps} APs, ${summary.circuits} circuits, ${summary.devices} devices, ${summary.skipped.length} skipped)`,
  );
  return { ...summary, written: { networkJson: written.networkJson, shapedDevicesCsv: written.shapedDevicesCsv } };
}

/** Reads a required field; throws an IntegrationError naming CRM, endpoint, field and item. */
export function req<T = unknown>(obj: unknown, field: string, ctx: { crm: string; endpoint: string; item: string }, check?: (v: unknown) => boolean): T {
  const v = obj !== null && typeof obj === 'object' ? (obj as Record<string, unknown>)[field] : undefined;
  if (v === undefined || v === null || (check && !check(v))) {
    throw new IntegrationError(
      `${ctx.crm}: ${ctx.endpoint}: required field "${field}" is missing or invalid in ${ctx.item}; the response is not what this integration expects`,
      { crm: ctx.crm, endpoint: ctx.endpoint },
    );
  }
  return v as T;
}

/** Asserts the body is an array (or an object holding one under `key`). */
export function reqArray(body: unknown, ctx: { crm: string; endpoint: string }, key?: string): unknown[] {
  const v = key === undefined ? body : body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined;
  if (!Array.isArray(v)) {
    const what = key === undefined ? 'the response body' : `field "${key}"`;
    throw new IntegrationError(`${ctx.crm}: ${ctx.endpoint}: ${what} is missing or not a list; the response is not what this integration expects`, {
      crm: ctx.crm,
      endpoint: ctx.endpoint,
    });
  }
  return v;
}

/** `""`, `null`, `0`, `"0"` → undefined; otherwise the id as a string (CRM ids are compared as text). */
export function idText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = String(v).trim();
  return s === '' || s === '0' ? undefined : s;
}

/** A trimmed string or ''. */
export function text(v: unknown): string {
  return v === undefined || v === null ? '' : String(v).trim();
}

/** A finite number or undefined (numeric strings accepted). */
export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const x = Number(v);
    return Number.isFinite(x) ? x : undefined;
  }
  return undefined;
}
