/**
 * Privacy (redaction) mode: the ONE formatting layer for subscriber data. Every component shows
 * circuit/device names, addresses, IPs and MACs through these functions; when the mode is on they
 * return masks, so the text never reaches the DOM (nor chart labels, nor search results). The data
 * itself is never changed. State: localStorage `redact` = "true" / "false" (as upstream).
 */
import { ref, watch } from 'vue';
import { MASK_ADDRESS, MASK_MAC, MASK_NAME, MASK_SITE, maskIp, scrubText } from '../lib/sensitive';

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
