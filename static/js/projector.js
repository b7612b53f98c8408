// The projector view (a lecture hall's screen): large type, no editor sidebar, one column of
// panels, formulas wrapped instead of cut off, plots sized to the screen. A toggle in the top
// bar and ?view=projector (kept in the URL, so a teacher's link opens in it). Printing
// (@media print in app.css) lays the page out for paper; the plots are redrawn at the
// paper's width before printing and at the screen's after.

const $ = (id) => document.getElementById(id);
const SCALE = 1.45;  // the plots' type in the projector view (the page's own is 14 → 20 px)
let onChange = () => {};
let flush = () => {};

export const projectorOn = () => document.body.classList.contains("projector");

function scaled(o) {
  if (Array.isArray(o)) return o.map(scaled);
  if (!o || typeof o !== "object") return o;
  const out = {};
  for (const [k, v] of Object.entries(o)) {
    out[k] = /font$/.test(k) && v && typeof v === "object" && !Array.isArray(v)
      ? { ...v, size: Math.round((typeof v.size === "number" ? v.size : 12) * SCALE) }
      : k === "annotations" || (typeof v === "object" && v !== null && !Array.isArray(v)) ? scaled(v) : v;
  }
  return out;
}

/** A figure for the projector: every font of the layout (axes, annotations, legends) and
 *  the traces' text (the graph's labels, the small heatmaps' numbers) larger; the data
 *  arrays themselves are not copied. */
export function projectorFigure(fig) {
  if (!projectorOn()) return fig;
  const layout = scaled({ font: { size: 12 }, ...fig.layout });
  const data = fig.data.map((t) => (t.textfont ? { ...t, textfont: { ...t.textfont, size: Math.round((t.textfont.size || 12) * 1.25) } } : t));
  return { data, layout };
}

function resizePlots() {
  if (typeof Plotly === "undefined") return;
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    if (gd.offsetParent !== null) Plotly.Plots.resize(gd);
  }
}

function setProjector(on) {
  document.body.classList.toggle("projector", on);
  $("projector").setAttribute("aria-pressed", on ? "true" : "false");
  const q = new URLSearchParams(location.search);
  if (on) q.set("view", "projector"); else q.delete("view");
  const search = q.toString();
  history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}${location.hash}`);
  // the containers changed size: the plots follow (Plotly's own resize listens to the window)
  requestAnimationFrame(() => { onChange(); resizePlots(); window.dispatchEvent(new Event("resize")); });
}

/** redraw(): draws every plot again (their fonts follow the view). */
export function initProjector(redraw = () => {}, drawAll = () => {}) {
  onChange = redraw;
  flush = drawAll;
  const on = new URLSearchParams(location.search).get("view") === "projector";
  $("projector").addEventListener("click", () => setProjector(!document.body.classList.contains("projector")));
  if (on) setProjector(true);
  const print = window.matchMedia("print");
  print.addEventListener("change", (e) => (e.matches ? forPaper() : forScreen()));
  window.addEventListener("beforeprint", forPaper);
  window.addEventListener("afterprint", forScreen);
}

// the sizes @media print gives the plots (app.css: 17 cm wide, 6 cm the graph, 8.5 cm the others)
const CM = 96 / 2.54;
const PAPER = { width: Math.floor(17 * CM), graph: Math.floor(6 * CM), plot: Math.floor(8.5 * CM) };

/** Before printing: every plot drawn at the paper's size now (Plotly's own resize waits for a
 *  timer, too late for the print's snapshot; a relayout draws at once). */
function forPaper() {
  if (typeof Plotly === "undefined") return;
  flush();  // the plots not drawn yet (out of view: main.js draws them when seen)
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    if (gd.closest(".hidden-by-link")) continue;
    Plotly.relayout(gd, { width: PAPER.width, height: gd.id === "graph" ? PAPER.graph : PAPER.plot });
  }
}

function forScreen() {
  if (typeof Plotly === "undefined") return;
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    if (gd.closest(".hidden-by-link")) continue;
    Plotly.relayout(gd, { width: null, height: null, autosize: true });
  }
}
