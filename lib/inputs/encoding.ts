/**
 * Decoding ShapedDevices.csv / network.json bytes into text. Spreadsheet exports are often not
 * UTF-8: a UTF-8 or UTF-16 (LE/BE) byte-order mark is honoured and removed; bytes that are not valid
 * UTF-8 are read as Windows-1252 (the usual "ANSI" export) with a warning naming the file and the
 * first line that is not UTF-8 — never a silent mismatch (`Caf\uFFFD Tower` no longer matching
 * `Café Tower`); UTF-16 without a BOM (every other byte zero) is recognised too, with a warning.
 * Our writers always write UTF-8, so a file read as Windows-1252 and saved again from
 * the web UI becomes UTF-8.
 */
import type { InputIssue } from '../model.ts';

export type InputEncoding = 'utf-8' | 'utf-8 (BOM)' | 'utf-16le (BOM)' | 'utf-16be (BOM)' | 'utf-16le' | 'utf-16be' | 'windows-1252';

export interface DecodedInput {
  text: string;
  encoding: InputEncoding;
  /** A warning when the encoding had to be guessed. */
  issues: InputIssue[];
}

/**
 * Offset of the first byte that does not start a valid UTF-8 sequence (overlongs, surrogates and
 * values above U+10FFFF are invalid too), or -1 when all of `b` from `from` is valid UTF-8.
 */
export function firstInvalidUtf8(b: Uint8Array, from = 0): number {
  let i = from;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const x = b[i + k];
      const min = k === 1 ? lo : 0x80;
      const max = k === 1 ? hi : 0xbf;
      if (x === undefined || x < min || x > max) return i;
    }
    i += need + 1;
  }
  return -1;
}

/**
 * Windows-1252 bytes 0x80–0x9F (WHATWG index; the five unassigned ones map to themselves). The rest
 * of Windows-1252 equals Latin-1. Decoded here because Node's TextDecoder('windows-1252') returns
 * Latin-1 for these bytes (e.g. 0x92 as U+0092 instead of ’).
 */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

export function decodeWindows1252(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    .toString('latin1')
    .replace(/[\u0080-\u009f]/g, (c) => String.fromCharCode(CP1252_HIGH[c.charCodeAt(0) - 0x80]!));
}

const CP1252_BYTE = new Map(CP1252_HIGH.map((cp, i) => [cp, 0x80 + i]));

/** `text` as Windows-1252 bytes, or undefined when a character has no Windows-1252 byte. */
function encodeWindows1252(text: string): Buffer | undefined {
  const out = Buffer.alloc(text.length);
  let n = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const byte = cp < 0x80 || (cp >= 0xa0 && cp <= 0xff) ? cp : CP1252_BYTE.get(cp);
    if (byte === undefined) return undefined;
    out[n++] = byte;
  }
  return out.subarray(0, n);
}

/**
 * `text` in the encoding it was read in (decodeInputFile's `encoding`, byte-order mark included), so
 * that an edit of one row does not re-encode the operator's other rows; undefined when the text holds
 * a character that encoding cannot write (Windows-1252 only), for the caller to write UTF-8 and say so.
 */
export function encodeInputText(text: string, encoding: InputEncoding): Buffer | undefined {
  const utf16be = (t: string) => Buffer.from(t, 'utf16le').swap16();
  switch (encoding) {
    case 'utf-8':
      return Buffer.from(text, 'utf8');
    case 'utf-8 (BOM)':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
    case 'utf-16le (BOM)':
      return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    case 'utf-16le':
      return Buffer.from(text, 'utf16le');
    case 'utf-16be (BOM)':
      return Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(text)]);
    case 'utf-16be':
      return utf16be(text);
    case 'windows-1252':
      return encodeWindows1252(text);
  }
}

function lineAt(b: Uint8Array, offset: number, from: number): number {
  let line = 1;
  for (let i = from; i < offset; i++) if (b[i] === 0x0a) line++;
  return line;
}

/** The text of line `line` (1-based) of `text`, shortened for a message. */
function lineText(text: string, line: number): string {
  const l = text.split(/\r?\n/)[line - 1] ?? '';
  return l.length > 80 ? `${l.slice(0, 77)}…` : l;
}

/**
 * 'utf-16le'/'utf-16be' when a file without a BOM looks like UTF-16 text: in its first 4 KiB, zero
 * bytes at most even (BE) or odd (LE) positions and hardly any at the others (CSV/JSON text is
 * mostly ASCII, whose UTF-16 form has a zero in every pair).
 */
function utf16WithoutBom(b: Uint8Array): 'utf-16le' | 'utf-16be' | undefined {
  const n = Math.min(b.length, 4096) & ~1;
  if (n < 4) return undefined;
  let evenZero = 0;
  let oddZero = 0;
  for (let i = 0; i < n; i += 2) {
    if (b[i] === 0) evenZero++;
    if (b[i + 1] === 0) oddZero++;
  }
  const pairs = n / 2;
  if (oddZero >= 0.6 * pairs && evenZero <= 0.05 * pairs) return 'utf-16le';
  if (evenZero >= 0.6 * pairs && oddZero <= 0.05 * pairs) return 'utf-16be';
  return undefined;
}

/** Decodes one input file's bytes; `file` names it in the warning. */
export function decodeInputFile(bytes: Uint8Array, file: string): DecodedInput {
  const b = bytes;
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) {
    return { text: new TextDecoder('utf-16le').decode(b.subarray(2)), encoding: 'utf-16le (BOM)', issues: [] };
  }
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) {
    return { text: new TextDecoder('utf-16be').decode(b.subarray(2)), encoding: 'utf-16be (BOM)', issues: [] };
  }
  const unmarked = utf16WithoutBom(b);
  if (unmarked) {
    return {
      text: new TextDecoder(unmarked).decode(b),
      encoding: unmarked,
      issues: [
        {
          severity: 'warning',
          code: 'input-encoding',
          file,
          line: 1,
          message: `${file} looks like ${unmarked.toUpperCase()} without a byte-order mark (every other byte is zero); read it as ${unmarked.toUpperCase()} — save the file as UTF-8 to silence this`,
        },
      ],
    };
  }
  const bom = b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  try {
    // ignoreBOM: the BOM (if any) is skipped by subarray; a later U+FEFF is kept as text.
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(b.subarray(bom));
    return { text, encoding: bom ? 'utf-8 (BOM)' : 'utf-8', issues: [] };
  } catch {
    // not UTF-8: find where, then read it as Windows-1252
  }
  const bad = Math.max(bom, firstInvalidUtf8(b, bom));
  const text = decodeWindows1252(b.subarray(bom));
  const line = lineAt(b, bad, bom);
  const byte = `0x${b[bad]!.toString(16).toUpperCase().padStart(2, '0')}`;
  return {
    text,
    encoding: 'windows-1252',
    issues: [
      {
        severity: 'warning',
        code: 'input-encoding',
        file,
        line,
        message: `${file} is not UTF-8 (byte ${byte} on line ${line}: "${lineText(text, line)}"); read it as Windows-1252 — check that accented names look right, and save the file as UTF-8 to silence this (the web UI's editors save UTF-8)`,
      },
    ],
  };
}
