/**
 * lqosd's InfluxDB export (`[influxdb]`): every `intervalMs` the current telemetry as line protocol
 * (./points.ts) into the batching writer (./writer.ts: bounded buffer, backoff), flushed right after
 * (this timer is the only one: the writer has none of its own here). Problems go to the
 * log once per state change, never with the token.
 */
import type { Log } from '../../util/log.ts';
import { InfluxWriter, type InfluxTarget, type InfluxWriterStats } from './writer.ts';

export interface InfluxExport {
  stats(): InfluxWriterStats;
  stop(): Promise<void>;
}

export function startInfluxExport(target: InfluxTarget, lines: () => string[], log: Log, intervalMs = 10_000): InfluxExport {
  const writer = new InfluxWriter({ ...target, flushIntervalMs: 0, onEvent: (level, msg) => (level === 'warn' ? log.warn(msg) : log.info(msg)) });
  const timer = setInterval(() => {
    try {
      writer.add(lines());
      void writer.flush();
    } catch (e) {
      log.warn(`InfluxDB export: could not build the points: ${(e as Error).message}`);
    }
  }, intervalMs);
  timer.unref();
  log.info(`InfluxDB export to ${target.url} (bucket ${target.bucket}) every ${intervalMs / 1000} s`);
  return {
    stats: () => writer.stats(),
    async stop() {
      clearInterval(timer);
      await writer.close();
    },
  };
}
