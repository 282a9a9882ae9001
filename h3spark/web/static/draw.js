// h3spark web: a canvas to draw a digit on, read back as an 8x8 image of 0..16 (as scikit-learn's digits:
// the ink's bounding box, squared and centred, averaged into 8x8 cells).
(function (root) {
  "use strict";

  class DrawPad {
    constructor(canvas, onDone) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d", { willReadFrequently: true });
      this.onDone = onDone;
      this.drawing = false;
      this.clear();
      canvas.addEventListener("pointerdown", (e) => { this.drawing = true; this.last = this.at(e); this.dot(this.last); });
      canvas.addEventListener("pointermove", (e) => { if (this.drawing) { const p = this.at(e); this.line(this.last, p); this.last = p; } });
      const end = () => { if (this.drawing) { this.drawing = false; if (this.onDone) this.onDone(this.pixels()); } };
      canvas.addEventListener("pointerup", end);
      canvas.addEventListener("pointerleave", end);
    }

    at(event) {
      const rect = this.canvas.getBoundingClientRect();
      return [(event.clientX - rect.left) * this.canvas.width / rect.width,
        (event.clientY - rect.top) * this.canvas.height / rect.height];
    }

    dot(p) { this.line(p, [p[0] + 0.1, p[1] + 0.1]); }

    line(a, b) {
      const ctx = this.ctx;
      ctx.strokeStyle = "#fff"; ctx.lineWidth = this.canvas.width / 11; ctx.lineCap = "round";
      ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
    }

    clear() { this.ctx.fillStyle = "#000"; this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height); }

    // 64 values 0..16, row by row
    pixels() {
      const W = this.canvas.width, H = this.canvas.height;
      const data = this.ctx.getImageData(0, 0, W, H).data;
      let x0 = W, y0 = H, x1 = -1, y1 = -1;
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        if (data[(y * W + x) * 4] > 32) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
      }
      const out = new Array(64).fill(0);
      if (x1 < 0) return out;
      const side = Math.max(x1 - x0, y1 - y0) * 1.15 + 1;
      const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, cell = side / 8;
      for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) {
        let sum = 0, n = 0;
        for (let y = cy - side / 2 + r * cell; y < cy - side / 2 + (r + 1) * cell; y += 1) {
          for (let x = cx - side / 2 + c * cell; x < cx - side / 2 + (c + 1) * cell; x += 1) {
            const xi = Math.floor(x), yi = Math.floor(y);
            if (xi >= 0 && yi >= 0 && xi < W && yi < H) sum += data[(yi * W + xi) * 4];
            n += 1;
          }
        }
        out[r * 8 + c] = Math.round(16 * sum / Math.max(n, 1) / 255);
      }
      return out;
    }
  }

  root.H3Draw = { DrawPad: DrawPad };
})(window);
