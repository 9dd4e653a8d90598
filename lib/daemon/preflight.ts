/**
 * lqosd preflight: can this host shape with this config (interfaces, and unless a dry run the kernel
 * and libbpf versions)? Failures keep lqosd running in a degraded state (bus and web UI up, no
 * dataplane) and are reported with what to fix.
 */
import { execa } from 'execa';
import { interfacesOf, type ShapingInterfaces } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';
import { checkForwarding } from '../kernel/forwarding.ts';
import { checkDataplanePlatform } from '../shaping/kernel.ts';
import { forwardingStatus } from './forwardingStatus.ts';
import type { ForwardingStatus } from '../api/status.ts';
import { txQueueCount } from '../shaping/queueCount.ts';

export interface PreflightResult {
  ok: boolean;
  /** Each one alone is a reason not to shape. */
  errors: string[];
  /** Worth telling the operator; shaping still goes ahead. */
  warnings: string[];
  interfaces?: ShapingInterfaces;
  /** TX queues per existing interface (sysfs, as the queue count uses). */
  txQueues: Record<string, number>;
  /** The forwarding mode these interfaces would run in (shown in the status once attached). */
  forwarding?: ForwardingStatus;
}

interface LinkInfo {
  flags?: string[];
  operstate?: string;
}

/** `ip -d -j link show dev NAME`: the link, or the reason it cannot be read. */
export async function probeLink(name: string): Promise<{ link?: LinkInfo; error?: string }> {
  try {
    const r = await execa('ip', ['-d', '-j', 'link', 'show', 'dev', name], { reject: false, timeout: 10_000 });
    if (r.exitCode !== 0) return { error: String(r.stderr).trim().split('\n')[0] || `ip exited with ${r.exitCode}` };
    const parsed = JSON.parse(String(r.stdout)) as LinkInfo[];
    return parsed[0] ? { link: parsed[0] } : { error: 'no such device' };
  } catch (e) {
    return { error: `could not run "ip": ${(e as Error).message.split('\n')[0]}` };
  }
}

export async function runPreflight(config: LqosConfig, configPath: string): Promise<PreflightResult> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const txQueues: Record<string, number> = {};
  const ifaces = interfacesOf(config);
  if (!ifaces) {
    errors.push(`${configPath} has neither [bridge] nor [single_interface]: add one naming the shaping interfaces, then reload lqosd (systemctl reload lqosd)`);
    return { ok: false, errors, warnings, txQueues };
  }
  if (!ifaces.onAStick && ifaces.download === ifaces.upload) {
    errors.push(`[bridge] in ${configPath} names ${ifaces.download} as both to_internet and to_network; use two interfaces, or [single_interface] for one`);
  }
  // Stick VLAN ids (present, 1-4094, different) are checked by the config schema.
  for (const name of [...new Set([ifaces.upload, ifaces.download])]) {
    const { link, error } = await probeLink(name);
    if (!link) {
      errors.push(`interface ${name} does not exist on this host (${error}); fix [bridge]/[single_interface] in ${configPath}, then reload lqosd (systemctl reload lqosd)`);
      continue;
    }
    const tx = txQueueCount(name) ?? 1;
    txQueues[name] = tx;
    if (tx <= 1) {
      warnings.push(`interface ${name} has a single TX queue: one CPU will do all the shaping; use a multi-queue NIC (ethtool -L ${name} combined N) for more throughput`);
    }
    if (link.flags && !link.flags.includes('UP')) {
      warnings.push(`interface ${name} is down; bring it up (ip link set ${name} up) or no traffic will be shaped`);
    }
  }
  // The forwarding mode against the wiring (once every interface exists): the XDP bridge refuses NICs
  // that a Linux bridge holds; the Linux-bridge mode names its bridge.
  let bridge: string | undefined;
  if (errors.length === 0) {
    const verdict = await checkForwarding(ifaces, configPath);
    errors.push(...verdict.errors);
    warnings.push(...verdict.warnings);
    bridge = verdict.bridge;
  }
  if (!config.queues.dry_run) {
    // Kernel and libbpf (only when the dataplane will be attached: a dry run loads nothing).
    const platform = await checkDataplanePlatform(config);
    errors.push(...platform.errors);
    warnings.push(...platform.warnings);
  }
  return { ok: errors.length === 0, errors, warnings, interfaces: ifaces, txQueues, forwarding: forwardingStatus(config, ifaces, bridge) };
}
