/** Where this installation lives (the launchers, package.json, node_modules, webui/dist). */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

// Two levels up from lib/util/ when run from source (tsx), and from build/bin/ when run from the
// compiled bundle (scripts/build): keep both at that depth. Other files find the installation's
// files through REPO_ROOT, never relative to their own location.
export const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** The package version (package.json), shown by lqosd and the web UI. */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** Run directory of the lock files and the bus socket: $LQOS_RUN_DIR, else /run/lqos. */
export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LQOS_RUN_DIR || '/run/lqos';
}

/** bpffs directory of the dataplane's pinned maps: $LQOS_BPF_PIN_ROOT, else /sys/fs/bpf/lqos. */
export function pinRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.LQOS_BPF_PIN_ROOT || '/sys/fs/bpf/lqos';
}
