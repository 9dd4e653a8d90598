/**
 * Sends flow records to a NetFlow/IPFIX collector over UDP, at a bounded rate: packets wait in a
 * bounded queue and leave at most `maxPacketsPerSecond` (in 10 ticks a second); when the queue is
 * full the newest records are dropped and counted, never buffered without limit. Templates (v9,
 * IPFIX) go out with the first packet and again every `templateEveryPackets` packets or
 * `templateEveryMs`, so a collector started later learns them.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { uptime } from 'node:os';
import { encodeTemplated, encodeV5, splitForV5, V5_RECORDS_PER_PACKET } from './encode.ts';
import type { ExportContext, ExportRecord, NetflowVersion } from './record.ts';

export interface NetflowExporterOptions {
  host: string;
  port: number;
  version: NetflowVersion;
  /** v9 source id / IPFIX observation domain (default 0). */
  sourceId?: number;
  /** Default 2,000 packets/s (≈ 22 Mbit/s of export traffic). */
  maxPacketsPerSecond?: number;
  /** Packets waiting to be sent at most (default 20,000); beyond it records are dropped. */
  maxQueuedPackets?: number;
  templateEveryPackets?: number;
  templateEveryMs?: number;
  now?: () => number;
  /** Unix ms sysUptime counts from (default: the machine's boot, so no flow starts before it). */
  bootMs?: number;
  /** Told once per distinct problem (send error, records dropped because the queue was full). */
  onProblem?: (msg: string) => void;
}

export interface NetflowExporterStats {
  records: number;
  packets: number;
  /** Records dropped because the queue was full. */
  dropped: number;
  /** IPv6 records a v5 exporter cannot carry. */
  skippedIpv6: number;
  sendErrors: number;
  lastError?: string;
}

const TICKS_PER_SECOND = 10;

export class NetflowExporter {
  private readonly sock: Socket;
  private readonly queue: { bytes: Buffer; records: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly inflight = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly bootMs: number;
  private sequence = 0;
  private packetsSinceTemplate = Infinity;
  private lastTemplateMs = -Infinity;
  private readonly counts: NetflowExporterStats = { records: 0, packets: 0, dropped: 0, skippedIpv6: 0, sendErrors: 0 };

  constructor(private readonly o: NetflowExporterOptions) {
    this.now = o.now ?? Date.now;
    this.bootMs = o.bootMs ?? Math.floor(this.now() - uptime() * 1000);
    this.sock = createSocket(isIPv6(o.host) ? 'udp6' : 'udp4');
    this.sock.on('error', (err) => this.sendFailed(err));
    this.sock.unref();
    this.timer = setInterval(() => this.drain(), 1000 / TICKS_PER_SECOND);
    this.timer.unref();
  }

  /** Encodes `records` and queues the packets (sent within the rate limit). */
  export(records: readonly ExportRecord[]): void {
    if (records.length === 0) return;
    const max = this.o.maxQueuedPackets ?? 20_000;
    for (const p of this.encode(records)) {
      if (this.queue.length >= max) {
        this.counts.dropped += p.records;
        this.problem(`NetFlow/IPFIX export queue full (${max} packets at ${this.o.maxPacketsPerSecond ?? 2000} packets/s): flow records are being dropped`);
        continue;
      }
      this.queue.push(p);
    }
    this.drain();
  }

  private encode(records: readonly ExportRecord[]): { bytes: Buffer; records: number }[] {
    const nowMs = this.now();
    if (this.o.version === 5) {
      const v4 = splitForV5(records.filter((r) => r.src.length === 4));
      this.counts.skippedIpv6 += records.filter((r) => r.src.length !== 4).length;
      const out = [];
      for (let i = 0; i < v4.length; i += V5_RECORDS_PER_PACKET) {
        const chunk = v4.slice(i, i + V5_RECORDS_PER_PACKET);
        out.push({ bytes: encodeV5(chunk, this.context(nowMs, false)), records: chunk.length });
        this.sequence += chunk.length;
      }
      return out;
    }
    const withTemplates =
      this.packetsSinceTemplate >= (this.o.templateEveryPackets ?? 20) || nowMs - this.lastTemplateMs >= (this.o.templateEveryMs ?? 30_000);
    const packets = encodeTemplated(this.o.version, records, this.context(nowMs, withTemplates));
    if (withTemplates) {
      this.packetsSinceTemplate = 0;
      this.lastTemplateMs = nowMs;
    }
    this.packetsSinceTemplate += packets.length;
    for (const p of packets) this.sequence += this.o.version === 10 ? p.records : 1;
    return packets;
  }

  private context(nowMs: number, withTemplates: boolean): ExportContext {
    return { bootMs: this.bootMs, nowMs, sequence: this.sequence, sourceId: this.o.sourceId ?? 0, withTemplates };
  }

  private drain(): void {
    const budget = Math.max(1, Math.floor((this.o.maxPacketsPerSecond ?? 2000) / TICKS_PER_SECOND));
    for (let n = 0; n < budget && this.queue.length > 0; n++) this.send(this.queue.shift()!);
  }

  private send(p: { bytes: Buffer; records: number }): void {
    this.counts.packets++;
    this.counts.records += p.records;
    const sent = new Promise<void>((resolve) =>
      this.sock.send(p.bytes, this.o.port, this.o.host, (err) => {
        if (err) this.sendFailed(err);
        resolve();
      }),
    );
    this.inflight.add(sent);
    void sent.then(() => this.inflight.delete(sent));
  }

  private sendFailed(err: Error): void {
    this.counts.sendErrors++;
    this.problem(`NetFlow/IPFIX export to ${this.o.host}:${this.o.port} failed: ${err.message}`);
    this.counts.lastError = err.message;
  }

  private reported = '';
  private problem(msg: string): void {
    if (msg === this.reported) return;
    this.reported = msg;
    this.o.onProblem?.(msg);
  }

  /** Packets still waiting. */
  get queued(): number {
    return this.queue.length;
  }

  stats(): NetflowExporterStats {
    return { ...this.counts };
  }

  /** Sends what is queued (ignoring the rate), waits for the sends, then closes the socket. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const p of this.queue.splice(0)) this.send(p);
    await Promise.all(this.inflight);
    await new Promise<void>((resolve) => this.sock.close(() => resolve()));
  }
}
