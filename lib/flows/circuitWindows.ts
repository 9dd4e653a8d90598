/**
 * Per-circuit sample windows of the flow tracker: RTT samples per side (from ring-buffer events) and
 * TCP retransmit/packet deltas per poll, pruned to their time windows; from them the RTT
 * percentiles and retransmit rates of each circuit.
 */
import type { PerDirection } from '../../dataplane/flowAbi.ts';
import { percentiles, type Percentiles } from './percentiles.ts';

const RTT_PER_CIRCUIT = 2048;

export interface CircuitFlowStats {
  circuitHash: bigint;
  tcHandle: number;
  activeFlows: number;
  bytes: PerDirection;
  rateBps: PerDirection;
  /** RTT percentiles (ms) over the sample window: per side and their per-flow sum. */
  rtt: { customer: Percentiles; internet: Percentiles };
  /** TCP retransmits / TCP packets over the retransmit window, per direction. */
  retransmits: { down: number; up: number; packetsDown: number; packetsUp: number; pctDown: number | null; pctUp: number | null };
}

/** One poll's summed deltas of a circuit, stamped with the poll's wall time when committed. */
interface Deltas { t: number; rd: number; ru: number; pd: number; pu: number }

export interface CircuitAcc {
  hash: bigint;
  tcHandle: number;
  rtt: { customer: Array<[number, number]>; internet: Array<[number, number]> }; // [wall ms, rtt ms]
  retrans: Deltas[];
  /** Pruned: flows still pointing at it re-attach on their next poll. */
  dead?: boolean;
  /** Deltas accumulated during the current poll. */
  cur: Deltas | null;
}

const rttTime = (x: [number, number]) => x[0];
const deltaTime = (x: Deltas) => x.t;

/** Drop the leading entries older than `cut` (entries are in time order). */
function dropBefore<T>(a: T[], time: (x: T) => number, cut: number): void {
  let j = 0;
  while (j < a.length && time(a[j]!) < cut) j++;
  if (j) a.splice(0, j);
}

export class CircuitWindows {
  private readonly circuits = new Map<bigint, CircuitAcc>();
  /** Circuits with deltas in the current poll. */
  private touched: CircuitAcc[] = [];

  /** The accumulator of a circuit (created on first use; a non-zero tcHandle updates it). */
  get(hash: bigint, tcHandle: number): CircuitAcc {
    let c = this.circuits.get(hash);
    if (!c) {
      c = { hash, tcHandle, rtt: { customer: [], internet: [] }, retrans: [], cur: null };
      this.circuits.set(hash, c);
    }
    if (tcHandle) c.tcHandle = tcHandle;
    return c;
  }

  addRtt(circuitHash: bigint, tcHandle: number, side: 'customer' | 'internet', ms: number, nowWall: number): void {
    const arr = this.get(circuitHash, tcHandle).rtt[side];
    arr.push([nowWall, ms]);
    if (arr.length > RTT_PER_CIRCUIT) arr.splice(0, arr.length - RTT_PER_CIRCUIT);
  }

  /** Add one TCP flow's retransmit and packet deltas of this poll. */
  addDeltas(c: CircuitAcc, rd: number, ru: number, pd: number, pu: number): void {
    if (!c.cur) {
      c.cur = { t: 0, rd: 0, ru: 0, pd: 0, pu: 0 };
      this.touched.push(c);
    }
    c.cur.rd += rd;
    c.cur.ru += ru;
    c.cur.pd += pd;
    c.cur.pu += pu;
  }

  /** Close the poll: its summed deltas join the retransmit windows. */
  commit(nowWall: number): void {
    for (const c of this.touched) {
      c.cur!.t = nowWall;
      c.retrans.push(c.cur!);
      c.cur = null;
    }
    this.touched = [];
  }

  /** Drop samples outside the windows and circuits left with none. */
  prune(nowWall: number, rttWindowMs: number, retransWindowMs: number): void {
    const cutRtt = nowWall - rttWindowMs;
    const cutRe = nowWall - retransWindowMs;
    for (const [hash, c] of this.circuits) {
      dropBefore(c.rtt.customer, rttTime, cutRtt);
      dropBefore(c.rtt.internet, rttTime, cutRtt);
      dropBefore(c.retrans, deltaTime, cutRe);
      if (!c.rtt.customer.length && !c.rtt.internet.length && !c.retrans.length) {
        this.circuits.delete(hash);
        c.dead = true;
      }
    }
  }

  /** Known circuits as [hash, tcHandle]. */
  *handles(): IterableIterator<[bigint, number]> {
    for (const [hash, c] of this.circuits) yield [hash, c.tcHandle];
  }

  /** Stats of one circuit from its windows, with no flows counted yet. */
  baseStats(hash: bigint, tc: number): CircuitFlowStats {
    const c = this.circuits.get(hash);
    const re = { down: 0, up: 0, packetsDown: 0, packetsUp: 0, pctDown: null as number | null, pctUp: null as number | null };
    for (const r of c?.retrans ?? []) { re.down += r.rd; re.up += r.ru; re.packetsDown += r.pd; re.packetsUp += r.pu; }
    re.pctDown = re.packetsDown ? (100 * re.down) / re.packetsDown : null;
    re.pctUp = re.packetsUp ? (100 * re.up) / re.packetsUp : null;
    return {
      circuitHash: hash, tcHandle: tc || c?.tcHandle || 0, activeFlows: 0, bytes: { down: 0, up: 0 }, rateBps: { down: 0, up: 0 },
      rtt: { customer: percentiles((c?.rtt.customer ?? []).map((x) => x[1])), internet: percentiles((c?.rtt.internet ?? []).map((x) => x[1])) },
      retransmits: re,
    };
  }
}
