/**
 * tc class and qdisc handles: `major:minor`, both 16-bit numbers written in hex (`1:3`, `7fff:`).
 * The one place that formats and parses them.
 */
export interface ClassId {
  major: number;
  minor: number;
}

/** The hex text of each 16-bit handle part, made once: a large plan formats hundreds of thousands. */
const HEX: string[] = [];

/** One handle part in tc's hex notation (`255` → `ff`). */
export function tcHex(n: number): string {
  if (!(n >= 0 && n <= 0xffff && Number.isInteger(n))) return n.toString(16);
  return HEX[n] ?? (HEX[n] = n.toString(16));
}

/** `major:minor` in hex, as tc prints and takes it. */
export function formatClassId(major: number, minor: number): string {
  return `${tcHex(major)}:${tcHex(minor)}`;
}

/** One handle part as upstream's JSON files write it (Python's `hex()`): `0x1`, `0x1f`. */
export function pyHex(n: number): string {
  return `0x${tcHex(n)}`;
}

/** `major:minor` as upstream's JSON files write it: `0x1:0x7` (parseClassId reads it back). */
export function pyClassId(major: number, minor: number): string {
  return `${pyHex(major)}:${pyHex(minor)}`;
}

/** `1:3`, `0x1:0x3`, `1:` (minor 0) or `1` → the numbers; anything else → undefined. */
export function parseClassId(text: string | undefined): ClassId | undefined {
  if (!text) return undefined;
  const m = /^(?:0x)?([0-9a-f]{1,4})(?::(?:0x)?([0-9a-f]{0,4}))?$/i.exec(text.trim());
  if (!m) return undefined;
  return { major: parseInt(m[1]!, 16), minor: m[2] ? parseInt(m[2], 16) : 0 };
}

/** A handle as one 32-bit number (major << 16 | minor), as the kernel stores it. */
export function packClassId(id: ClassId): number {
  return id.major * 65536 + id.minor;
}

export function unpackClassId(packed: number): ClassId {
  return { major: Math.floor(packed / 65536), minor: packed % 65536 };
}
