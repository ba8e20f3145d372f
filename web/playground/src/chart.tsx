/** A uPlot line chart as a Preact component: created once, fed new data on every render. */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  color: string;
  dash?: number[];
}

interface Props {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** [x, ...one array per series]. */
  data: number[][];
  /** Fixed y range, or null to fit the data. */
  yRange?: [number, number] | null;
}

export function LineChart({ id, title, xLabel, yLabel, series, data, yRange = null }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = series.map((s) => s.label).join("|");

  useEffect(() => {
    const el = host.current!;
    const opts: uPlot.Options = {
      title,
      width: Math.max(320, el.clientWidth),
      height: 300,
      scales: { x: { time: false }, y: yRange ? { range: yRange } : {} },
      axes: [{ label: xLabel }, { label: yLabel }],
      series: [{ label: xLabel }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, dash: s.dash, points: { show: false } }))],
      legend: { live: false },
    };
    const p = new uPlot(opts, data as uPlot.AlignedData, el);
    plot.current = p;
    const onResize = () => p.setSize({ width: Math.max(320, el.clientWidth), height: 300 });
    window.addEventListener("resize", onResize);
    return () => {
      window.removeEventListener("resize", onResize);
      p.destroy();
      plot.current = null;
    };
    // Rebuilt only when the set of series changes; data updates go through setData below.
  }, [key]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);

  // uPlot draws its title once; later titles (e.g. the step of the last evaluation) are written in place.
  useEffect(() => {
    const el = plot.current?.root.querySelector(".u-title");
    if (el) el.textContent = title;
  }, [title, key]);

  return <div id={id} class="chart" ref={host} />;
}
