// Time series with uPlot: the current period as a line, the compared period dashed behind it,
// sized to its container and redrawn when the container changes size.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatTime, formatValue } from './format';

export interface Series {
  times: string[];
  values: (number | null)[];
  previous?: (number | null)[];
}

function css(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/** Draws `series` of `measure` into `host`; returns a function that removes the chart. */
export function lineChart(
  host: HTMLElement,
  series: Series,
  measure: string,
  granularity: string | null,
  timeZone: string,
  onPick?: (index: number) => void,
): () => void {
  const xs = series.times.map((_, i) => i);
  const data: uPlot.AlignedData = [xs, series.values];
  const lines: uPlot.Series[] = [
    {},
    { label: 'Now', stroke: css('--accent'), width: 2, fill: css('--accent-fill'), value: (_u, v) => formatValue(measure, v) },
  ];
  if (series.previous) {
    data.push(series.previous);
    lines.push({ label: 'Before', stroke: css('--muted'), width: 1.5, dash: [6, 4], value: (_u, v) => formatValue(measure, v) });
  }
  const options: uPlot.Options = {
    width: Math.max(host.clientWidth, 280),
    height: 260,
    series: lines,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false } },
    axes: [
      {
        stroke: css('--muted'),
        grid: { show: false },
        values: (_u, splits) => splits.map((i) => (series.times[i] ? formatTime(series.times[i], granularity, timeZone) : '')),
      },
      {
        stroke: css('--muted'),
        grid: { stroke: css('--grid') },
        values: (_u, splits) => splits.map((v) => formatValue(measure, v)),
      },
    ],
    hooks: onPick
      ? {
          ready: [
            (u) => {
              u.over.addEventListener('click', () => {
                const i = u.cursor.idx;
                if (i !== null && i !== undefined) onPick(i);
              });
            },
          ],
        }
      : {},
  };
  const chart = new uPlot(options, data, host);
  const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(host.clientWidth, 280), height: 260 }));
  resize.observe(host);
  return () => {
    resize.disconnect();
    chart.destroy();
  };
}
