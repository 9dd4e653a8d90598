/**
 * Prints the directories lqosd and the scheduler write, one per line, for a config file:
 * `lqos_directory` and `state_directory` (resolved as lqosd resolves them). Used by
 * scripts/install-services to give the hardened systemd units (ProtectSystem=strict) write access
 * to exactly those. Exit 2 with the config error on stderr when the file cannot be loaded.
 *
 *   node --import tsx scripts/config-dirs.ts /etc/lqos.conf
 *   node --import tsx scripts/config-dirs.ts /etc/lqos.conf --web   (scripts/install: the web UI's
 *     address, one line "<https|http> <bind_address> <port>")
 *
 * scripts/install bundles this file into the production copy (scripts/config-dirs.mjs) for
 * scripts/uninstall, which runs without tsx.
 */
import { ConfigError } from '../lib/config/load.ts';
import { loadResolvedConfig } from '../lib/config/resolve.ts';

const path = process.argv[2];
try {
  const rc = loadResolvedConfig({ path, requireInterfaces: false });
  if (process.argv[3] === '--web') {
    const w = rc.config.web;
    console.log(`${w.tls_cert_file && w.tls_key_file ? 'https' : 'http'} ${w.bind_address} ${w.port}`);
  } else {
    console.log(rc.config.lqos_directory);
    console.log(rc.config.state_directory);
  }
} catch (e) {
  console.error(e instanceof ConfigError ? e.message : String(e));
  process.exit(2);
}
