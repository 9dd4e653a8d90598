/**
 * Where the dataplane's maps live: the bpffs pin root, the names of the pinned maps, and a cache of
 * their file descriptors (opened lazily by path, so any process can use the maps of a loaded
 * dataplane). Shared by object.ts (pins on load), attach.ts, maps.ts and flows.ts.
 *
 * The first fd opened for a pin root checks the `lqos_abi` map: maps of another ABI version (written
 * by another lqos-ts release) are refused rather than misread.
 */
import { existsSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import * as bpf from './libbpf.ts';
import { DataplaneError } from './libbpf.ts';
import { ABI_VERSION, encodeU32 } from './abi.ts';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/lqos';

/** Map holding the ABI version of the pinned maps (1 × u32). */
export const ABI_MAP = 'lqos_abi';

/** Maps pinned under pinRoot (file name = map name). */
export const PINNED_MAPS = [
  'ip_to_class', 'hot_cache', 'mapping_epoch', 'host_counters', 'unknown_ips', 'unknown_gate', 'lqos_abi',
  'cpu_map', 'cpus_available', 'txq_config', 'classify_ctl', 'dp_stats',
  // forwarding by lqos-ts (XDP bridge, stick: dataplane/forwarding.ts)
  'redirect_if', 'vlan_swap',
  // flow telemetry (dataplane/flows.ts)
  'flows', 'flow_events', 'flow_ctl',
  // lazy queues' first packets (dataplane/lazySignals.ts)
  'lazy_ctl', 'lazy_pending', 'lazy_events',
] as const;
export type PinnedMapName = (typeof PINNED_MAPS)[number];

export interface MapContext {
  /** Directory in bpffs holding the pinned maps. Default /sys/fs/bpf/lqos. */
  pinRoot?: string;
}

export function pinRootOf(ctx?: MapContext): string {
  return ctx?.pinRoot ?? DEFAULT_PIN_ROOT;
}

/**
 * ABI version of the maps pinned under `pinRoot`: the `lqos_abi` value, 1 when our maps are pinned
 * without it (releases before the version map), null when no map of ours is pinned there.
 */
export function pinnedAbiVersion(pinRoot: string): number | null {
  const abiPin = join(pinRoot, ABI_MAP);
  if (!existsSync(abiPin)) return PINNED_MAPS.some((n) => existsSync(join(pinRoot, n))) ? 1 : null;
  const fd = bpf.objGet(abiPin);
  try {
    const v = Buffer.alloc(4);
    bpf.mapLookupElem(fd, encodeU32(0), v);
    return v.readUInt32LE(0);
  } finally {
    bpf.closeFd(fd);
  }
}

/** Inode of the `lqos_abi` pin (changes when the maps are recreated), -1 when absent. */
function pinIno(pinRoot: string): number {
  return pinInode(join(pinRoot, ABI_MAP));
}

/** Inode of a pin, -1 when absent: another inode means the map was recreated (re-pinned). */
export function pinInode(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return -1;
  }
}

/** Throws when the maps under `pinRoot` were written for another ABI version. */
export function assertPinnedAbi(pinRoot: string): void {
  const found = pinnedAbiVersion(pinRoot);
  if (found === null || found === ABI_VERSION) return;
  throw new DataplaneError(`open the dataplane maps under ${pinRoot}`, osConstants.errno.EPROTO ?? 71,
    `the pinned maps are ABI v${found}, this lqos-ts expects v${ABI_VERSION}`,
    'restart lqosd (it recreates the maps in the current layout and rewrites the mappings)');
}

/**
 * Open fds of pinned maps, per pin root; a map is opened on first use and kept open. Every use checks
 * (one stat) that the pins are still the ones opened: when another process recreated the maps (a
 * loader of another ABI version, a teardown and re-attach), the cached fds point at unlinked maps no
 * program uses any more, so they are dropped and the new pins opened (and their ABI checked).
 */
export class PinnedFds<Name extends PinnedMapName = PinnedMapName> {
  private readonly byRoot = new Map<string, { fds: Map<Name, number>; abiIno: number }>();

  fd(name: Name, ctx?: MapContext): number {
    const root = pinRootOf(ctx);
    let entry = this.byRoot.get(root);
    if (entry && entry.abiIno !== pinIno(root)) {
      this.forget(root);
      entry = undefined;
    }
    if (!entry) {
      assertPinnedAbi(root);
      entry = { fds: new Map(), abiIno: pinIno(root) };
    }
    let fd = entry.fds.get(name);
    if (fd === undefined) {
      fd = bpf.objGet(join(root, name));
      entry.fds.set(name, fd);
      // Remembered only once a map opened: a pin root without maps is checked again next time.
      this.byRoot.set(root, entry);
    }
    return fd;
  }

  /** Close the cached fds of one pin root (before a re-pin or teardown). */
  forget(pinRoot: string): void {
    const m = this.byRoot.get(pinRoot);
    if (m) for (const fd of m.fds.values()) bpf.closeFd(fd);
    this.byRoot.delete(pinRoot);
  }
}

/** The shaping maps' fds (the flow maps have their own cache in flows.ts). */
export const shapingFds = new PinnedFds();
