/**
 * Integration name → module, and which integrations lqos.conf enables.
 *
 * Upstream runs at most one integration per cycle: the first enabled one in the fixed priority order
 * UISP → Splynx → VISP → Netzur → Powercode → Sonar → WISPGate (spec §1.4). `enabledIntegrations`
 * returns the enabled, implemented ones in that order; a scheduler should run only the first.
 * `rest` has no lqos.conf section (spec §3.8) and is never enabled: it runs only when asked by name.
 */
import type { LqosConfig } from '../config/schema.ts';
import type { RunOptions, RunResult } from './common/run.ts';
import { INTEGRATION_NAMES, type IntegrationName } from './names.ts';
import * as netzur from './netzur.ts';
import * as powercode from './powercode.ts';
import * as rest from './rest.ts';
import * as sonar from './sonar.ts';
import * as splynx from './splynx.ts';
import * as uisp from './uisp.ts';
import * as visp from './visp.ts';
import * as wispgate from './wispgate.ts';

export interface IntegrationModule {
  /** Display name used in messages (`Splynx`). */
  CRM: string;
  run(config: LqosConfig, opts: RunOptions): Promise<RunResult>;
}

export interface IntegrationEntry {
  name: string;
  module: IntegrationModule;
  /** The enable flag in lqos.conf; undefined = never enabled by config (manual only). */
  enabled?: (config: LqosConfig) => boolean;
}

/** Each integration's module and enable flag; the order is INTEGRATION_NAMES' (./names.ts). */
const BY_NAME: Record<IntegrationName, Omit<IntegrationEntry, 'name'>> = {
  uisp: { module: uisp, enabled: (c) => c.uisp_integration.enable_uisp },
  splynx: { module: splynx, enabled: (c) => c.splynx_integration.enable_splynx },
  visp: { module: visp, enabled: (c) => c.visp_integration.enable_visp },
  netzur: { module: netzur, enabled: (c) => c.netzur_integration.enable_netzur },
  powercode: { module: powercode, enabled: (c) => c.powercode_integration.enable_powercode },
  sonar: { module: sonar, enabled: (c) => c.sonar_integration.enable_sonar },
  wispgate: { module: wispgate, enabled: (c) => c.wispgate_integration.enable_wispgate },
  rest: { module: rest },
};

/** In scheduler priority order (spec §1.4). */
export const INTEGRATIONS: readonly IntegrationEntry[] = INTEGRATION_NAMES.map((name) => ({ name, ...BY_NAME[name] }));

export function integrationNames(): string[] {
  return INTEGRATIONS.map((e) => e.name);
}

export function getIntegration(name: string): IntegrationEntry | undefined {
  const n = name.trim().toLowerCase();
  return INTEGRATIONS.find((e) => e.name === n);
}

/** Enabled integrations in priority order (a scheduler runs only the first). */
export function enabledIntegrations(config: LqosConfig): IntegrationEntry[] {
  return INTEGRATIONS.filter((e) => e.enabled?.(config) === true);
}
