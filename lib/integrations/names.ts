/**
 * The integrations' names, in the scheduler's priority order (spec §1.4; `rest` last, manual only).
 * The one list: ./registry.ts maps each to its module, and `integration --help` names them without
 * loading any integration (bin/integration.ts). No imports, so it costs the usage nothing.
 */
export const INTEGRATION_NAMES = ['uisp', 'splynx', 'visp', 'netzur', 'powercode', 'sonar', 'wispgate', 'rest'] as const;

export type IntegrationName = (typeof INTEGRATION_NAMES)[number];
