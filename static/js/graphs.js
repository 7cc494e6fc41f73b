// Draws every <figure data-graph> of the page with uPlot from the JSON of reports.graphs'
// graph_data; the range buttons switch all of them. No inline script (the CSP forbids it).
(function () {
  "use strict";
  var COLOURS = ["#1f6fb2", "#d9822b", "#2e9e4f", "#b23a48", "#7a4fb2", "#4f9eb2"];

  function number(value) {
    if (value === null || value === undefined) return "–";
    var abs = Math.abs(value);
    if (abs >= 1e9) return (value / 1e9).toFixed(1) + "G";
    if (abs >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (abs >= 1e3) return (value / 1e3).toFixed(1) + "k";
    return abs >= 10 ? value.toFixed(0) : value.toFixed(2);
  }

  function draw(figure, data) {
    var plotArea = figure.querySelector(".graph-plot");
    figure.querySelector("figcaption").textContent =
      data.title + (data.unit ? " (" + data.unit + ")" : "");
    var width = Math.max(300, Math.min(plotArea.clientWidth || 800, 1000));
    var series = [{}];
    var columns = [data.x];
    data.series.forEach(function (line, i) {
      series.push({label: line.label, stroke: COLOURS[i % COLOURS.length], width: 1.5,
                   value: function (u, v) { return number(v); }});
      columns.push(line.values);
    });
    if (figure.plot) figure.plot.destroy();
    plotArea.textContent = "";
    figure.dataset.points = String(data.x.length);
    figure.dataset.values = String(data.series.reduce(function (n, line) {
      return n + line.values.filter(function (v) { return v !== null; }).length;
    }, 0));
    if (!data.x.length) {
      plotArea.textContent = "Nothing sampled yet.";
      return;
    }
    figure.plot = new uPlot({
      width: width, height: 220, series: series,
      axes: [{}, {values: function (u, ticks) { return ticks.map(number); }, size: 60}],
    }, columns, plotArea);
    figure.dataset.drawn = data.range;
  }

  function load(container, figure, range) {
    var url = container.dataset.url + "?graph=" + encodeURIComponent(figure.dataset.graph) +
      "&range=" + encodeURIComponent(range);
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      // a slower answer for the range shown before a click must not draw over the new one
      .then(function (data) {
        if (data && data.range === container.dataset.range) draw(figure, data);
      });
  }

  function start(container) {
    var range = container.dataset.range = "hour";
    var figures = container.querySelectorAll("figure[data-graph]");
    function refresh() {
      figures.forEach(function (figure) { load(container, figure, range); });
    }
    container.querySelectorAll("button[data-range]").forEach(function (button) {
      button.addEventListener("click", function () {
        range = container.dataset.range = button.dataset.range;
        container.querySelectorAll("button[data-range]").forEach(function (other) {
          other.setAttribute("aria-pressed", other === button ? "true" : "false");
        });
        refresh();
      });
    });
    refresh();
    setInterval(refresh, 15000);
  }

  function init() { document.querySelectorAll(".graphs[data-url]").forEach(start); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
