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

/**
 * Every credential value in `config` (strings under a secret key, at any depth) and in `env`
 * (variables with a secret name, e.g. the REST source's `LQOS_REST_TOKEN`): what must never be shown.
 */
export function secretValues(config: unknown, env: Record<string, string | undefined> = {}): string[] {
  const out: string[] = [];
  const walk = (v: unknown, secret: boolean) => {
    if (typeof v === 'string') {
      if (secret && v.trim() !== '') out.push(v);
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, secret);
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, secret || isSecretKey(k));
    }
  };
  walk(config, false);
  for (const [k, v] of Object.entries(env)) if (v && isSecretKey(k)) out.push(v);
  return out;
}

/** `text` with every occurrence of a secret (3+ characters; the longest first) replaced by `***`. */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].filter((x) => x.length >= 3).sort((x, y) => y.length - x.length)) out = out.split(s).join('***');
  return out;
}
