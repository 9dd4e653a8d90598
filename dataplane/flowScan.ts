/**
 * The kernel-side reader of the flow table (bpf/lqos_flow_scan.c, object build/lqos_flow_scan.o): a
 * BPF_PROG_TYPE_SYSCALL program that copies every entry of the pinned `flows` map into two
 * memory-mapped arrays: keys (FLOW_KEY_SIZE each) and rows (struct lqos_flow_row, FLOW_ROW_SIZE:
 * the value's fields userspace reads) at the same index. One BPF_PROG_TEST_RUN per poll; the rows
 * are then read in place (a batch dump is compacted into the same layout: flowAbi.ts).
 *
 * Opening fails on kernels without syscall programs or bpf_for_each_map_elem (before 5.14) or
 * without the object: the caller then reads the table with batch lookups (flows.ts).
 */
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/util/paths.ts';
import * as bpf from './libbpf.ts';
import { FLOW_KEY_SIZE, FLOW_ROW_SIZE } from './flowAbi.ts';
import { pinInode, pinRootOf, type MapContext } from './pinned.ts';

export const FLOW_SCAN_OBJECT_PATH = join(REPO_ROOT, 'dataplane', 'build', 'lqos_flow_scan.o');
const PROG = 'lqos_flow_scan';

export interface FlowScanner {
  /** The last scan, in place (valid until `close()`): keys at i * FLOW_KEY_SIZE, rows at i * FLOW_ROW_SIZE. */
  readonly keys: Buffer;
  readonly rows: Buffer;
  /** Rows the arrays hold (the flows map's max_entries). */
  readonly capacity: number;
  /** Copy the kernel table into `keys` / `rows`; returns the row count. */
  scan(): number;
  /** True when the flows map was recreated since this reader opened (its program reads the old one): open a new reader. */
  stale(): boolean;
  close(): void;
}

/** Load the reader for the flows map pinned under `ctx.pinRoot`. Throws a DataplaneError when it cannot. */
export function openFlowScanner(ctx?: MapContext): FlowScanner {
  const pin = join(pinRootOf(ctx), 'flows');
  const ino = pinInode(pin);
  const flowsFd = bpf.objGet(pin);
  let obj: bpf.BpfObject | undefined;
  let keys: bpf.MappedMap | undefined;
  let rows: bpf.MappedMap | undefined;
  try {
    const capacity = bpf.mapInfoByFd(flowsFd).maxEntries;
    obj = bpf.objectOpenFile(FLOW_SCAN_OBJECT_PATH);
    bpf.mapReuseFd(bpf.findMap(obj, 'flows'), flowsFd);
    const keyMap = bpf.findMap(obj, 'flow_scan_keys');
    const rowMap = bpf.findMap(obj, 'flow_scan_rows');
    bpf.mapSetMaxEntries(keyMap, capacity);
    bpf.mapSetMaxEntries(rowMap, capacity);
    const o = obj;
    try {
      bpf.captureLibbpf(() => bpf.objectLoad(o));
    } catch (e) {
      const messages = (e as { libbpf?: string[] }).libbpf ?? [];
      throw new bpf.DataplaneError(`load ${FLOW_SCAN_OBJECT_PATH}`, e instanceof bpf.DataplaneError ? e.errno : 22,
        bpf.kernelReason(messages) ?? messages.filter((m) => /fail|error|invalid/i.test(m)).at(-1),
        'kernels before 5.14 have no syscall programs or bpf_for_each_map_elem; the batch lookup is used instead');
    }
    const progFd = bpf.programFd(bpf.findProgram(o, PROG));
    keys = bpf.mmapMap(bpf.mapFd(keyMap), capacity * FLOW_KEY_SIZE);
    rows = bpf.mmapMap(bpf.mapFd(rowMap), capacity * FLOW_ROW_SIZE);
    const args = Buffer.alloc(8);
    args.writeUInt32LE(capacity, 0);
    const k = keys, r = rows;
    let open = true;
    return {
      keys: k.bytes,
      rows: r.bytes,
      capacity,
      scan: () => {
        if (!open) throw new bpf.DataplaneError('flow table scan', 9, 'the reader is closed');
        return bpf.progRunSyscall(progFd, args);
      },
      stale: () => pinInode(pin) !== ino,
      close: () => {
        if (!open) return;
        open = false;
        k.unmap();
        r.unmap();
        bpf.objectClose(o);
      },
    };
  } catch (e) {
    keys?.unmap();
    rows?.unmap();
    if (obj) bpf.objectClose(obj);
    throw e;
  } finally {
    bpf.closeFd(flowsFd);
  }
}
