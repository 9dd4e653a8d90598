/** Number and time formatting shared by the pages. */

export function formatBps(bps: number | undefined | null): string {
  if (bps === undefined || bps === null || !Number.isFinite(bps)) return '—';
  const units = ['bps', 'kbps', 'Mbps', 'Gbps', 'Tbps'];
  let v = Math.max(0, bps);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Plan rates: up to three decimals, no trailing zeros. */
export function formatMbps(mbps: number | undefined | null): string {
  if (mbps === undefined || mbps === null || !Number.isFinite(mbps)) return '—';
  return `${Number(mbps.toFixed(3))} Mbps`;
}

export function formatTime(iso: string | undefined | null): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function ago(iso: string | undefined | null, now = Date.now()): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  // A time a little ahead of this browser's clock (skew): it just happened.
  if (s < 0) return s > -120 ? 'just now' : `in ${duration(-s)}`;
  return `${duration(s)} ago`;
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** Share of a limit in percent, clamped to 0..999. */
export function percent(bps: number | undefined, limitMbps: number): number | undefined {
  if (bps === undefined || !(limitMbps > 0)) return undefined;
  return Math.min(999, Math.max(0, (bps / (limitMbps * 1e6)) * 100));
}

/** A byte count in decimal units (`12.3 MB`). */
export function formatBytes(bytes: number | undefined | null): string {
  if (bytes === undefined || bytes === null || !Number.isFinite(bytes)) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = Math.max(0, bytes);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}
