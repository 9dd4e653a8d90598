/**
 * Stable 64-bit identifiers for circuits and devices (FNV-1a 64 over UTF-8), used as the
 * circuit/device ids stored in the dataplane maps. Never 0: 0 means "unknown" in the maps.
 */
const encoder = new TextEncoder();

export function hash64(text: string): bigint {
  // FNV-1a 64 computed on two 32-bit halves (fast, no BigInt in the loop).
  let hi = 0xcbf29ce4 >>> 0;
  let lo = 0x84222325 >>> 0;
  // ASCII ids (the common case) are hashed straight from the string; others via UTF-8 bytes.
  let ascii = true;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) { ascii = false; break; }
  const bytes = ascii ? null : encoder.encode(text);
  const n = bytes ? bytes.length : text.length;
  for (let i = 0; i < n; i++) {
    lo = (lo ^ (bytes ? bytes[i]! : text.charCodeAt(i))) >>> 0;
    // multiply (hi:lo) by the FNV prime 0x100000001b3 = 2^40 + 0x1b3
    const loMul = lo * 0x1b3;
    const newLo = loMul >>> 0;
    const carry = Math.floor(loMul / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + (lo << 8) + carry) >>> 0;
    lo = newLo;
  }
  const value = (BigInt(hi) << 32n) | BigInt(lo);
  return value === 0n ? 1n : value;
}
