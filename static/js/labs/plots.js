// Plotly for the labs: one config (no button sends a chart anywhere), the page's language,
// log axes. The numbers drawn are the API's as they came; only log10 for colour scales.

import { lang } from "../i18n.js";

export const CONFIG = {
  displaylogo: false, responsive: true, showSendToCloud: false, showLink: false, plotlyServerURL: "",
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d", "sendChartToCloud", "sendDataToCloud"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

export const ZH_LOCALE = {
  moduleType: "locale", name: "zh-CN",
  dictionary: {
    "Download plot as a png": "下载图片（PNG）", "Download plot as a PNG": "下载图片（PNG）", "Download plot": "下载图片",
    "Zoom": "缩放", "Pan": "平移", "Reset axes": "重置坐标轴", "Autoscale": "自动缩放",
    "Toggle Spike Lines": "切换辅助线", "Show closest data on hover": "悬停显示最近的数据",
    "Compare data on hover": "悬停比较数据", "Produced with Plotly.js": "由 Plotly.js 绘制",
    "Double-click to zoom back out": "双击恢复原始大小", "Reset view": "重置视图",
    "Double-click on legend to isolate one trace": "双击图例可只显示这一条曲线",
  },
  format: { decimal: ".", thousands: "," },
};

export const COLORS = { vanilla: "#d62728", residual: "#9467bd", lstm: "#1f77b4", gru: "#2ca02c",
  full: "#111111", window: "#ff7f0e", chunked: "#8c564b", randomized: "#17becf", randomized_mean: "#7f7f7f", rtrl: "#bcbd22" };

export function layout(extra = {}) {
  return {
    margin: { l: 64, r: 16, t: 36, b: 48 }, height: 320,
    font: { family: "system-ui, 'Noto Sans CJK SC', sans-serif", size: 12 },
    legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom" }, hovermode: "closest",
    ...extra,
  };
}

export function draw(el, traces, lay) {
  return window.Plotly.react(el, traces, lay, { ...CONFIG, locale: lang() === "zh" ? "zh-CN" : "en" });
}

/** log10 of a positive number (for a log colour scale); null stays null (no colour). */
export const log10 = (v) => (v === null || !(v > 0) ? null : Math.log10(v));
