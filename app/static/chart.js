// A small SVG line chart for loss curves: axes with units, a legend, exponential smoothing.
// Every label is set with textContent (never innerHTML), so no data can become markup.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 720, H = 300, M = { left: 58, right: 16, top: 14, bottom: 42 };
  var SERIES = [
    { key: "train_loss", label: "training loss", color: "#3b5bdb", axis: "loss" },
    { key: "valid_loss", label: "validation loss", color: "#e8590c", axis: "loss" },
    { key: "train_mean_token_accuracy", label: "training token accuracy", color: "#2b8a3e", axis: "acc" },
    { key: "valid_mean_token_accuracy", label: "validation token accuracy", color: "#ae3ec9", axis: "acc" }
  ];

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function smooth(values, weight) {
    var out = [], last = null;
    values.forEach(function (v) {
      last = last === null ? v : last * weight + (1 - weight) * v;
      out.push(last);
    });
    return out;
  }

  function ticks(min, max, n) {
    var step = (max - min) / n || 1, out = [];
    for (var i = 0; i <= n; i++) out.push(min + step * i);
    return out;
  }

  function fmt(v) {
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  }

  function Chart(container) {
    this.container = container;
    this.points = [];
    this.seen = {};
    try { JSON.parse(container.getAttribute("data-points") || "[]").forEach(this.add, this); } catch (e) { /* bad data: start empty */ }
    this.smoothing = document.getElementById("chart-smoothing");
    this.accuracy = document.getElementById("chart-accuracy");
    var self = this;
    [this.smoothing, this.accuracy].forEach(function (c) { if (c) c.addEventListener("input", function () { self.draw(); }); });
    if (this.accuracy) this.accuracy.addEventListener("change", function () { self.draw(); });
    this.draw();
  }

  Chart.prototype.add = function (p) {
    if (!p || typeof p.step !== "number") return;
    var id = p.seq !== undefined ? "s" + p.seq : "t" + p.step;
    if (this.seen[id]) return; // a reconnect can resend an event; draw it once
    this.seen[id] = true;
    this.points.push(p);
    this.points.sort(function (a, b) { return a.step - b.step; });
  };

  Chart.prototype.draw = function () {
    var weight = this.smoothing ? parseFloat(this.smoothing.value) || 0 : 0;
    var showAcc = this.accuracy && this.accuracy.checked;
    var pts = this.points;
    var active = SERIES.filter(function (s) {
      return (s.axis === "loss" || showAcc) && pts.some(function (p) { return typeof p[s.key] === "number"; });
    });
    if (!active.length) return;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", class: "line-chart" });
    var steps = pts.map(function (p) { return p.step; });
    var x0 = Math.min.apply(null, steps), x1 = Math.max.apply(null, steps);
    if (x1 === x0) x1 = x0 + 1;
    var lossVals = [];
    active.forEach(function (s) { if (s.axis === "loss") pts.forEach(function (p) { if (typeof p[s.key] === "number") lossVals.push(p[s.key]); }); });
    var y0 = 0, y1 = lossVals.length ? Math.max.apply(null, lossVals) * 1.05 : 1;
    if (y1 <= y0) y1 = y0 + 1;
    var pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    function sx(v) { return M.left + (v - x0) / (x1 - x0) * pw; }
    function sy(v, axis) { return axis === "acc" ? M.top + (1 - v) * ph : M.top + (1 - (v - y0) / (y1 - y0)) * ph; }

    ticks(y0, y1, 4).forEach(function (t) {
      var y = sy(t, "loss");
      svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: M.left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, fmt(t)));
    });
    ticks(x0, x1, Math.min(6, x1 - x0)).forEach(function (t) {
      svg.appendChild(el("text", { x: sx(t), y: H - M.bottom + 16, "text-anchor": "middle", class: "tick" }, String(Math.round(t))));
    });
    svg.appendChild(el("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }));
    svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }));
    svg.appendChild(el("text", { x: M.left + pw / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, "training step"));
    svg.appendChild(el("text", { x: 14, y: M.top + ph / 2, "text-anchor": "middle", class: "axis-label",
      transform: "rotate(-90 14 " + (M.top + ph / 2) + ")" }, "loss (nats per token)" + (showAcc ? " · accuracy 0–1" : "")));

    active.forEach(function (s, i) {
      var own = pts.filter(function (p) { return typeof p[s.key] === "number"; });
      var ys = smooth(own.map(function (p) { return p[s.key]; }), s.key.indexOf("valid") === 0 ? 0 : weight);
      var d = own.map(function (p, j) { return (j ? "L" : "M") + sx(p.step).toFixed(1) + " " + sy(ys[j], s.axis).toFixed(1); }).join(" ");
      if (weight > 0 && s.key.indexOf("valid") !== 0) {
        var raw = own.map(function (p, j) { return (j ? "L" : "M") + sx(p.step).toFixed(1) + " " + sy(p[s.key], s.axis).toFixed(1); }).join(" ");
        svg.appendChild(el("path", { d: raw, stroke: s.color, fill: "none", "stroke-opacity": "0.25" }));
      }
      svg.appendChild(el("path", { d: d, stroke: s.color, fill: "none", "stroke-width": "2", "data-series": s.key }));
      var lx = M.left + 10 + i * 170;
      svg.appendChild(el("rect", { x: lx, y: M.top + 2, width: 12, height: 3, fill: s.color }));
      svg.appendChild(el("text", { x: lx + 16, y: M.top + 7, class: "legend" }, s.label));
    });
    while (this.container.firstChild) this.container.removeChild(this.container.firstChild);
    this.container.appendChild(svg);
  };

  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("loss-chart");
    if (!node) return;
    var chart = new Chart(node);
    // The htmx SSE extension hands us each "metrics" message; we draw it ourselves instead of swapping HTML.
    node.addEventListener("htmx:sseBeforeMessage", function (event) {
      event.preventDefault();
      try { chart.add(JSON.parse(event.detail.data)); chart.draw(); } catch (e) { /* ignore a malformed point */ }
    });
  });
})();
