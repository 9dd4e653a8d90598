/**
 * Secret redaction for everything the web API sends. Which keys are secret is decided by
 * isSecretKey (lib/config/secrets.ts: `secret`/`password` anywhere, a last word `token`/`key`, or
 * `snmp_community`). Secret values are shown as "set" (non-empty) or "not set" (empty / missing).
 */
import { isSecretKey } from '../config/secrets.ts';

export { EXTRA_SECRET_KEYS, isSecretKey, isSecretPath, isUrlKey } from '../config/secrets.ts';

/** The secret keys of lqos.conf as of this writing (documentation and tests; isSecretKey is the rule). */
export const KNOWN_CONFIG_SECRETS: readonly string[] = [
  'long_term_stats.license_key',
  'uisp_integration.token',
  'splynx_integration.api_key',
  'splynx_integration.api_secret',
  'netzur_integration.api_key',
  'visp_integration.client_secret',
  'visp_integration.password',
  'powercode_integration.powercode_api_key',
  'sonar_integration.sonar_api_key',
  'sonar_integration.snmp_community',
  'wispgate_integration.wispgate_api_token',
  'influxdb.token',
  'web.metrics_token',
];

export const SECRET_SET = 'set';
export const SECRET_NOT_SET = 'not set';

/** The value the client sends back for "keep what is stored". */
export function isSecretPlaceholder(v: unknown): boolean {
  return v === SECRET_SET || v === SECRET_NOT_SET;
}

function isEmptySecret(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Deep copy with every secret key's value replaced by "set" / "not set". */
export function redactSecrets<T>(value: T): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, child] of Object.entries(v)) {
        out[k] = isSecretKey(k) ? (isEmptySecret(child) ? SECRET_NOT_SET : SECRET_SET) : walk(child);
      }
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

/** Every non-empty string stored under a secret key (used to scrub error messages). */
export function collectSecretValues(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) for (const v of value) collectSecretValues(v, out);
  else if (isPlainObject(value)) {
    for (const [k, child] of Object.entries(value)) {
      if (isSecretKey(k)) {
        if (typeof child === 'string' && child !== '') out.add(child);
        else if (typeof child === 'number') out.add(String(child));
      } else collectSecretValues(child, out);
    }
  }
  return out;
}

/** Replaces every occurrence of the given secret values in a text. */
export function scrubText(text: string, secrets: Iterable<string>): string {
  let s = text;
  for (const secret of secrets) {
    if (secret.length >= 3) s = s.split(secret).join('[redacted]');
  }
  return s;
}
