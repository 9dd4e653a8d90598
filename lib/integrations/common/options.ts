/**
 * Reading lqos.conf for the integrations: required settings, and the builder options — the one place
 * that knows which config key feeds which shared rule (spec §2.1), so every integration reads them the
 * same way.
 */
import type { LqosConfig } from '../../config/schema.ts';
import { IntegrationError } from './errors.ts';
import type { BuildOptions, Strategy } from './graphModel.ts';
import { STRATEGIES } from './graphModel.ts';
import type { IpFilterMode } from './ip.ts';
import type { IntegrationLogger } from './log.ts';
import type { ClientRateFactors } from './rates.ts';

/** Fixed ratio of the CSV minimums to the maximums for the shared (non-UISP) path (spec §2.5). */
export const COMMIT_RATIO = 0.98;
/** Shared CSV rate floor (Mbps) for the non-UISP path. */
export const RATE_FLOOR_MBPS = 1.0;

/** The keys of a config section that hold text. */
type TextKeys<S> = { [K in keyof S]: S[K] extends string ? K : never }[keyof S] & string;

/**
 * The integration's config section, once every key in `keys` is set: the first one left blank throws
 * `<CRM>: <section>.<key> is empty; set it in lqos.conf`.
 */
export function requireSettings<K extends keyof LqosConfig>(
  crm: string,
  config: LqosConfig,
  section: K,
  keys: readonly TextKeys<LqosConfig[K]>[],
): LqosConfig[K] {
  const values = config[section] as LqosConfig[K] & Record<string, unknown>;
  for (const key of keys) {
    if (String(values[key]).trim() === '') throw new IntegrationError(`${crm}: ${section}.${key} is empty; set it in lqos.conf`, { crm });
  }
  return values;
}

/**
 * An integration's HTTP timeout in ms from its `timeout_secs`, at least `floorSecs` (upstream's floor
 * for that CRM); a smaller setting is raised with a warning naming the key (`key`, e.g.
 * `netzur_integration.timeout_secs`). Call it once per run.
 */
export function timeoutMsWithFloor(crm: string, key: string, secs: number, floorSecs: number, log: Pick<IntegrationLogger, 'warn'>): number {
  if (secs < floorSecs) log.warn(`${crm}: ${key} = ${secs} is below ${floorSecs}; ${floorSecs} s is used (as upstream)`);
  return Math.max(floorSecs, secs) * 1000;
}

export function buildOptionsFromConfig(
  config: LqosConfig,
  crm: string,
  strategy: Strategy,
  overrides: Partial<BuildOptions> & { ipFilterMode?: IpFilterMode; clientMultiplierApplied?: boolean } = {},
): BuildOptions {
  const { clientMultiplierApplied = true, ...own } = overrides;
  const notes: string[] = [];
  const asked = parseStrategy(config.topology.compile_mode);
  if (asked && asked !== strategy) {
    notes.push(`[topology] compile_mode = "${config.topology.compile_mode.trim()}" is not a mode this integration builds; its tree is built as "${strategy}"`);
  }
  const multiplier = config.integration_common.client_bandwidth_multiplier;
  if (!clientMultiplierApplied && multiplier !== 1) {
    notes.push(`integration_common.client_bandwidth_multiplier = ${multiplier} is not applied by this integration (as upstream): its plan rates are used as the CRM gives them`);
  }
  return {
    crm,
    strategy,
    linkMbps: { download: config.queues.downlink_bandwidth_mbps, upload: config.queues.uplink_bandwidth_mbps },
    defaultNodeMbps: { download: config.queues.generated_pn_download_mbps, upload: config.queues.generated_pn_upload_mbps },
    ipFilterMode: 'ignore-only',
    ignoreSubnets: config.ip_ranges.ignore_subnets,
    allowSubnets: config.ip_ranges.allow_subnets,
    circuitNameAsAddress: config.integration_common.circuit_name_as_address,
    excludeSites: config.uisp_integration.exclude_sites,
    exceptionCpes: config.uisp_integration.exception_cpes,
    promoteToRoot: config.integration_common.promote_to_root,
    rateFloorMbps: RATE_FLOOR_MBPS,
    commitRatio: COMMIT_RATIO,
    alwaysOverwriteNetworkJson: config.integration_common.always_overwrite_network_json,
    // upstream find_ipv6_using_mikrotik(): either switch turns it on for every integration
    ...(config.integration_common.use_mikrotik_ipv6 || config.uisp_integration.ipv6_with_mikrotik ? { mikrotikIpv6ConfigPath: config.mikrotik_ipv6.config_path } : {}),
    ...(notes.length ? { notes } : {}),
    ...own,
  };
}

/** The shared client-rate factors (spec §2.1: the overhead factor lives in the UISP section). */
export function clientRateFactors(config: LqosConfig): ClientRateFactors {
  return {
    overheadFactor: config.uisp_integration.bandwidth_overhead_factor,
    clientMultiplier: config.integration_common.client_bandwidth_multiplier,
  };
}

/** Normalises a strategy string (`full2` → `full`); undefined when empty or unknown. */
export function parseStrategy(s: string | undefined): Strategy | undefined {
  const v = (s ?? '').trim().toLowerCase();
  if (v === 'full2') return 'full';
  return (STRATEGIES as readonly string[]).includes(v) ? (v as Strategy) : undefined;
}

/**
 * Compile-mode resolution (spec §3 "Common facts"): `[topology] compile_mode` if the CRM supports it,
 * else the CRM's legacy strategy key, else the CRM's default.
 */
export function resolveStrategy(config: LqosConfig, supported: readonly Strategy[], legacy: string | undefined, fallback: Strategy): Strategy {
  const shared = parseStrategy(config.topology.compile_mode);
  if (shared && supported.includes(shared)) return shared;
  const own = parseStrategy(legacy);
  if (own && supported.includes(own)) return own;
  return fallback;
}
