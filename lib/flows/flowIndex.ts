/**
 * Tracked flows indexed by their packed kernel key (as u32 words), so a poll finds a flow without
 * decoding its addresses: a 52-bit hash of the key (a second key with the same hash is kept under
 * its raw bytes), plus the text id for lookups from the UI.
 */
import { FLOW_KEY_WORDS, type FlowEntry } from '../../dataplane/flowAbi.ts';

export interface IndexedFlow {
  /** keyHash(words) */
  raw: number;
  /** The packed key (own copy). */
  words: Uint32Array;
  entry: FlowEntry;
}

const TWO32 = 4294967296;

/** 52-bit hash of the packed key at word `off` of `k` (two FNV-1a style 32-bit lanes). */
export function keyHash(k: Uint32Array, off = 0): number {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let j = 0; j < FLOW_KEY_WORDS; j++) {
    const x = k[off + j]!;
    h1 = Math.imul(h1 ^ x, 16777619);
    h2 = Math.imul(h2 ^ x, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0) + ((h2 >>> 0) & 0xfffff) * TWO32;
}

function sameKey(a: Uint32Array, b: Uint32Array, off: number): boolean {
  for (let j = 0; j < FLOW_KEY_WORDS; j++) if (a[j] !== b[off + j]) return false;
  return true;
}

/** The raw bytes of the key at word `off` as text (the map key of colliding flows). */
function keyText(k: Uint32Array, off = 0): string {
  return Buffer.from(k.buffer, k.byteOffset + off * 4, FLOW_KEY_WORDS * 4).toString('latin1');
}

export class FlowIndex<T extends IndexedFlow> {
  /** key hash -> flow (a colliding second key lives in `collided`) */
  private readonly byHash = new Map<number, T>();
  private readonly collided = new Map<string, T>();
  /** text id -> flow */
  private readonly byId = new Map<string, T>();

  /** The flow whose key is at word `off` of `words`. */
  find(words: Uint32Array, off = 0, hash = keyHash(words, off)): T | undefined {
    const t = this.byHash.get(hash);
    if (!t || sameKey(t.words, words, off)) return t;
    return this.collided.get(keyText(words, off));
  }

  add(t: T): void {
    const other = this.byHash.get(t.raw);
    if (other && other !== t) this.collided.set(keyText(t.words), t);
    else this.byHash.set(t.raw, t);
    this.byId.set(t.entry.id, t);
  }

  remove(t: T): void {
    if (this.byHash.get(t.raw) === t) this.byHash.delete(t.raw);
    else {
      for (const [k, c] of this.collided) if (c === t) this.collided.delete(k);
    }
    this.byId.delete(t.entry.id);
  }

  byTextId(id: string): T | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byHash.size + this.collided.size;
  }

  *values(): IterableIterator<T> {
    yield* this.byHash.values();
    if (this.collided.size) yield* this.collided.values();
  }
}
