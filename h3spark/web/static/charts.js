// h3spark web: line charts on a plain canvas, one line per actor.
(function (root) {
  "use strict";
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];

  class LineChart {
    constructor(canvas, options) {
      this.canvas = canvas;
      this.title = options.title;
      this.fixed = options.range || null;   // [min, max] or null: fitted to the data
      this.series = new Map();
      this.colors = options.colors || new Map();
      this.pending = false;
    }

    color(name) {
      if (!this.colors.has(name)) this.colors.set(name, PALETTE[this.colors.size % PALETTE.length]);
      return this.colors.get(name);
    }

    add(name, x, y) {
      if (typeof y !== "number" || !isFinite(y)) return;
      if (!this.series.has(name)) this.series.set(name, []);
      const points = this.series.get(name);
      points.push([x, y]);
      if (points.length > 4000) points.splice(0, points.length - 4000);
      this.schedule();
    }

    schedule() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    }

    bounds() {
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      this.series.forEach((points) => points.forEach(([x, y]) => {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }));
      if (this.fixed) [y0, y1] = this.fixed;
      if (!(x1 > x0)) x1 = x0 + 1;
      if (!(y1 > y0)) y1 = y0 + 1;
      return { x0, x1, y0, y1 };
    }

    draw() {
      const ctx = this.canvas.getContext("2d"), W = this.canvas.width, H = this.canvas.height;
      const left = 44, right = 8, top = 22, bottom = 20;
      ctx.clearRect(0, 0, W, H);
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "#333";
      ctx.fillText(this.title, left, 13);
      if (!this.series.size) { ctx.fillText("waiting for reports", left, H / 2); return; }
      const b = this.bounds();
      const sx = (x) => left + (x - b.x0) / (b.x1 - b.x0) * (W - left - right);
      const sy = (y) => H - bottom - (y - b.y0) / (b.y1 - b.y0) * (H - top - bottom);
      ctx.strokeStyle = "#bbb";
      ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, H - bottom); ctx.lineTo(W - right, H - bottom); ctx.stroke();
      ctx.fillText(b.y1.toPrecision(3), 2, top + 4);
      ctx.fillText(b.y0.toPrecision(3), 2, H - bottom);
      ctx.fillText(b.x0.toFixed(0) + " s", left, H - 5);
      ctx.fillText(b.x1.toFixed(0) + " s", W - right - 40, H - 5);
      let legend = left + 120;
      this.series.forEach((points, name) => {
        ctx.strokeStyle = this.color(name);
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        points.forEach(([x, y], i) => (i ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
        ctx.stroke();
        ctx.fillStyle = this.color(name);
        ctx.fillText(name, legend, 13);
        legend += ctx.measureText(name).width + 12;
      });
    }
  }

  root.H3Charts = { LineChart: LineChart };
})(window);
