/**
 * The live websocket (`GET /api/ws`): the client sends `{subscribe: [names]}` / `{unsubscribe: [...]}`,
 * lqosd pushes `{channel, data}` once per tick for every subscribed channel.
 */
import type { FlowSnapshot } from './flows.ts';
import type { SchedulerStatus } from './scheduler.ts';
import type { StatusPayload } from './status.ts';
import type { CircuitRatesPayload, CpuPayload, QueueStatsPayload, ThroughputPayload } from './telemetry.ts';
import type { UrgentPayload } from './urgent.ts';

/** The data of each channel. Telemetry and flows are there only while those services run. */
export interface ChannelPayloads {
  urgent: UrgentPayload;
  scheduler: SchedulerStatus;
  status: StatusPayload;
  throughput: ThroughputPayload;
  circuits: CircuitRatesPayload;
  queues: QueueStatsPayload;
  cpu: CpuPayload;
  flows: FlowSnapshot;
}

export type ChannelName = keyof ChannelPayloads;

/** The error body of every failed request, and of the websocket's `error` messages. */
export interface ApiErrorBody {
  error: string;
  message: string;
}

/** Messages of the hub itself (never channel names). */
export interface HubMessages {
  /** Every channel the connection is subscribed to now (a name the daemon does not offer is missing). */
  subscribed: string[];
  unsubscribed: string[];
  error: ApiErrorBody;
}

export type ServerMessage =
  | { [K in ChannelName]: { channel: K; data: ChannelPayloads[K] } }[ChannelName]
  | { [K in keyof HubMessages]: { channel: K; data: HubMessages[K] } }[keyof HubMessages];
