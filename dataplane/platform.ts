/**
 * The facts behind the kernel/libbpf check (attachChecks.ts platformVerdict): the running kernel's
 * release and the loaded libbpf's version. libbpf (koffi) is imported only here, on demand, so
 * callers that never touch the dataplane never load it.
 */
import { release } from 'node:os';
import { platformVerdict, type PlatformVerdict } from './attachChecks.ts';

export async function libbpfFacts(): Promise<{ major: number; minor: number } | { error: string }> {
  try {
    const bpf = await import('./libbpf.ts');
    return bpf.libbpfVersion();
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0]! };
  }
}

/** Checks this host's kernel and libbpf for the dataplane in `xdpMode`. */
export async function checkPlatform(xdpMode: 'native' | 'generic'): Promise<PlatformVerdict & { kernel: string; libbpf: string }> {
  const kernel = release();
  const lib = await libbpfFacts();
  const v = platformVerdict({ kernel, libbpf: lib, xdpMode });
  return { ...v, kernel, libbpf: 'error' in lib ? 'unavailable' : `${lib.major}.${lib.minor}` };
}
