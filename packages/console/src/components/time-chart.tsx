import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  /** [epoch seconds, value] pairs, any order. */
  points: [number, number][];
}

const COLOURS = ['#1d4ed8', '#b45309', '#047857', '#7c3aed', '#be123c', '#0e7490'];

/** The series on one time axis: uPlot wants one x array and a y array per series, null where absent. */
function align(series: Series[]): uPlot.AlignedData {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  // One instant alone is stretched over years by uPlot: give it an empty half hour each side.
  if (xs.length === 1) {
    const only = xs[0]!;
    xs.splice(0, 1, only - 1800, only, only + 1800);
  }
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const y: (number | null)[] = Array(xs.length).fill(null);
    for (const [x, v] of s.points) y[index.get(x)!] = v;
    return y;
  });
  return [xs, ...ys] as uPlot.AlignedData;
}

/**
 * A line (or bar) chart of values over time, drawn by uPlot on a canvas; the figure's label and a
 * caption say what it shows, for readers who cannot see it.
 */
export function TimeChart({
  title,
  series,
  bars,
  height = 220,
}: {
  title: string;
  series: Series[];
  bars?: boolean;
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const total = series.reduce((n, s) => n + s.points.length, 0);
  useEffect(() => {
    const el = box.current;
    if (!el || total === 0) return;
    const plot = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height,
        legend: { show: series.length > 1 },
        scales: { x: { time: true } },
        axes: [{}, { size: 60 }],
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            spanGaps: true,
            ...(bars
              ? { paths: uPlot.paths.bars!({ size: [0.8, 40] }), fill: `${COLOURS[i % COLOURS.length]}55` }
              : {}),
          })),
        ],
      },
      align(series),
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series, bars, height, total]);
  return (
    <figure className="chart" aria-label={title}>
      <figcaption>{title}</figcaption>
      {total === 0 ? <p className="empty">No data for this chart yet.</p> : <div ref={box} />}
    </figure>
  );
}
