/**
 * ShapedDevices.csv rows as CSV text, quoted the one way every writer of the file does
 * (./writeShapedDevices.ts, the integrations' append rows, lqos_overrides.json's rewrite, the row
 * triage's restored rows): besides what CSV needs, anything a reader could misread is quoted — a
 * leading `#` (a comment line), leading or trailing blanks, a CR. csv-stringify is loaded on first
 * use: most runs never write CSV.
 */
import type { Options } from 'csv-stringify/sync';
import { loadOnDemand } from '../util/onDemand.ts';

const OPTIONS: Options = { record_delimiter: 'unix', quoted_match: [/^#/, /^\s|\s$/, /\r/] };

/** The records as CSV lines, each ending in `\n`. */
export function csvRowsText(records: readonly (readonly string[])[]): string {
  return loadOnDemand<typeof import('csv-stringify/sync')>('csv-stringify/sync').stringify(records as string[][], OPTIONS);
}
