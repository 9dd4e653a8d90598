/**
 * What the configuration forms need to know about each lqos.conf key (value type, range, accepted
 * values, default, whether it may be left out, whether it is a secret), derived from the config schema
 * (./schema.ts) through its JSON Schema, so the web UI never restates any of it, and whether lqos-ts
 * honours it (./fidelity.ts), what it does (the schema's `.describe()` text), and whether a change
 * waits for an lqosd restart (./restart.ts). Pure.
 */
import { z } from 'zod';
import type { ConfigKeyDescription, ConfigKeyFidelity, ConfigValueType } from '../api/config.ts';
import { fidelityOf } from './fidelity.ts';
import { isRestartOnly } from './restart.ts';
import { configSchema } from './schema.ts';

/** The part of a JSON Schema that zod emits for the config schema. */
interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  description?: string;
  format?: string;
}

/** The value formats the forms check (set with `.meta({ format })` in ./schema.ts). */
function formatOf(s: JsonSchema): ConfigKeyDescription['format'] {
  const f = s.format ?? s.items?.format;
  return f === 'cidr' || f === 'ip' ? f : undefined;
}

/** zod's bound for "any integer"; not a range worth showing. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

function valueType(s: JsonSchema): ConfigValueType {
  switch (s.type) {
    case 'boolean':
    case 'integer':
    case 'number':
      return s.type;
    case 'array':
      return s.items?.type === 'object' ? 'object_list' : 'string_list';
    default:
      return 'string';
  }
}

/** Bounds as the forms check them: inclusive for integers, exclusive ones kept apart for numbers. */
function bounds(s: JsonSchema): Pick<ConfigKeyDescription, 'min' | 'max' | 'above' | 'below'> {
  const out: Pick<ConfigKeyDescription, 'min' | 'max' | 'above' | 'below'> = {};
  const integer = s.type === 'integer';
  if (s.minimum !== undefined && s.minimum > -UNBOUNDED) out.min = s.minimum;
  if (s.maximum !== undefined && s.maximum < UNBOUNDED) out.max = s.maximum;
  if (s.exclusiveMinimum !== undefined) {
    if (integer) out.min = s.exclusiveMinimum + 1;
    else out.above = s.exclusiveMinimum;
  }
  if (s.exclusiveMaximum !== undefined) {
    if (integer) out.max = s.exclusiveMaximum - 1;
    else out.below = s.exclusiveMaximum;
  }
  return out;
}

function describeKey(key: string, s: JsonSchema, required: boolean, secret: boolean): ConfigKeyDescription {
  const hasDefault = 'default' in s;
  const format = formatOf(s);
  return {
    key,
    type: valueType(s),
    ...bounds(s),
    ...(s.type === 'string' && (s.minLength ?? 0) > 0 ? { nonEmpty: true as const } : {}),
    ...(s.enum ? { values: [...s.enum] } : {}),
    ...(hasDefault ? { default: s.default } : {}),
    optional: !hasDefault && !required,
    required: !hasDefault && required,
    secret,
    fidelity: fidelityFor(key),
    ...(s.description ? { description: s.description } : {}),
    ...(format ? { format } : {}),
    ...(isRestartOnly(key) ? { restartOnly: true as const } : {}),
  };
}

/** The registry entry as the UI needs it (a key without one is reported by test/unit/config-fidelity.test.ts). */
function fidelityFor(key: string): ConfigKeyFidelity {
  const f = fidelityOf(key);
  if (!f || f.kind === 'honoured') return { kind: 'honoured' };
  if (f.kind === 'ignored') return { kind: 'ignored', note: f.instead };
  return { kind: 'same', note: f.instead || f.reason };
}

const isSection = (s: JsonSchema): s is JsonSchema & { properties: Record<string, JsonSchema> } => s.type === 'object' && s.properties !== undefined;

/**
 * Every key of lqos.conf, sections in file order and keys in section order. `isSecret` is the
 * credential rule of the API (lib/web/redact.ts isSecretKey), given the key's own name.
 */
export function describeConfig(isSecret: (name: string) => boolean): ConfigKeyDescription[] {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const out: ConfigKeyDescription[] = [];
  for (const [name, s] of Object.entries(root.properties ?? {})) {
    if (!isSection(s)) {
      out.push(describeKey(name, s, root.required?.includes(name) ?? false, isSecret(name)));
      continue;
    }
    for (const [key, child] of Object.entries(s.properties)) {
      out.push(describeKey(`${name}.${key}`, child, s.required?.includes(key) ?? false, isSecret(key)));
    }
  }
  return out;
}
