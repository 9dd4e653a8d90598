/**
 * Kernel-facing hooks of the LibreQoS command, loaded lazily so that --validate and dry runs
 * never load libbpf.
 */
import type { LibreQoSHooks } from './libreqos.ts';

export function kernelHooks(): LibreQoSHooks {
  return {};
}
