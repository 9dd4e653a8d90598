/**
 * Where the dataplane's maps live: the bpffs pin root, the names of the pinned maps, and a cache of
 * their file descriptors (opened lazily by path, so any process can use the maps of a loaded
 * dataplane). Shared by object.ts (pins on load), attach.ts, maps.ts and flows.ts.
 */
import { join } from 'node:path';
import * as bpf from './libbpf.ts';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/lqos';

/** Maps pinned under pinRoot (file name = map name). */
export const PINNED_MAPS = [
  'ip_to_class', 'hot_cache', 'mapping_epoch', 'host_counters', 'cpu_map', 'cpus_available', 'txq_config', 'classify_ctl',
  'dp_stats',
  // flow telemetry (dataplane/flows.ts)
  'flows', 'flow_events', 'flow_ctl',
] as const;
export type PinnedMapName = (typeof PINNED_MAPS)[number];

export interface MapContext {
  /** Directory in bpffs holding the pinned maps. Default /sys/fs/bpf/lqos. */
  pinRoot?: string;
}

export function pinRootOf(ctx?: MapContext): string {
  return ctx?.pinRoot ?? DEFAULT_PIN_ROOT;
}

/** Open fds of pinned maps, per pin root; a map is opened on first use and kept open. */
export class PinnedFds<Name extends PinnedMapName = PinnedMapName> {
  private readonly byRoot = new Map<string, Map<Name, number>>();

  fd(name: Name, ctx?: MapContext): number {
    const root = pinRootOf(ctx);
    let m = this.byRoot.get(root);
    if (!m) this.byRoot.set(root, (m = new Map()));
    let fd = m.get(name);
    if (fd === undefined) {
      fd = bpf.objGet(join(root, name));
      m.set(name, fd);
    }
    return fd;
  }

  /** Close the cached fds of one pin root (before a re-pin or teardown). */
  forget(pinRoot: string): void {
    const m = this.byRoot.get(pinRoot);
    if (m) for (const fd of m.values()) bpf.closeFd(fd);
    this.byRoot.delete(pinRoot);
  }
}

/** The shaping maps' fds (the flow maps have their own cache in flows.ts). */
export const shapingFds = new PinnedFds();
