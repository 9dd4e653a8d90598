/**
 * Which lqos.conf keys hold credentials, by name. The one rule: the web API redacts these
 * (lib/web/redact.ts), config error messages never print their values (./load.ts), and a PUT that
 * repoints a section's URL must re-enter them (lib/web/configEdit.ts). A key is secret when:
 *
 * - it contains `secret`, `password` or `passphrase` anywhere (`api_secret`, `client_secret`, `password`);
 * - its last `_`/`-`/`.`-separated word is `token`, `key` or `apikey` (`token`, `wispgate_api_token`,
 *   `api_key`, `sonar_api_key`, `powercode_api_key`, `license_key`, `metrics_token`);
 * - it is one of EXTRA_SECRET_KEYS (`snmp_community`).
 *
 * Not secret (on purpose): `token_url` (a URL), `keys`/`*_keys` lists, `client_id`, `username`,
 * `*_url`, `tls_key_file` (a path).
 */

/** Credential keys whose names do not follow the rules above. */
export const EXTRA_SECRET_KEYS: readonly string[] = ['snmp_community'];

export function isSecretKey(name: string): boolean {
  const k = name.toLowerCase();
  if (k.includes('secret') || k.includes('password') || k.includes('passphrase')) return true;
  if (EXTRA_SECRET_KEYS.includes(k)) return true;
  const last = k.split(/[_\-.]/).pop() ?? k;
  return last === 'token' || last === 'key' || last === 'apikey';
}

/** True when any key along the path (e.g. `["uisp_integration", "token"]`) is a secret key. */
export function isSecretPath(path: readonly PropertyKey[]): boolean {
  return path.some((p) => typeof p === 'string' && isSecretKey(p));
}

/**
 * Keys naming where a section's credentials are sent: `url` and `*_url` (`api_url`, `token_url`,
 * `sonar_api_url`, …). When one changes, the section's stored secrets must be entered again.
 */
export function isUrlKey(name: string): boolean {
  const k = name.toLowerCase();
  return k === 'url' || k.endsWith('_url');
}
