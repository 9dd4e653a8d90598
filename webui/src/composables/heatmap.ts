/**
 * Samples for the heatmaps, kept while the page is open: `useSamples` records the getter's values
 * whenever its sources change (the live channels push them), at most `keepMs` back.
 */
import { shallowRef, watch } from 'vue';
import { HEATMAP_BUCKET_SECONDS, HEATMAP_BUCKETS, type Sample } from '../lib/heatmap';

export function useSamples(getter: () => (number | null)[] | null, keepMs = HEATMAP_BUCKET_SECONDS * HEATMAP_BUCKETS * 1000) {
  const samples = shallowRef<Sample[]>([]);
  watch(getter, (values) => {
    if (!values) return;
    const now = Date.now();
    const kept = samples.value.filter((s) => s.t >= now - keepMs);
    kept.push({ t: now, values });
    samples.value = kept;
  });
  return samples;
}
