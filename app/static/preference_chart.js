// The preference chart of a DPO job (app/templates/jobs/_preference_chart.html): the reward margin (how much more
// the tuned model prefers the preferred answer than the base model did, left axis, zero marked) and the preference
// accuracy (share of pairs where the preferred answer wins, right axis 0–100%), training and validation, live from
// the job's "metrics" stream. Labels are set with textContent only, so no data can become markup.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 720, H = 300, M = { left: 58, right: 52, top: 24, bottom: 42 };
  var SERIES = [
    { key: "train_reward_margin", label: "training reward margin", color: "#3b5bdb", axis: "margin" },
    { key: "valid_reward_margin", label: "validation reward margin", color: "#e8590c", axis: "margin" },
    { key: "train_reward_accuracy", label: "training preference accuracy", color: "#2b8a3e", axis: "acc" },
    { key: "valid_reward_accuracy", label: "validation preference accuracy", color: "#ae3ec9", axis: "acc" }
  ];

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The reward margin's axis: a round step (1, 2, 2.5 or 5 times a power of ten) and a start on a multiple of it,
  // spanning [lo, hi] in 4 intervals, so that its labels are round numbers on the grid lines it shares with the
  // accuracy's quarters (labels of evenly split odd ranges read 0.001, 0.002, 0.004 for 0.00125 steps).
  function marginAxis(lo, hi) {
    var raw = (hi - lo) / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var factors = [1, 2, 2.5, 5, 10, 20];
    for (var i = 0; i < factors.length; i++) {
      var step = factors[i] * mag, start = Math.floor(lo / step + 1e-9) * step;
      if (start + 4 * step >= hi - step * 1e-9) return { start: start, step: step, digits: decimals(step) };
    }
    return { start: lo, step: raw, digits: 3 };
  }

  // How many decimals show `step` (and its multiples) exactly: 2 for 0.05, 3 for 0.025.
  function decimals(step) {
    for (var d = 0; d < 8; d++) {
      var scaled = step * Math.pow(10, d);
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * scaled) return d;
    }
    return 8;
  }

  // Whole training steps at round intervals, each label at its own step: chart.js's (loaded first on the jobs page).
  var stepTicks = window.TuneboardStepTicks;

  function PreferenceChart(node) {
    this.node = node;
    this.points = [];
    this.seen = {};
    try { JSON.parse(node.getAttribute("data-points") || "[]").forEach(this.add, this); } catch (e) { /* start empty */ }
    this.draw();
  }

  PreferenceChart.prototype.add = function (p) {
    if (!p || typeof p.step !== "number") return;
    var id = p.seq !== undefined ? "s" + p.seq : "t" + p.step;
    if (this.seen[id]) return; // a reconnect can resend an event
    this.seen[id] = true;
    this.points.push(p);
    this.points.sort(function (a, b) { return a.step - b.step; });
  };

  PreferenceChart.prototype.draw = function () {
    var pts = this.points;
    var active = SERIES.filter(function (s) { return pts.some(function (p) { return typeof p[s.key] === "number"; }); });
    if (!active.length) return;
    var steps = pts.map(function (p) { return p.step; });
    var x0 = Math.min.apply(null, steps), x1 = Math.max.apply(null, steps);
    if (x1 === x0) x1 = x0 + 1;
    var margins = [0];
    pts.forEach(function (p) {
      ["train_reward_margin", "valid_reward_margin"].forEach(function (k) { if (typeof p[k] === "number") margins.push(p[k]); });
    });
    var y0 = Math.min.apply(null, margins), y1 = Math.max.apply(null, margins);
    var pad = (y1 - y0) * 0.08 || 0.05;
    y0 -= y0 < 0 ? pad : 0; y1 += pad;
    var scale = marginAxis(y0, y1);
    y0 = scale.start; y1 = scale.start + 4 * scale.step;
    var pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    function sx(v) { return M.left + (v - x0) / (x1 - x0) * pw; }
    function sy(v, axis) { return axis === "acc" ? M.top + (1 - v) * ph : M.top + (1 - (v - y0) / (y1 - y0)) * ph; }
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", class: "line-chart" });
    for (var i = 0; i <= 4; i++) {
      var t = y0 + scale.step * i, y = sy(t, "margin");
      if (Math.abs(t) < scale.step * 1e-6) t = 0; // no "-0.000" from rounding
      svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: M.left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, t.toFixed(scale.digits)));
      svg.appendChild(el("text", { x: W - M.right + 6, y: sy(i / 4, "acc") + 4, class: "tick" }, (i * 25) + "%"));
    }
    var zero = sy(0, "margin");
    svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: zero, y2: zero, class: "axis", "data-zero": "1" }));
    stepTicks(x0, x1).forEach(function (s) {
      svg.appendChild(el("text", { x: sx(s), y: H - M.bottom + 16, "text-anchor": "middle", class: "tick" }, String(s)));
    });
    svg.appendChild(el("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }));
    svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }));
    svg.appendChild(el("text", { x: M.left + pw / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, "training step"));
    svg.appendChild(el("text", { x: 14, y: M.top + ph / 2, "text-anchor": "middle", class: "axis-label",
      transform: "rotate(-90 14 " + (M.top + ph / 2) + ")" }, "reward margin"));
    svg.appendChild(el("text", { x: W - 8, y: M.top + ph / 2, "text-anchor": "middle", class: "axis-label",
      transform: "rotate(90 " + (W - 8) + " " + (M.top + ph / 2) + ")" }, "preference accuracy"));
    active.forEach(function (s, k) {
      var own = pts.filter(function (p) { return typeof p[s.key] === "number"; });
      var d = own.map(function (p, m) { return (m ? "L" : "M") + sx(p.step).toFixed(1) + " " + sy(p[s.key], s.axis).toFixed(1); }).join(" ");
      var attrs = { d: d, stroke: s.color, fill: "none", "stroke-width": "2", "data-series": s.key };
      if (s.axis === "acc") attrs["stroke-dasharray"] = "6 3";
      svg.appendChild(el("path", attrs));
      var lx = M.left + 4 + k * 165;
      svg.appendChild(el("rect", { x: lx, y: 6, width: 12, height: 3, fill: s.color }));
      svg.appendChild(el("text", { x: lx + 16, y: 11, class: "legend" }, s.label));
    });
    while (this.node.firstChild) this.node.removeChild(this.node.firstChild);
    this.node.appendChild(svg);
  };

  // The line beside the heading (the chart's description) follows the stream too, in the words the page was
  // rendered with: without this it stayed empty until a reload while the chart filled in.
  PreferenceChart.prototype.describe = function () {
    var latest = document.getElementById("preference-latest");
    var shown = this.points.filter(function (p) { return typeof p.train_reward_margin === "number"; });
    if (!latest || !shown.length) return;
    var last = shown[shown.length - 1];
    var accuracy = typeof last.train_reward_accuracy === "number" ? last.train_reward_accuracy : 0;
    latest.textContent = "reward margin " + Number(last.train_reward_margin.toFixed(3)) +
      " · preference accuracy " + Math.round(accuracy * 100) + "%";
  };

  function init() {
    var node = document.getElementById("preference-chart");
    if (!node || node.tbPreference) return;
    var chart = new PreferenceChart(node);
    node.tbPreference = chart;
    node.addEventListener("htmx:sseBeforeMessage", function (event) {
      event.preventDefault(); // the points are drawn here, not swapped in as HTML
      try { chart.add(JSON.parse(event.detail.data)); chart.draw(); chart.describe(); } catch (e) { /* ignore a malformed point */ }
    });
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:load", init);
})();
