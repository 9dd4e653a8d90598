/**
 * Text for the lab part of bench:dataplane (bench/dataplaneLab.ts): the per-round table, the ratios
 * (median and min–max over the rounds), summary rows and the notes for docs/PERFORMANCE.md. Pure.
 */
import { UNSHAPED_IP } from '../lab/labEnv.ts';
import { CONFIGS, ENDPOINT_MODES, FAST, median, ratioStats, type ConfigName, type Dir, type EndpointMode, type LabBenchResult, type Round } from './dataplaneLab.ts';

export const TARGET_RATIO = 0.85;

const f0 = (v: number) => v.toFixed(0);
const f2 = (v: number) => v.toFixed(2);
const pct = (m: number, p: number) => `${m >= p ? '+' : ''}${(((m - p) / p) * 100).toFixed(1)}%`;

const LABEL: Record<ConfigName, string> = {
  plain: 'plain bridge, veth offloads',
  'plain-fair': 'plain bridge, shaped ports\' offloads (fair baseline)',
  unmapped: `LibreQoS, ${UNSHAPED_IP} in no circuit (no redirect)`,
  circuit: `LibreQoS, circuit ${FAST.id} (ceil 10 Gbit/s, CPU redirect)`,
};

/** The ratios the bench reports: [label, numerator, denominator]. */
export const RATIOS: Array<[string, ConfigName, ConfigName]> = [
  ['circuit / plain-fair', 'circuit', 'plain-fair'],
  ['unmapped / plain-fair', 'unmapped', 'plain-fair'],
  ['circuit / plain', 'circuit', 'plain'],
  ['plain-fair / plain (cost of the offloads alone)', 'plain-fair', 'plain'],
];

const ENDPOINTS: Record<EndpointMode, string> = {
  inline: 'endpoints inline (their TCP receive runs in the shaper\'s context)',
  napi: 'endpoints with own NAPI threads (GRO + threaded NAPI)',
};

const spread = (xs: number[]) => `${f0(Math.min(...xs))}–${f0(Math.max(...xs))}`;
const col = (rounds: Round[], dir: Dir, c: ConfigName) => rounds.map((r) => r.mbps[dir][c]);
const phase = (lab: LabBenchResult, m: EndpointMode) => lab.rounds.filter((r) => r.endpoints === m);

function ratioCell(rounds: Round[], dir: Dir, a: ConfigName, b: ConfigName): string {
  const r = ratioStats(rounds, dir, a, b);
  return `${f2(r.median)} (${f2(r.min)}–${f2(r.max)})`;
}

const met = (rounds: Round[]) => Math.min(...(['download', 'upload'] as const).map((d) => ratioStats(rounds, d, 'circuit', 'plain-fair').median)) >= TARGET_RATIO;

/** Lines for the console report. */
export function labReport(lab: LabBenchResult): string[] {
  const n = lab.rounds.length;
  const out: string[] = [];
  out.push(`== 3. lab throughput (iperf3 TCP ${lab.seconds} s + 1 s omitted; ${n} interleaved rounds; veth namespaces, 4 queues; labs built in ${(lab.buildMs / 1000).toFixed(1)} s, LibreQoS ${(lab.libreqosMs / 1000).toFixed(1)} s)`);
  out.push(`XDP attach mode: ${lab.xdpModes}; shaped ports' offloads: ${lab.shapedOffloads}; plain ports' veth defaults: ${lab.plainDefaultOffloads}`);
  out.push(`${FAST.id} class: ${lab.fastClass}; default class: ${lab.defaultClass}`);
  for (const m of ENDPOINT_MODES) {
    const rounds = phase(lab, m);
    if (!rounds.length) continue;
    out.push('', `--- ${ENDPOINTS[m]}: ${rounds.length} rounds`);
    for (const dir of ['download', 'upload'] as const) {
      out.push(`${dir} Mbit/s per round (order rotates each round):`);
      const head = ['round', 'load', ...CONFIGS];
      const rows = rounds.map((r, i) => [String(i + 1), r.load.toFixed(1), ...CONFIGS.map((c) => f0(r.mbps[dir][c]))]);
      rows.push(['median', '', ...CONFIGS.map((c) => f0(median(col(rounds, dir, c))))]);
      out.push([head, ...rows].map((r) => r.map((c, i) => c.padStart(i ? 10 : 6)).join(' ')).join('\n'));
    }
    out.push('ratios (per round, then median and min–max over the rounds):');
    for (const [label, a, b] of RATIOS) out.push(`  ${label.padEnd(48)} ↓ ${ratioCell(rounds, 'download', a, b)}   ↑ ${ratioCell(rounds, 'upload', a, b)}`);
    out.push(`target (${m}): circuit / plain-fair ≥ ${TARGET_RATIO} in both directions: ${met(rounds) ? 'met' : 'MISSED'}`);
  }
  const st = lab.circuitStats;
  if (st) {
    const share = st.xdpSeen ? Number((st.xdpRedirect * 1000n) / st.xdpSeen) / 10 : 0;
    out.push(`dp_stats over the ${FAST.id} runs: xdp_seen ${st.xdpSeen}, xdp_redirect ${st.xdpRedirect} (${share}% of seen), tc_meta ${st.tcMeta}, tc_lookup ${st.tcLookup}, tc_unclassified ${st.tcUnclassified}, meta_fail ${st.metaFail}`);
  }
  const a = lab.accuracy;
  out.push(`shaped circuit ${a.id} (${a.ip}): download plan ${a.planDown} measured ${a.down.toFixed(1)} (${pct(a.down, a.planDown)}), upload plan ${a.planUp} measured ${a.up.toFixed(1)} (${pct(a.up, a.planUp)})`);
  return out;
}

