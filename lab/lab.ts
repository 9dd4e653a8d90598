/**
 * `npm run lab`: build the namespace lab, shape it with the real LibreQoS pipeline, measure every
 * circuit with iperf3 and print plan vs measured rate. The lab stays up for poking around
 * (`ip netns exec lqlab-shp tc -s class show dev lq-cust`); `npm run lab -- --down` removes it.
 *   --mode linux-bridge|xdp-bridge|stick   how the shaper forwards (default linux-bridge; see lab/testbed.ts)
 *   --down   remove the lab, whichever mode is up
 *   --once   remove the lab after measuring
 *   --seconds N   iperf3 duration per measurement (default 3)
 */
import { Command, Option } from 'commander';
import { LAB_FORWARDING, type LabForwarding } from './testbed.ts';
import { LAB_VLAN, UNSHAPED_IP, measure, runLabLibreQoS, startLab, stopLab, wireRate } from './labEnv.ts';

const program = new Command()
  .name('lab')
  .addOption(new Option('--mode <mode>', 'how the shaper forwards').choices(LAB_FORWARDING).default('linux-bridge'))
  .option('--down', 'remove the lab (whichever mode is up)')
  .option('--once', 'remove the lab after measuring')
  .option('--seconds <n>', 'iperf3 seconds per measurement', '3')
  .parse(process.argv);
const o = program.opts<{ down?: boolean; once?: boolean; seconds: string; mode: LabForwarding }>();

if (o.down) {
  await stopLab();
  console.log('lab removed');
  process.exit(0);
}

const seconds = Number(o.seconds);
const wiring = {
  'linux-bridge': 'lqlab-inet, lqlab-shp (br0 = lq-inet + lq-cust), lqlab-cust',
  'xdp-bridge': 'lqlab-inet, lqlab-shp (lq-inet, lq-cust: no Linux bridge), lqlab-cust',
  stick: 'lqlab-inet, lqlab-rtr (VLAN 2 / VLAN 3 access ports, trunk r-trunk), lqlab-shp (trunk lq-trunk), lqlab-cust',
}[o.mode];
console.log(`building the ${o.mode} namespace lab (${wiring})…`);
const lab = await startLab({ forwarding: o.mode });
let failed = false;
try {
  const run = await runLabLibreQoS(lab, ['--verbose']);
  for (const line of run.output.split('\n').filter(Boolean)) {
    try {
      const j = JSON.parse(line) as { level: number; msg: string };
      console.log(`  LibreQoS ${j.level >= 50 ? 'ERROR' : j.level >= 40 ? 'WARN ' : 'info '} ${j.msg}`);
    } catch {
      console.log(`  ${line}`);
    }
  }
  if (run.code !== 0) throw new Error(`LibreQoS exited ${run.code}`);

  const rows: string[][] = [];
  const sv = lab.tb.stick?.vlans;
  // On a stick the subscriber's own tag travels inside the trunk tag (802.1Q in 802.1Q).
  const stickTags = sv ? ` inside ${sv.network}/${sv.internet}` : '';
  const pct = (m: number, p: number) => `${(((m - p) / p) * 100).toFixed(1)}%`;
  for (const c of lab.circuits) {
    const ip = c.ipv4 || c.ipv6;
    const v6 = ip.includes(':');
    const down = await measure(lab, ip, 'download', seconds);
    const up = await measure(lab, ip, 'upload', seconds);
    const wd = wireRate(down, v6);
    const wu = wireRate(up, v6);
    const ok = Math.abs(wd - c.down) / c.down <= 0.03 && Math.abs(wu - c.up) / c.up <= 0.03;
    failed ||= !ok;
    rows.push([c.id, ip + (c.path === 'vlan' ? ` (VLAN ${LAB_VLAN}${stickTags})` : ''), `${c.down}`, down.toFixed(2), wd.toFixed(2), pct(wd, c.down), `${c.up}`, up.toFixed(2), wu.toFixed(2), pct(wu, c.up), ok ? 'ok' : 'OUT OF ±3%']);
  }
  const free = await measure(lab, UNSHAPED_IP, 'download', seconds);
  rows.push(['(not in ShapedDevices)', UNSHAPED_IP, '-', free.toFixed(1), '', '', '-', '', '', '', free > 100 ? 'unshaped' : 'LIMITED?']);
  const head = ['circuit', 'address', 'plan ↓', 'goodput ↓', 'wire ↓', 'error', 'plan ↑', 'goodput ↑', 'wire ↑', 'error', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  console.log('\n' + fmt(head) + '\n' + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(fmt(r));
  console.log('\nrates in Mbit/s. goodput = iperf3 TCP payload rate; wire = the same as Ethernet frames (what HTB');
  console.log('shapes: ×1514/1448 for IPv4, ×1514/1428 for IPv6); error = wire rate vs plan (pass: within ±3%, as the lab tests require)');
} catch (e) {
  failed = true;
  console.error(`lab failed: ${(e as Error).message}`);
} finally {
  if (o.once) {
    await stopLab();
    console.log('lab removed');
  } else {
    console.log(`${o.mode} lab is up: inspect with  ip netns exec ${lab.tb.ns.shaper} tc -s class show dev ${lab.tb.shaperIfs.customer}\nremove with  npm run lab -- --down`);
  }
}
process.exit(failed ? 1 : 0);
