/** lqos.conf texts for test workspaces; all of them dry runs with their state under `<dir>/state`. */
import { join } from 'node:path';

/** A bridge on two interfaces that do not exist (lqt-none0/1), 2 queues: enough for planning. */
export function bridgeConfig(dir: string): string {
  return `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\n[bridge]\nto_internet = "lqt-none0"\nto_network = "lqt-none1"\n[queues]\noverride_available_queues = 2\ndry_run = true\n`;
}

/** Shaping on `lo` (exists everywhere) in single-interface mode, no web server; `extra` is appended. */
export function loConfig(dir: string, extra = ''): string {
  return (
    `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n` +
    `[single_interface]\ninterface = "lo"\ninternet_vlan = 2\nnetwork_vlan = 3\n[queues]\noverride_available_queues = 2\ndry_run = true\n${extra}`
  );
}

/** A bridge naming interfaces that do not exist: lqosd's preflight fails. */
export function missingInterfacesConfig(dir: string): string {
  return `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n[bridge]\nto_internet = "lqt-nope0"\nto_network = "lqt-nope1"\n[queues]\ndry_run = true\n`;
}

/** The secrets in webConfig: none of them may ever leave the server. */
export const SECRETS = {
  uisp: 'SECRET-TOKEN-123',
  splynxKey: 'SPLYNX-KEY-456',
  splynxSecret: 'SPLYNX-APISECRET-789',
  vispSecret: 'VISP-CLIENTSECRET-000',
  vispPassword: 'VISP-PASSWORD-111',
  license: 'LTS-LICENSE-222',
  sonar: 'SONAR-KEY-333',
  community: 'SNMP-COMMUNITY-444',
  wispgate: 'WISPGATE-TOKEN-555',
  influx: 'INFLUX-TOKEN-666',
  powercode: 'POWERCODE-KEY-777',
  netzur: 'NETZUR-KEY-888',
};

/** A bridge eth0/eth1 with every integration section and a secret in each; `extra` is appended. */
export function webConfig(dir: string, extra = ''): string {
  return `lqos_directory = "${dir}"
state_directory = "${join(dir, 'state')}"
node_name = "test-node"

[bridge]
to_internet = "eth0"
to_network = "eth1"

[queues]
dry_run = true
override_available_queues = 2

[long_term_stats]
license_key = "${SECRETS.license}"

[uisp_integration]
enable_uisp = false
token = "${SECRETS.uisp}"
url = "https://uisp.example.net"

[splynx_integration]
enable_splynx = false
api_key = "${SECRETS.splynxKey}"
api_secret = "${SECRETS.splynxSecret}"

[netzur_integration]
api_key = "${SECRETS.netzur}"

[visp_integration]
client_id = "visp-client"
client_secret = "${SECRETS.vispSecret}"
username = "visp-user"
password = "${SECRETS.vispPassword}"

[powercode_integration]
powercode_api_key = "${SECRETS.powercode}"

[sonar_integration]
sonar_api_key = "${SECRETS.sonar}"
snmp_community = "${SECRETS.community}"

[wispgate_integration]
wispgate_api_token = "${SECRETS.wispgate}"

[influxdb]
token = "${SECRETS.influx}"
${extra}`;
}
