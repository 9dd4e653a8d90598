/**
 * Live state pushed over the websocket: urgent issues, scheduler and shaping status (always, for the
 * top navigation) and total throughput history. Per-circuit rates are subscribed by the pages that
 * show them (useLiveRates).
 */
import { defineStore } from 'pinia';
import { computed, onBeforeUnmount, ref, shallowRef } from 'vue';
import type { CircuitRateView, NodeRateView, SchedulerStatus, StatusPayload, UrgentPayload } from '../../../lib/api/index.ts';
import { get } from '../lib/api';
import { live } from '../lib/live';
import { circuitRates, nodeRates, throughputSample, type ThroughputSample } from '../lib/telemetry';

const HISTORY_POINTS = 300;

export const useLive = defineStore('live', () => {
  const urgent = ref<UrgentPayload>({ activeCount: 0, items: [] });
  const scheduler = ref<SchedulerStatus | undefined>();
  const status = ref<StatusPayload | undefined>();
  const throughput = shallowRef<ThroughputSample[]>([]);
  /** Per node path, from the `throughput` channel (top-level nodes). */
  const nodes = shallowRef(new Map<string, NodeRateView>());
  const channels = live.channels;
  const connected = live.connected;
  /** When lqosd's live connection was lost (undefined while connected). */
  const lostAt = live.lostAt;
  /** Why lqosd refused the live connection (a websocket limit: "… close other tabs"), until one is accepted. */
  const refused = live.refused;
  let offs: (() => void)[] = [];

  const throughputState = computed(() => channels.throughput ?? 'pending');

  /** Loads the current values over HTTP (instant paint), then follows the websocket. */
  async function start(): Promise<void> {
    stop();
    live.start();
    offs = [
      live.subscribe('urgent', (d) => (urgent.value = d)),
      live.subscribe('scheduler', (d) => (scheduler.value = d)),
      live.subscribe('status', (d) => (status.value = d)),
      live.subscribe('throughput', (d) => {
        nodes.value = nodeRates(d);
        const next = throughput.value.length >= HISTORY_POINTS ? throughput.value.slice(1) : throughput.value.slice();
        next.push(throughputSample(d));
        throughput.value = next;
      }),
    ];
    await Promise.all([refreshUrgent(), get<StatusPayload>('/api/status').then((s) => {
      status.value = s;
      scheduler.value ??= s.scheduler;
    })]).catch(() => undefined);
  }

  async function refreshUrgent(): Promise<void> {
    urgent.value = await get<UrgentPayload>('/api/urgent');
  }

  function stop(): void {
    for (const off of offs) off();
    offs = [];
    live.stop();
    throughput.value = [];
    nodes.value = new Map();
  }

  return { urgent, scheduler, status, throughput, nodeRates: nodes, throughputState, channels, connected, lostAt, refused, start, stop, refreshUrgent };
});

/** Per-circuit live rates while the calling component is mounted; per-node rates from the store. */
export function useLiveRates(which: { circuits?: boolean }) {
  const store = useLive();
  const circuits = shallowRef(new Map<string, CircuitRateView>());
  const offs: (() => void)[] = [];
  if (which.circuits) offs.push(live.subscribe('circuits', (d) => (circuits.value = circuitRates(d))));
  onBeforeUnmount(() => offs.forEach((f) => f()));
  return {
    circuits,
    nodes: computed(() => store.nodeRates),
    circuitsState: computed(() => live.channels.circuits ?? 'pending'),
    nodesState: computed(() => live.channels.throughput ?? 'pending'),
  };
}
