/**
 * Flow tracking data for the Flow Globe and ASN Analysis pages: `GET /api/flows` once, then the
 * `flows` websocket channel. Flow tracking is optional in lqosd: when the route answers 404 (or 501 /
 * 503) and the channel is unknown, `state` is `missing` and the pages say so. Any other failure (a
 * 500, lqosd unreachable) is `error`, with its message: that is a fault to look into, not a feature
 * that is off.
 */
import { computed, onBeforeUnmount, ref, shallowRef } from 'vue';
import type { FlowSnapshot } from '../../../lib/api/index.ts';
import { ApiError, get } from '../lib/api';
import { live } from '../lib/live';

export type FlowsState = 'pending' | 'available' | 'missing' | 'error';

export function useFlows() {
  const data = shallowRef<FlowSnapshot | undefined>();
  const route = ref<'pending' | 'ok' | 'missing' | 'error'>('pending');
  const error = ref('');
  let fromChannel = false;
  const off = live.subscribe('flows', (d) => {
    data.value = d;
    fromChannel = true;
  });
  const waited = ref(false);
  const timer = setTimeout(() => (waited.value = true), 4000);
  onBeforeUnmount(() => {
    off();
    clearTimeout(timer);
  });

  async function refresh(): Promise<void> {
    try {
      const r = await get<FlowSnapshot>('/api/flows');
      // the websocket is the fresher source once it delivered
      if (!fromChannel) data.value = r;
      route.value = 'ok';
    } catch (err) {
      if (err instanceof ApiError && [404, 501, 503].includes(err.status)) route.value = 'missing';
      else {
        route.value = 'error';
        error.value = (err as Error).message;
      }
    }
  }
  void refresh();

  const channel = computed(() => live.channels.flows ?? 'pending');
  const state = computed<FlowsState>(() => {
    if (data.value || route.value === 'ok' || channel.value === 'available') return 'available';
    if ((route.value === 'missing' || route.value === 'error') && (channel.value === 'missing' || waited.value)) return route.value;
    // Websocket down or slow: the route's answer decides after a while.
    return 'pending';
  });
  return { data, state, error, refresh, channel };
}
