/**
 * Which top-level nodes and circuits sit on which CPU queue (from /api/network-tree, /api/circuits
 * and /api/plan/queues), with the live load per CPU (`cpu` channel) and the live throughput per queue
 * (circuit rates of the `circuits` channel summed by the circuit's queue). CPU index = queue − 1.
 */
import { computed, onBeforeUnmount, onMounted, ref, shallowRef } from 'vue';
import type { BitRates, CircuitInfo, CircuitRateView, CpuPayload, PlanQueuesPayload, TreeNode } from '../../../lib/api/index.ts';
import { ApiError, get } from '../lib/api';
import { live } from '../lib/live';
import { circuitRates } from '../lib/telemetry';
import { useInventory } from '../stores/inventory';

export interface CpuRow {
  cpu: number;
  queue: number;
  /** Top-level nodes on this queue (their whole subtree is on it too). */
  topNodes: TreeNode[];
  nodes: TreeNode[];
  circuits: CircuitInfo[];
  ceilDownMbps: number;
  ceilUpMbps: number;
  /** Live busy % of the core, when the `cpu` channel is there. */
  loadPct?: number;
  /** Live throughput of the queue's circuits, when the `circuits` channel is there. */
  live?: BitRates;
  liveCircuits: number;
}

export function useCpuQueues() {
  const inv = useInventory();
  const plan = ref<PlanQueuesPayload | undefined>();
  const cpuLoad = shallowRef<CpuPayload | undefined>();
  const circuitLive = shallowRef(new Map<string, CircuitRateView>());
  const loading = ref(true);
  const error = ref('');
  /** Why the plan's queue count could not be read (CPUs that hold nothing may then be missing). */
  const queueNote = ref('');
  const offs = [
    live.subscribe('cpu', (d) => (cpuLoad.value = d)),
    live.subscribe('circuits', (d) => (circuitLive.value = circuitRates(d))),
  ];
  onBeforeUnmount(() => offs.forEach((f) => f()));

  onMounted(async () => {
    try {
      const queues = get<PlanQueuesPayload>('/api/plan/queues').catch((err: unknown) => {
        // 404: an lqosd without the route (older); anything else is a failure worth saying.
        if (!(err instanceof ApiError && err.status === 404)) {
          queueNote.value = `the plan's queue count could not be read (${(err as Error).message}): CPUs are counted from the nodes and circuits shown, so CPUs that hold none may be missing`;
        }
        return undefined;
      });
      const [, q] = await Promise.all([inv.load(true), queues]);
      plan.value = q;
    } catch (err) {
      error.value = (err as Error).message;
    } finally {
      loading.value = false;
    }
  });

  const queueCount = computed(() => {
    let n = plan.value?.applied ? plan.value.queues : 0;
    for (const x of inv.tree.nodes) n = Math.max(n, x.queue);
    for (const c of inv.circuits) n = Math.max(n, c.queue);
    return n;
  });

  const cpus = computed<CpuRow[]>(() => {
    const rows: CpuRow[] = [];
    for (let q = 1; q <= queueCount.value; q++) {
      rows.push({ cpu: q - 1, queue: q, topNodes: [], nodes: [], circuits: [], ceilDownMbps: 0, ceilUpMbps: 0, liveCircuits: 0 });
    }
    const byQueue = (q: number) => rows[q - 1];
    for (const n of inv.tree.nodes) {
      const r = byQueue(n.queue);
      if (!r) continue;
      r.nodes.push(n);
      if (n.parent === null) r.topNodes.push(n);
    }
    const rates = circuitLive.value;
    for (const c of inv.circuits) {
      const r = byQueue(c.queue);
      if (!r) continue;
      r.circuits.push(c);
      r.ceilDownMbps += c.download.ceilMbps;
      r.ceilUpMbps += c.upload.ceilMbps;
      const lr = rates.get(c.id);
      if (lr) {
        r.live ??= { downBps: 0, upBps: 0 };
        r.live.downBps += lr.downBps;
        r.live.upBps += lr.upBps;
        r.liveCircuits++;
      }
    }
    const per = cpuLoad.value?.perCore;
    for (const r of rows) {
      const pct = per?.[r.cpu];
      if (pct !== undefined) r.loadPct = pct;
      if (!r.live && circuitsState.value === 'available') r.live = { downBps: 0, upBps: 0 };
    }
    return rows;
  });

  const cpuState = computed(() => live.channels.cpu ?? 'pending');
  const circuitsState = computed(() => live.channels.circuits ?? 'pending');

  return { inv, plan, cpus, cpuLoad, loading, error, queueNote, cpuState, circuitsState, queueCount };
}
