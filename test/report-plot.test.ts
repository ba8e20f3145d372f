import { test } from "node:test";
import assert from "node:assert/strict";
import { lineChartSvg, barChartSvg } from "../src/report/plot.js";
import { htmlPage, htmlTable, markdownTable, escapeHtml } from "../src/report/html.js";

test("lineChartSvg renders every series with its legend label", async () => {
  const svg = await lineChartSvg({
    title: "error vs examples",
    xTitle: "examples",
    yTitle: "1 - cos",
    series: [
      { name: "TF p=0", x: [2, 3, 4], y: [0.9, 0.6, 0.4] },
      { name: "GD p=0", x: [2, 3, 4], y: [0.8, 0.5, 0.45], dashed: true },
    ],
  });
  assert.match(svg, /^<svg/);
  assert.ok(svg.includes("TF p=0") && svg.includes("GD p=0"), "legend labels present");
  assert.ok(svg.includes("error vs examples"));
  assert.ok(svg.includes("stroke-dasharray"), "the dashed baseline is dashed");
});

test("lineChartSvg uses the series' own colours only when every series has one", async () => {
  const x = [1, 2, 3];
  const coloured = await lineChartSvg({
    title: "t", xTitle: "x", yTitle: "y",
    series: [{ name: "TF p=1", x, y: [1, 2, 3], color: "#123456" }, { name: "GD p=1", x, y: [2, 3, 4], dashed: true, color: "#123456" }],
  });
  assert.equal((coloured.match(/#123456/gi) ?? []).length >= 2, true, "both lines take the given colour");
  const partial = await lineChartSvg({
    title: "t", xTitle: "x", yTitle: "y",
    series: [{ name: "a", x, y: [1, 2, 3], color: "#123456" }, { name: "b", x, y: [2, 3, 4] }],
  });
  assert.doesNotMatch(partial, /#123456/i);
});

test("lineChartSvg drops non-positive values on a log axis instead of failing", async () => {
  const svg = await lineChartSvg({
    title: "t", xTitle: "gamma", yTitle: "err", logX: true, logY: true,
    series: [{ name: "err", x: [1, 10, 100], y: [1e-2, 0, 1e-8] }],
  });
  assert.match(svg, /^<svg/);
});

test("barChartSvg draws one cluster per group with value labels", async () => {
  const svg = await barChartSvg({
    title: "ASR", yTitle: "ASR",
    data: [
      { group: "none", series: "initial", value: 0.95, low: 0.9, high: 0.98 },
      { group: "cac", series: "final", value: 0.02, low: 0.0, high: 0.07 },
    ],
  });
  for (const s of ["none", "cac", "0.95", "0.02"]) assert.ok(svg.includes(s), `svg contains ${s}`);
});

test("HTML helpers escape user data and build a self-contained page", () => {
  const table = htmlTable(["prompt", "asr"], [["<script>alert(1)</script>", 0.5], ["x", null]]);
  assert.ok(!table.includes("<script>"));
  assert.ok(table.includes("&lt;script&gt;") && table.includes("0.500") && table.includes("—"));
  const page = htmlPage("Report <1>", [{ title: "Tables", html: table }]);
  assert.ok(page.startsWith("<!doctype html>"));
  assert.ok(page.includes("Report &lt;1&gt;"));
  assert.ok(!/<link|<script src/.test(page), "no external assets");
  assert.equal(escapeHtml(`a"b'c&`), "a&quot;b&#39;c&amp;");
  assert.equal(markdownTable(["a", "b"], [["x|y", 1]], 1), "| a | b |\n| --- | --- |\n| x\\|y | 1.0 |");
});
