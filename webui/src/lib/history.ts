/** The History page's pure helpers: chart series from the API's buckets, and time labels in the browser's zone. */
import type { HistoryPoint } from '../../../lib/api/history.ts';

export interface ChartSeries {
  name: string;
  color: string;
  dashed?: boolean;
  /** [ms since the epoch, value or null (a gap)]. */
  data: [number, number | null][];
}

const at = (p: HistoryPoint) => p.t * 1000;
const series = (name: string, color: string, points: HistoryPoint[], v: (p: HistoryPoint) => number | null, dashed = false): ChartSeries => ({
  name,
  color,
  dashed,
  data: points.map((p) => [at(p), v(p)]),
});

/** Throughput: average (solid) and maximum (dashed) per direction, bits/s. */
export function throughputSeries(points: HistoryPoint[]): ChartSeries[] {
  return [
    series('Download avg', '#2f81f7', points, (p) => p.downAvgBps),
    series('Download max', '#2f81f7', points, (p) => p.downMaxBps, true),
    series('Upload avg', '#3fb950', points, (p) => p.upAvgBps),
    series('Upload max', '#3fb950', points, (p) => p.upMaxBps, true),
  ];
}

export function rttSeries(points: HistoryPoint[]): ChartSeries[] {
  return [series('RTT p50', '#d29922', points, (p) => p.rttP50Ms), series('RTT p90', '#f85149', points, (p) => p.rttP90Ms, true)];
}

export function retransmitSeries(points: HistoryPoint[]): ChartSeries[] {
  return [series('Retransmits ↓', '#2f81f7', points, (p) => p.retransDownPct), series('Retransmits ↑', '#3fb950', points, (p) => p.retransUpPct)];
}

export function dropSeries(points: HistoryPoint[]): ChartSeries[] {
  return [
    series('Drops ↓', '#f85149', points, (p) => p.dropsDown),
    series('Drops ↑', '#db6d28', points, (p) => p.dropsUp),
    series('ECN marks ↓', '#a371f7', points, (p) => p.marksDown, true),
    series('ECN marks ↑', '#bc8cff', points, (p) => p.marksUp, true),
  ];
}

/** Whether any point has a value (a chart of nothing but nulls says so instead of drawing axes). */
export const hasValues = (s: ChartSeries[]) => s.some((x) => x.data.some(([, v]) => v !== null));

// One formatter each, made on first use: a chart's axis formats hundreds of labels while it lays them
// out, and toLocaleString with options builds a new formatter every call (36 ms of a History page's
// first render in Chromium's profile).
const formatters = new Map<boolean, Intl.DateTimeFormat>();
/** A time in the browser's zone: `Dec 5, 14:03` (with seconds when asked). */
export function localTime(ms: number, seconds = false): string {
  let f = formatters.get(seconds);
  if (!f) {
    f = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', ...(seconds ? { second: '2-digit' } : {}), hour12: false });
    formatters.set(seconds, f);
  }
  return f.format(ms);
}

/** The browser's time zone name (shown under the charts). */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

/** A bucket size as words: `1 min`, `72 min`, `3 h`. */
export function stepText(s: number): string {
  return s < 3600 || s % 3600 !== 0 ? `${Math.round(s / 60)} min` : `${s / 3600} h`;
}
