/**
 * InfluxDB line protocol: `measurement,tag=v field=1,other=2i 1700000000`. Escaping per the
 * protocol: measurement commas and spaces; tag keys/values and field keys commas, equals signs and
 * spaces; string field values quotes and backslashes. Tags with empty values are left out (the
 * protocol has no empty tag); non-finite numbers are left out (InfluxDB refuses NaN/Infinity).
 */
export type FieldValue = number | string | boolean | { int: number };

const escMeasurement = (s: string) => s.replace(/[\\,\s]/g, (c) => `\\${c === '\n' ? ' ' : c}`);
const escKey = (s: string) => s.replace(/[\\,=\s]/g, (c) => `\\${/\s/.test(c) ? ' ' : c}`);

function fieldText(v: FieldValue): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return `"${v.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, ' ')}"`;
  return Number.isFinite(v.int) ? `${Math.trunc(v.int)}i` : undefined;
}

/** One point; undefined when no field has a value (a line needs at least one field). */
export function pointLine(
  measurement: string,
  tags: Record<string, string | undefined>,
  fields: Record<string, FieldValue | undefined>,
  timeSeconds: number,
): string | undefined {
  const t = Object.entries(tags)
    .filter(([, v]) => v !== undefined && v !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `,${escKey(k)}=${escKey(v!)}`)
    .join('');
  const f = Object.entries(fields)
    .map(([k, v]) => (v === undefined ? undefined : [k, fieldText(v)] as const))
    .filter((x): x is readonly [string, string] => x !== undefined && x[1] !== undefined)
    .map(([k, v]) => `${escKey(k)}=${v}`)
    .join(',');
  if (f === '') return undefined;
  return `${escMeasurement(measurement)}${t} ${f} ${Math.floor(timeSeconds)}`;
}
