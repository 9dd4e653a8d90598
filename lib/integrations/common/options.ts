/**
 * Builder options from lqos.conf — the one place that knows which config key feeds which shared rule
 * (spec §2.1), so every integration reads them the same way.
 */
import type { LqosConfig } from '../../config/schema.ts';
import type { BuildOptions, Strategy } from './graph.ts';
import { STRATEGIES } from './graph.ts';
import type { IpFilterMode } from './ip.ts';
import type { ClientRateFactors } from './rates.ts';

/** Fixed ratio of the CSV minimums to the maximums for the shared (non-UISP) path (spec §2.5). */
export const COMMIT_RATIO = 0.98;
/** Shared CSV rate floor (Mbps) for the non-UISP path. */
export const RATE_FLOOR_MBPS = 1.0;

export function buildOptionsFromConfig(
  config: LqosConfig,
  crm: string,
  strategy: Strategy,
  overrides: Partial<BuildOptions> & { ipFilterMode?: IpFilterMode } = {},
): BuildOptions {
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
    ...overrides,
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