/** Summary/markdown table rows: measurement, result, target, status. */
export function labSummaryRows(lab: LabBenchResult): string[][] {
  const rows: string[][] = [];
  for (const m of ENDPOINT_MODES) {
    const rounds = phase(lab, m);
    if (!rounds.length) continue;
    const n = rounds.length;
    for (const c of CONFIGS) {
      const d = col(rounds, 'download', c), u = col(rounds, 'upload', c);
      rows.push([`[${m}] ${LABEL[c]} ↓ / ↑`, `${f0(median(d))} / ${f0(median(u))} Mbit/s`, '—', `median of ${n}; ${spread(d)} / ${spread(u)}`]);
    }
    for (const [label, a, b] of RATIOS) {
      const main = a === 'circuit' && b === 'plain-fair';
      const d = ratioStats(rounds, 'download', a, b), u = ratioStats(rounds, 'upload', a, b);
      const status = main ? (met(rounds) ? 'met' : '**missed**') : '';
      rows.push([`[${m}] ratio ${label} ↓ / ↑`, `${f2(d.median)} / ${f2(u.median)}`, main ? `≥ ${TARGET_RATIO}` : '—',
        `${status}${status ? '; ' : ''}per-round ${f2(d.min)}–${f2(d.max)} / ${f2(u.min)}–${f2(u.max)}`]);
    }
  }
  const a = lab.accuracy;
  rows.push([`${a.id} ↓ / ↑ (plan ${a.planDown} / ${a.planUp} Mbit/s)`, `${a.down.toFixed(1)} / ${a.up.toFixed(1)} Mbit/s`, '', `${pct(a.down, a.planDown)} / ${pct(a.up, a.planUp)} goodput`]);
  return rows;
}

/** Notes under the markdown table. */
export function labMarkdown(lab: LabBenchResult): string[] {
  const st = lab.circuitStats;
  return [
    `- Lab: two namespace labs side by side (veth, 4 queues), the plain Linux bridge (no programs, no qdisc) and LibreQoS (lqosd + \`LibreQoS\`: XDP ${lab.xdpModes}, tc egress, mq/HTB). ${phase(lab, 'inline').length} rounds per phase; each round runs iperf3 TCP ${lab.seconds} s (+1 s omitted) once per configuration and direction, in an order that rotates every round. Ratios are taken within a round, then the median and min–max over the rounds are given.`,
    `- Phases: [inline] the end hosts as the lab builds them: veth hands a frame to the receiving namespace synchronously, so the receiver's TCP stack runs on the CPU that sent the frame, on the redirect path inside the shaper's cpumap kthread; [napi] the end hosts' eth0 get GRO and threaded NAPI (\`/sys/class/net/eth0/threaded\`), so their receive work runs in its own kernel thread, as on separate machines. Both labs are switched together; the shaper is not touched.`,
    `- "Fair baseline": the plain bridge with the offloads the attach sets on the shaped ports (${lab.shapedOffloads}; veth defaults: ${lab.plainDefaultOffloads}). The endpoints have TX checksum offload off in both labs, so only MTU-size frames cross either bridge.`,
    `- ${FAST.id}: a circuit with no parent node and a 10 Gbit/s ceiling (class \`${lab.fastClass}\`), far above what the lab carries: its frames take the cpumap redirect and the circuit's HTB class${st ? ` (xdp_redirect ${st.xdpRedirect} of ${st.xdpSeen} frames seen during its runs)` : ''}. The address in no circuit passes XDP and lands in the default class \`${lab.defaultClass}\` without a redirect.`,
    `- ${lab.accuracy.id}: iperf3 reports TCP goodput; ~4–5 % under the plan is Ethernet/IP/TCP overhead (HTB counts L2 bytes).`,
  ];
}
