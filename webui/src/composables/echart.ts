/**
 * An ECharts instance on an element: created on mount, resized with the element, redrawn when `deps`
 * change, disposed on unmount. `init` comes from the caller's ECharts build (lib/echarts,
 * lib/echartsBar), so each chart's chunk carries only the parts it draws with.
 */
import type { EChartsCoreOption, EChartsType, init as Init } from 'echarts/core';
import { resizeWithElement } from '../lib/chartResize';
import { onBeforeUnmount, onMounted, watch, type Ref, type WatchSource } from 'vue';

export function useEChart(el: Ref<HTMLElement | undefined>, init: typeof Init, options: () => EChartsCoreOption, deps: WatchSource, notMerge = false): void {
  let chart: EChartsType | undefined;
  let ro: ResizeObserver | undefined;
  onMounted(() => {
    if (!el.value) return;
    chart = init(el.value, undefined, { renderer: 'canvas' });
    chart.setOption(options());
    ro = resizeWithElement(el.value, chart);
  });
  watch(deps, () => chart?.setOption(options(), { notMerge, lazyUpdate: true }));
  onBeforeUnmount(() => {
    ro?.disconnect();
    chart?.dispose();
  });
}
