// The projector view (a lecture hall's screen): large type, no editor sidebar, one column of
// panels, formulas wrapped instead of cut off, plots sized to the screen. A toggle in the top
// bar and ?view=projector (kept in the URL, so a teacher's link opens in it). Printing
// (@media print in app.css) lays the page out for paper; the plots are redrawn at the
// paper's width before printing and at the screen's after.

const $ = (id) => document.getElementById(id);

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
  requestAnimationFrame(() => { resizePlots(); window.dispatchEvent(new Event("resize")); });
}

export function initProjector() {
  const on = new URLSearchParams(location.search).get("view") === "projector";
  $("projector").addEventListener("click", () => setProjector(!document.body.classList.contains("projector")));
  if (on) setProjector(true);
  const print = window.matchMedia("print");
  print.addEventListener("change", resizePlots);
  window.addEventListener("beforeprint", resizePlots);
  window.addEventListener("afterprint", resizePlots);
}
