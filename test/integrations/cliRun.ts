/** Running the real integration CLI (bin/integration.ts) against the fake Splynx, for the output tests. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { SPLYNX_KEY, SPLYNX_SECRET } from '../fixtures/crm/splynx.ts';
import { GOLDEN_ROOT } from './helpers.ts';

const repo = resolve(import.meta.dirname, '../..');

/** lqos.conf in `dir` with lqos_directory = dir and Splynx (ap_site) on `url`; `extra` is added to [integration_common]. */
export function splynxConf(dir: string, url: string, common = ''): string {
  const path = join(dir, 'lqos.conf');
  writeFileSync(
    path,
    `lqos_directory = "${dir}"
[bridge]
to_internet = "eth0"
to_network = "eth1"
[queues]
downlink_bandwidth_mbps = 10000
uplink_bandwidth_mbps = 10000
[ip_ranges]
ignore_subnets = ["100.64.99.0/24"]
[uisp_integration]
bandwidth_overhead_factor = 1.15
[integration_common]
${common}
[splynx_integration]
enable_splynx = true
api_key = "${SPLYNX_KEY}"
api_secret = "${SPLYNX_SECRET}"
url = "${url}/"
strategy = "ap_site"
`,
  );
  return path;
}

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `./LibreQoS integration <args>` as an operator (and the scheduler) does: through bin/launch, so
 * the compiled command when the build is fresh (CI), bin/integration.ts through tsx after an edit.
 * `env` is added to the environment.
 */
export async function integrationCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const r = await execa(join(repo, 'LibreQoS'), ['integration', ...args], {
    reject: false,
    cwd: repo,
    env: { LQOS_LOG_FORMAT: 'json', ...env },
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The Splynx ap_site golden pair (what the fake Splynx produces with splynxConf). */
export const splynxGolden = {
  network: () => readFileSync(join(GOLDEN_ROOT, 'splynx', 'network.json'), 'utf8'),
  csv: () => readFileSync(join(GOLDEN_ROOT, 'splynx', 'ShapedDevices.csv'), 'utf8'),
};

export const read = (dir: string, f: string) => readFileSync(join(dir, f), 'utf8');

/** The `msg` of every JSON log line on stderr (LQOS_LOG_FORMAT=json); other lines as they are. */
export function logMessages(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return String((JSON.parse(l) as { msg?: unknown }).msg ?? l);
      } catch {
        return l;
      }
    });
}
