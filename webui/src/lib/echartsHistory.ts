// The History page's ECharts build: lines, drag-to-zoom (toolbox data zoom select + inside zoom),
// charts connected so zooming one zooms all.
import { LineChart } from 'echarts/charts';
import { DataZoomComponent, GridComponent, LegendComponent, ToolboxComponent, TooltipComponent } from 'echarts/components';
import { connect, init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

use([LineChart, GridComponent, LegendComponent, TooltipComponent, DataZoomComponent, ToolboxComponent, CanvasRenderer]);

export { connect, init };
