/** The colours every ECharts chart of the UI takes from the theme, and the options they all share. */
export interface ChartColours {
  /** Labels and legend text. */
  text: string;
  /** Axis lines and grid lines. */
  grid: string;
}

export function chartColours(theme: string): ChartColours {
  const dark = theme === 'dark';
  return { text: dark ? '#c9d1d9' : '#24292f', grid: dark ? '#30363d' : '#d0d7de' };
}

/** No animation, a transparent background, the theme's text colour. */
export const chartBase = (c: ChartColours) => ({ animation: false, backgroundColor: 'transparent', textStyle: { color: c.text } });
