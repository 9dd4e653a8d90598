/**
 * Circuits and the network tree of the applied plan (GET /api/circuits, /api/network-tree), shared by
 * search, dashboard, tree and circuit pages. Subscriber strings are handed to the privacy layer so they
 * are masked inside free text as well.
 */
import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import type { CircuitInfo, CircuitsPayload, NetworkTreePayload } from '../../../lib/api/index.ts';
import { get } from '../lib/api';
import { learnSensitive } from '../lib/sensitive';

const MAX_AGE_MS = 30_000;

export const useInventory = defineStore('inventory', () => {
  const circuits = shallowRef<CircuitInfo[]>([]);
  const applied = ref(false);
  const tree = shallowRef<NetworkTreePayload>({ applied: false, nodes: [] });
  const loadedAt = ref(0);
  const error = ref<string | undefined>();
  let inflight: Promise<void> | undefined;

  async function load(force = false): Promise<void> {
    if (!force && Date.now() - loadedAt.value < MAX_AGE_MS) return;
    inflight ??= (async () => {
      try {
        const [c, t] = await Promise.all([get<CircuitsPayload>('/api/circuits'), get<NetworkTreePayload>('/api/network-tree')]);
        learnSensitive(c.circuits.flatMap((x) => [x.name, ...x.devices.flatMap((d) => [d.name, d.comment])]));
        // Site names too: free text such as lqos_overrides.json's changes names them.
        learnSensitive(t.nodes.map((n) => n.name));
        circuits.value = c.circuits;
        applied.value = c.applied;
        tree.value = t;
        loadedAt.value = Date.now();
        error.value = undefined;
      } catch (err) {
        error.value = (err as Error).message;
        throw err;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  function reset(): void {
    circuits.value = [];
    tree.value = { applied: false, nodes: [] };
    loadedAt.value = 0;
  }

  return { circuits, applied, tree, loadedAt, error, load, reset };
});
