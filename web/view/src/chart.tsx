import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  values: (number | null)[];
  dashed?: boolean;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

/**
 * A line chart (uPlot): hovering shows every series' value in the legend, clicking a legend entry
 * hides or shows that series.
 */
export function LineChart(props: { title: string; x: number[]; xLabel: string; yLabel: string; series: Series[]; width?: number; height?: number; log?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const width = props.width ?? Math.max(320, Math.min(760, el.clientWidth || 640));
    const opts: uPlot.Options = {
      title: props.title,
      width,
      height: props.height ?? 300,
      scales: { x: { time: false }, y: props.log ? { distr: 3 } : {} },
      axes: [{ label: props.xLabel }, { label: props.yLabel, size: 60 }],
      series: [
        { label: props.xLabel },
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          dash: s.dashed ? [6, 4] : undefined,
          points: { show: props.x.length <= 30 },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? "—" : v.toPrecision(4)),
        })),
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    const plot = new uPlot(opts, [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el);
    return () => plot.destroy();
  }, [props.title, props.x, props.series, props.width, props.height, props.log, props.xLabel, props.yLabel]);
  return <div class="chart" ref={ref} />;
}
