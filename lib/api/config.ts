/**
 * lqos.conf through the API: GET/PUT /api/config (secrets shown as "set" / "not set") and
 * GET /api/config/schema, the description of every key that the UI builds its forms from.
 */

/** GET /api/config: the effective config with secrets replaced by "set" / "not set". */
export interface ConfigPayload {
  path: string;
  config: Record<string, unknown>;
}

/** Reply of PUT /api/config. */
export interface ConfigSaved {
  ok: true;
  warnings: string[];
  /** The keys this save changed that take effect only after `systemctl restart lqosd`. */
  restartRequired: string[];
  config: Record<string, unknown>;
}

/** `string_list`: a list of strings; `object_list`: a list of tables (edited as JSON). */
export type ConfigValueType = 'boolean' | 'integer' | 'number' | 'string' | 'string_list' | 'object_list';

/**
 * What lqos-ts does with a key (lib/config/fidelity.ts): `honoured` = it has its effect; `same` =
 * lqos-ts behaves as one value asks (other values change nothing); `ignored` = not implemented.
 * `note` (not honoured only) says what lqos-ts does instead; the UI shows such keys disabled with it.
 */
export interface ConfigKeyFidelity {
  kind: 'honoured' | 'same' | 'ignored';
  note?: string;
}

/** One lqos.conf key as the schema defines it. */
export interface ConfigKeyDescription {
  /** `section.key`, or `key` at the top level. */
  key: string;
  type: ConfigValueType;
  /** Inclusive bounds (integers: always inclusive). */
  min?: number;
  max?: number;
  /** Exclusive bounds of non-integer numbers (e.g. a multiplier that must be above 0). */
  above?: number;
  below?: number;
  /** Strings that must not be empty. */
  nonEmpty?: true;
  /** The only values accepted (case-insensitively for strings). */
  values?: (string | number)[];
  /** Value used when the key is absent. */
  default?: unknown;
  /** No default: the key may be left out (it is then unset). */
  optional: boolean;
  /** No default and not optional: the file must set it (when its section is present). */
  required: boolean;
  /** Credentials: GET /api/config shows them as "set" / "not set" only. */
  secret: boolean;
  /** Whether lqos-ts honours the key. */
  fidelity: ConfigKeyFidelity;
  /** What the key does, one or two sentences (the schema's own text). */
  description?: string;
  /** Strings (or list items) that must be an IP subnet in CIDR form, or an IP address. */
  format?: 'cidr' | 'ip';
  /** A change takes effect only after lqosd restarts (lib/config/restart.ts). */
  restartOnly?: true;
}

/** GET /api/config/schema. */
export interface ConfigSchemaPayload {
  /** Every key, in the schema's order (sections in file order, keys in section order). */
  keys: ConfigKeyDescription[];
}
