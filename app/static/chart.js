// A small SVG line chart for loss curves (axes with units, a legend, exponential smoothing) and for the eval pass
// rates of a job's checkpoints (0–100%, the best checkpoint marked on both charts, the same steps across).
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
  var RATE_COLORS = ["#2b8a3e", "#3b5bdb", "#e8590c", "#ae3ec9", "#0c8599", "#c2255c"];

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

  // Whole training steps, 1, 2 or 5 times a power of ten apart, at most about 6 labels: each at its own step (an
  // evenly split range put rounded labels at fractional positions: 1 2 4 5 6 8 9). The preference chart uses it too.
  function stepTicks(x0, x1) {
    var raw = Math.max(1, (x1 - x0) / 6), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var every = [1, 2, 5, 10].map(function (f) { return f * mag; }).filter(function (e) { return e >= raw; })[0];
    var out = [];
    for (var s = Math.ceil(x0); s <= x1; s += every) out.push(s);
    return out;
  }
  window.TuneboardStepTicks = stepTicks;

  function fmt(v) {
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  }

  function pct(v) { return Math.round(v * 100) + "%"; }

  // options: series (default: the loss curves), rate (a 0–1 pass-rate chart without smoothing), xRange (a function
  // giving [first, last] step to share with another chart), marker (a step to mark as the best checkpoint).
  function Chart(container, options) {
    options = options || {};
    this.container = container;
    this.series = options.series || SERIES;
    this.rate = !!options.rate;
    this.xRange = options.xRange || null;
    this.marker = options.marker === undefined ? null : options.marker;
    // The loss axis's words (a DPO job's loss is per pair, not per token) and their hover text, from the page.
    this.lossAxis = container.getAttribute("data-loss-axis") || "loss (nats per token)";
    this.lossHelp = container.getAttribute("data-loss-help");
    this.spikes = []; // loss spikes [{step, loss, title}] from the job's example-loss card (drawSpikes below)
    this.points = [];
    this.seen = {};
    try { JSON.parse(container.getAttribute("data-points") || "[]").forEach(this.add, this); } catch (e) { /* bad data: start empty */ }
    var self = this;
    if (!this.rate) {
      this.smoothing = document.getElementById("chart-smoothing");
      this.accuracy = document.getElementById("chart-accuracy");
      [this.smoothing, this.accuracy].forEach(function (c) { if (c) c.addEventListener("input", function () { self.draw(); }); });
      if (this.accuracy) this.accuracy.addEventListener("change", function () { self.draw(); });
    }
    this.draw();
  }

  Chart.prototype.steps = function () {
    var steps = this.points.map(function (p) { return p.step; });
    return steps.length ? [Math.min.apply(null, steps), Math.max.apply(null, steps)] : null;
  };

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
    var showAcc = this.rate || (this.accuracy && this.accuracy.checked);
    var pts = this.points, rate = this.rate;
    var active = this.series.filter(function (s) {
      return (s.axis === "loss" || showAcc) && pts.some(function (p) { return typeof p[s.key] === "number"; });
    });
    if (!active.length) return;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", class: "line-chart" });
    var own = this.steps(), shared = this.xRange ? this.xRange() : null;
    var x0 = own[0], x1 = own[1];
    if (shared) { x0 = Math.min(x0, shared[0]); x1 = Math.max(x1, shared[1]); }
    if (rate && !shared) x0 = Math.min(x0, 0); // a lone checkpoint still sits where it belongs in training
    if (x1 === x0) x1 = x0 + 1;
    var lossVals = [];
    active.forEach(function (s) { if (s.axis === "loss") pts.forEach(function (p) { if (typeof p[s.key] === "number") lossVals.push(p[s.key]); }); });
    var y0 = 0, y1 = lossVals.length ? Math.max.apply(null, lossVals) * 1.05 : 1;
    if (y1 <= y0) y1 = y0 + 1;
    var pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    function sx(v) { return M.left + (v - x0) / (x1 - x0) * pw; }
    function sy(v, axis) { return axis === "acc" ? M.top + (1 - v) * ph : M.top + (1 - (v - y0) / (y1 - y0)) * ph; }

    ticks(rate ? 0 : y0, rate ? 1 : y1, 4).forEach(function (t) {
      var y = sy(t, rate ? "acc" : "loss");
      svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: M.left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, rate ? pct(t) : fmt(t)));
    });
    stepTicks(x0, x1).forEach(function (t) {
      svg.appendChild(el("text", { x: sx(t), y: H - M.bottom + 16, "text-anchor": "middle", class: "tick", "data-step": t }, String(t)));
    });
    svg.appendChild(el("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }));
    svg.appendChild(el("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }));
    svg.appendChild(el("text", { x: M.left + pw / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, "training step"));
    var yLabel = el("text", { x: 14, y: M.top + ph / 2, "text-anchor": "middle", class: "axis-label",
      transform: "rotate(-90 14 " + (M.top + ph / 2) + ")", "data-axis": "y" },
      rate ? "eval pass rate" : this.lossAxis + (showAcc ? " · accuracy 0–1" : ""));
    if (!rate && this.lossHelp) yLabel.appendChild(el("title", {}, this.lossHelp));
    svg.appendChild(yLabel);
    if (typeof this.marker === "number" && this.marker >= x0 && this.marker <= x1) {
      var mx = sx(this.marker);
      svg.appendChild(el("line", { x1: mx, x2: mx, y1: M.top, y2: H - M.bottom, class: "marker", "data-best-step": this.marker }));
      var right = mx > W - M.right - 110; // near the right edge: the label goes on the line's left
      svg.appendChild(el("text", { x: right ? mx - 4 : mx + 4, y: H - M.bottom - 6, "text-anchor": right ? "end" : "start",
        class: "marker-label" }, "best checkpoint"));
    }

    active.forEach(function (s, i) {
      var own = pts.filter(function (p) { return typeof p[s.key] === "number"; });
      var w = rate || s.key.indexOf("valid") === 0 ? 0 : weight;
      var ys = smooth(own.map(function (p) { return p[s.key]; }), w);
      var d = own.map(function (p, j) { return (j ? "L" : "M") + sx(p.step).toFixed(1) + " " + sy(ys[j], s.axis).toFixed(1); }).join(" ");
      if (w > 0) {
        var raw = own.map(function (p, j) { return (j ? "L" : "M") + sx(p.step).toFixed(1) + " " + sy(p[s.key], s.axis).toFixed(1); }).join(" ");
        svg.appendChild(el("path", { d: raw, stroke: s.color, fill: "none", "stroke-opacity": "0.25" }));
      }
      svg.appendChild(el("path", { d: d, stroke: s.color, fill: "none", "stroke-width": "2", "data-series": s.key }));
      if (rate) { // few points: show each checkpoint's score as a dot with its value on hover
        own.forEach(function (p) {
          var dot = el("circle", { cx: sx(p.step).toFixed(1), cy: sy(p[s.key], "acc").toFixed(1), r: 3.5, fill: s.color });
          dot.appendChild(el("title", {}, s.label + " at step " + p.step + ": " + pct(p[s.key])));
          svg.appendChild(dot);
        });
      }
      var lx = M.left + 10 + i * 170;
      svg.appendChild(el("rect", { x: lx, y: M.top + 2, width: 12, height: 3, fill: s.color }));
      svg.appendChild(el("text", { x: lx + 16, y: M.top + 7, class: "legend" }, s.label));
    });
    if (!rate) this.spikes.forEach(function (s) { // ▲ above each spike's point; its batch is listed under the chart
      if (typeof s.step !== "number" || typeof s.loss !== "number" || s.step < x0 || s.step > x1) return;
      var cx = sx(s.step), cy = sy(s.loss, "loss") - 4;
      var mark = el("path", { d: "M" + cx.toFixed(1) + " " + (cy - 9).toFixed(1) + " l-5.5 9 h11 z", class: "spike",
        "data-spike-step": s.step });
      mark.appendChild(el("title", {}, s.title || "Loss spike at step " + s.step));
      mark.addEventListener("click", function () {
        var item = document.getElementById("spike-" + s.step);
        if (item) item.scrollIntoView({ block: "center" });
      });
      svg.appendChild(mark);
    });
    while (this.container.firstChild) this.container.removeChild(this.container.firstChild);
    this.container.appendChild(svg);
  };

  function bestStep(node) {
    var value = parseInt(node.getAttribute("data-best-step") || "", 10);
    return isNaN(value) ? null : value;
  }

  // The eval panel (app/templates/evals/_job_panel.html) is loaded and refreshed by htmx: draw its chart each
  // time, on the loss chart's steps, and mark its best checkpoint on the loss chart too.
  function drawEvalPanel(root) {
    var panel = root.id === "job-evals" ? root : root.querySelector && root.querySelector("#job-evals");
    if (!panel) return;
    var lossNode = document.getElementById("loss-chart"), loss = lossNode && lossNode.tbChart;
    var best = bestStep(panel);
    if (loss && loss.marker !== best) { loss.marker = best; loss.draw(); }
    var node = panel.querySelector("#eval-chart");
    if (!node) return;
    var series = [];
    try { series = JSON.parse(node.getAttribute("data-series") || "[]"); } catch (e) { return; }
    series = series.map(function (s, i) {
      return { key: s.key, label: s.label, color: RATE_COLORS[i % RATE_COLORS.length], axis: "acc" };
    });
    new Chart(node, { series: series, rate: true, marker: best, xRange: loss ? function () { return loss.steps(); } : null });
  }

  document.addEventListener("htmx:load", function (event) { drawEvalPanel(event.detail.elt); });

  // The example-loss card (app/templates/jobs/_example_losses.html) carries the loss spikes: mark them on the chart.
  function drawSpikes(root) {
    var card = root.id === "job-example-losses" ? root : root.querySelector && root.querySelector("#job-example-losses");
    var lossNode = document.getElementById("loss-chart"), loss = lossNode && lossNode.tbChart;
    if (!card || !loss || !card.hasAttribute("data-spikes")) return;
    try { loss.spikes = JSON.parse(card.getAttribute("data-spikes")) || []; } catch (e) { loss.spikes = []; }
    loss.draw();
  }

  document.addEventListener("htmx:load", function (event) { drawSpikes(event.detail.elt); });

  // The loss chart comes with the page, or with a job the jobs list swaps into its detail pane (htmx:load).
  function initLossChart() {
    var node = document.getElementById("loss-chart");
    if (!node || node.tbChart) return;
    var chart = new Chart(node);
    node.tbChart = chart;
    // The htmx SSE extension hands us each "metrics" message; we draw it ourselves instead of swapping HTML.
    node.addEventListener("htmx:sseBeforeMessage", function (event) {
      event.preventDefault();
      try { chart.add(JSON.parse(event.detail.data)); chart.draw(); } catch (e) { /* ignore a malformed point */ }
    });
  }

  document.addEventListener("DOMContentLoaded", initLossChart);
  document.addEventListener("htmx:load", initLossChart);
})();
