import type { TopLevelSpec } from "vega-lite";

/**
 * Renders any Vega-Lite spec to a standalone SVG string, server-side (no browser, no canvas).
 * Vega is imported on first use: it costs about half a second, which every CLI start would pay otherwise.
 */
export async function renderVegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const vgSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Tableau 10, Vega's default categorical scheme: for series given explicit colours (LineSeries.color). */
export const SERIES_COLORS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"];

export interface LineSeries {
  /** Legend label, e.g. "TF p=0.25". */
  name: string;
  x: number[];
  y: number[];
  /** Draw dashed (e.g. for baselines such as GD). */
  dashed?: boolean;
  /** CSS colour; used only when every series of the chart has one (e.g. one hue per noise level). */
  color?: string;
}

export interface LineChartOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  series: LineSeries[];
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
  /** Fixed y domain, e.g. [0, 1.2]. */
  yDomain?: [number, number];
}

/** A multi-series line chart with points, legend and optional log axes, as SVG. */
export async function lineChartSvg(o: LineChartOptions): Promise<string> {
  const values = o.series.flatMap((s) =>
    s.x.map((x, i) => ({ series: s.name, x, y: s.y[i], dashed: s.dashed ? "dashed" : "solid" })),
  ).filter((v) => v.y !== undefined && Number.isFinite(v.y) && (!o.logY || (v.y as number) > 0));
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: o.title,
    width: o.width ?? 480,
    height: o.height ?? 300,
    background: "white",
    data: { values },
    mark: { type: "line", point: true, strokeWidth: 2 },
    encoding: {
      x: { field: "x", type: "quantitative", title: o.xTitle, scale: o.logX ? { type: "log" } : { zero: false } },
      y: {
        field: "y",
        type: "quantitative",
        title: o.yTitle,
        scale: o.logY ? { type: "log" } : o.yDomain ? { domain: o.yDomain } : { zero: false },
      },
      color: {
        field: "series",
        type: "nominal",
        title: null,
        sort: o.series.map((s) => s.name),
        ...(o.series.length > 0 && o.series.every((s) => s.color)
          ? { scale: { domain: o.series.map((s) => s.name), range: o.series.map((s) => s.color!) } }
          : {}),
      },
      strokeDash: {
        field: "dashed",
        type: "nominal",
        legend: null,
        scale: { domain: ["solid", "dashed"], range: [[1, 0], [6, 3]] },
      },
    },
  };
  return renderVegaLiteSvg(spec);
}

export interface BarDatum {
  /** Bar group on the x axis, e.g. a defense. */
  group: string;
  /** Bar within the group (colour), e.g. "initial" / "final" or a judge. */
  series: string;
  value: number;
  /** Optional interval, drawn as an error bar (e.g. Wilson 95%). */
  low?: number;
  high?: number;
}

export interface BarChartOptions {
  title: string;
  yTitle: string;
  data: BarDatum[];
  width?: number;
  height?: number;
  yDomain?: [number, number];
}

/** Grouped bars with optional error bars, as SVG. */
export async function barChartSvg(o: BarChartOptions): Promise<string> {
  const hasIntervals = o.data.some((d) => d.low !== undefined && d.high !== undefined);
  const x = { field: "series", type: "nominal" as const, title: null, sort: null, axis: { labels: false, ticks: false } };
  const y = {
    field: "value",
    type: "quantitative" as const,
    title: o.yTitle,
    scale: o.yDomain ? { domain: o.yDomain } : {},
  };
  const layers: Record<string, unknown>[] = [
    { mark: { type: "bar" }, encoding: { x, y, color: { field: "series", type: "nominal", title: null, sort: null } } },
    {
      mark: { type: "text", dy: -6, fontSize: 10 },
      encoding: { x, y, text: { field: "value", type: "quantitative", format: ".2f" } },
    },
  ];
  if (hasIntervals) {
    layers.push({
      mark: { type: "rule" },
      encoding: { x, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
    });
  }
  // Facet by group: one small cluster of bars per group (e.g. per defense), one colour per series.
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: o.title,
    background: "white",
    data: { values: o.data },
    facet: { column: { field: "group", type: "nominal", title: null, header: { labelOrient: "bottom" } } },
    spec: { width: { step: 22 }, height: o.height ?? 240, layer: layers },
  } as unknown as TopLevelSpec;
  return renderVegaLiteSvg(spec);
}
