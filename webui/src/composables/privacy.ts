/**
 * Privacy (redaction) mode: the ONE formatting layer for subscriber data. Every component shows
 * circuit/device names, addresses, IPs and MACs through these functions; when the mode is on they
 * return masks, so the text never reaches the DOM (nor chart labels, nor search results). The data
 * itself is never changed. State: localStorage `redact` = "true" / "false" (as upstream).
 */
import { ref, watch } from 'vue';

const STORAGE_KEY = 'redact';

function initial(): boolean {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    if (v === null) localStorage.setItem(STORAGE_KEY, 'false');
    return v === 'true';
  } catch {
    return false;
  }
}

const enabled = ref(initial());
watch(enabled, (on) => {
  try {
    localStorage.setItem(STORAGE_KEY, on ? 'true' : 'false');
  } catch {
    // storage unavailable (private window): the mode still works for this page view
  }
  document.documentElement.classList.toggle('privacy-on', on);
});
document.documentElement.classList.toggle('privacy-on', enabled.value);

/** Subscriber strings seen in loaded data (names, addresses), masked inside free text too. */
const known = new Set<string>();
let knownPattern: RegExp | undefined;

const MASK_NAME = '••••••';
const MASK_SITE = '[site]';
const MASK_ADDRESS = '••• •••••• ••';
const MASK_IPV4 = '•••.•••.•••.•••';
const MASK_IPV6 = '••••:••••::';
const MASK_MAC = '••:••:••:••:••:••';

const MAC_RE = /\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b/gi;
const IPV4_RE = /\b(?:\d{1,3}\.){3}\d{1,3}(?:\/\d{1,2})?\b/g;
// IPv6 candidates; a "::" form or at least four groups is masked (clock times like 12:30:45 are not).
const IPV6_RE = /[0-9a-f:]*:[0-9a-f:]*(?:\/\d{1,3})?/gi;
const looksIpv6 = (m: string) => /[0-9a-f]/i.test(m) && (m.includes('::') || (m.match(/:/g)?.length ?? 0) >= 3);

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

export function usePrivacy() {
  const on = () => enabled.value;
  return {
    enabled,
    toggle: () => {
      enabled.value = !enabled.value;
    },
    /** A subscriber / circuit / device name. */
    name: (v: string | null | undefined): string => (v ? (on() ? MASK_NAME : v) : ''),
    /** A site / network node name (network.json key or display name). */
    site: (v: string | null | undefined): string => (v ? (on() ? MASK_SITE : v) : ''),
    /** A postal address or a free comment about a subscriber. */
    address: (v: string | null | undefined): string => (v ? (on() ? MASK_ADDRESS : v) : ''),
    ip: (v: string | null | undefined): string => (v ? (on() ? maskIp(v) : v) : ''),
    ips: (v: string[] | null | undefined, sep = ', '): string => (v ?? []).map((x) => (on() ? maskIp(x) : x)).join(sep),
    mac: (v: string | null | undefined): string => (v ? (on() ? MASK_MAC : v) : ''),
    /** Free text (messages, previews) that may contain any of the above. */
    text: (v: string | null | undefined): string => (v ? (on() ? scrubText(v) : v) : ''),
  };
}

export type Privacy = ReturnType<typeof usePrivacy>;
