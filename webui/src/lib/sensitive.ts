/**
 * The masks of privacy mode (composables/privacy.ts) and the subscriber strings learnt from loaded
 * data, which are masked inside free text too. Plain module state, no Vue: stores feed it as well.
 */

export const MASK_NAME = '••••••';
export const MASK_SITE = '[site]';
export const MASK_ADDRESS = '••• •••••• ••';
const MASK_IPV4 = '•••.•••.•••.•••';
const MASK_IPV6 = '••••:••••::';
export const MASK_MAC = '••:••:••:••:••:••';

const MAC_RE = /\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b/gi;
const IPV4_RE = /\b(?:\d{1,3}\.){3}\d{1,3}(?:\/\d{1,2})?\b/g;
// IPv6 candidates; a "::" form or at least four groups is masked (clock times like 12:30:45 are not).
const IPV6_RE = /[0-9a-f:]*:[0-9a-f:]*(?:\/\d{1,3})?/gi;
const looksIpv6 = (m: string) => /[0-9a-f]/i.test(m) && (m.includes('::') || (m.match(/:/g)?.length ?? 0) >= 3);

/** Subscriber strings seen in loaded data (names, addresses). */
const known = new Set<string>();
let knownPattern: RegExp | undefined;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function maskIp(v: string): string {
  return v.includes(':') ? MASK_IPV6 : MASK_IPV4;
}

/** Masks IPs, MACs and every learned subscriber string inside arbitrary text. */
export function scrubText(v: string): string {
  let s = v;
  if (knownPattern) s = s.replace(knownPattern, MASK_NAME);
  s = s.replace(MAC_RE, MASK_MAC).replace(IPV4_RE, MASK_IPV4);
  s = s.replace(IPV6_RE, (m) => (looksIpv6(m) ? MASK_IPV6 : m));
  return s;
}

/** Remembers subscriber strings so they are masked wherever they show up in free text. */
export function learnSensitive(values: Iterable<string | undefined | null>): void {
  let added = false;
  for (const v of values) {
    const t = v?.trim();
    if (t && t.length >= 3 && !known.has(t)) {
      known.add(t);
      added = true;
    }
  }
  if (added) {
    const sorted = [...known].sort((a, b) => b.length - a.length).map(escapeRe);
    knownPattern = new RegExp(sorted.join('|'), 'g');
  }
}
