/* Draws the workbench's line charts with uPlot (static/web/vendor/uplot, MIT). Each chart is a
   <div data-chart="ID"> beside a <script type="application/json" id="ID"> holding
   {title, x: [ISO dates], series: [{label, values, axis?: "right"}]}. */
(function () {
  "use strict";
  var COLOURS = ["#0b57a4", "#a4001d", "#0f6b2f", "#7a4b00", "#5b2c99", "#00707a", "#8a3b00",
                 "#3d3d3d", "#b0357a", "#2f6fb0", "#6b6b00"];
  var money = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0});
  function seconds(iso) { return Date.parse(iso + "T00:00:00Z") / 1000; }
  function draw(el) {
    var spec = JSON.parse(document.getElementById(el.dataset.chart).textContent);
    var right = spec.series.some(function (s) { return s.axis === "right"; });
    var series = [{}].concat(spec.series.map(function (s, i) {
      return {label: s.label, stroke: COLOURS[i % COLOURS.length], width: i === 0 ? 2 : 1.5,
              scale: s.axis === "right" ? "right" : "y",
              value: function (u, v) { return v == null ? "—" : money.format(v); }};
    }));
    var axes = [{}, {scale: "y", size: 80, values: function (u, vs) { return vs.map(function (v) { return money.format(v); }); }}];
    if (right) { axes.push({scale: "right", side: 1, size: 80, grid: {show: false},
                           values: function (u, vs) { return vs.map(function (v) { return money.format(v); }); }}); }
    var data = [spec.x.map(seconds)].concat(spec.series.map(function (s) { return s.values; }));
    var width = function () { return Math.max(el.clientWidth, 280); };
    var plot = new uPlot({width: width(), height: 260, series: series, axes: axes,
                          scales: {x: {time: true}}, cursor: {focus: {prox: 16}}}, data, el);
    window.addEventListener("resize", function () { plot.setSize({width: width(), height: 260}); });
    el.dataset.drawn = "true";
  }
  function drawAll(root) {
    if (typeof uPlot === "undefined") { return; }
    (root || document).querySelectorAll("[data-chart]:not([data-drawn])").forEach(draw);
  }
  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
})();
