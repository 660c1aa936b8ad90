/* Per-day p90 chart of the five-stage clock (data from the #clock-chart-data JSON; plotly.js served locally). */
(function () {
  var el = document.getElementById("clock-chart");
  var src = document.getElementById("clock-chart-data");
  if (!el || !src || typeof Plotly === "undefined") { return; }
  var data = JSON.parse(src.textContent);
  var traces = data.series.map(function (s) {
    return {x: data.days, y: s.p90, name: s.label, type: "scatter", mode: "lines+markers", connectgaps: false};
  });
  Plotly.newPlot(el, traces, {margin: {t: 10, r: 10, b: 40, l: 40}, yaxis: {title: "h"}, legend: {orientation: "h"}},
                 {displaylogo: false, responsive: true});
})();
