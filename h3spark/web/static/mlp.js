// h3spark browser worker: a dense network from an h3spark model spec, in plain typed arrays.
// The math is NumpyModel's (h3spark/train/engines/numpy_model.py): dense layers z = x W^T + b with
// relu/sigmoid/tanh/softrelu/linear, dropout, a mean softmax cross-entropy, in float64; weights
// arrive and gradients leave as float32 in the layout the bridge sends (LAYER.PARAM, flattened).
(function (root) {
  "use strict";

  function activate(fn, z, out) {
    const n = z.length;
    if (fn === "relu") { for (let i = 0; i < n; i++) out[i] = z[i] > 0 ? z[i] : 0; }
    else if (fn === "sigmoid") { for (let i = 0; i < n; i++) out[i] = 0.5 * (1 + Math.tanh(0.5 * z[i])); }
    else if (fn === "tanh") { for (let i = 0; i < n; i++) out[i] = Math.tanh(z[i]); }
    else if (fn === "softrelu") {
      for (let i = 0; i < n; i++) { const v = z[i]; out[i] = Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))); }
    } else { out.set(z); }
  }

  // d loss / d z from the activation's input z, its output out and d loss / d out (up), into dz
  function activationGradient(fn, z, out, up, dz) {
    const n = z.length;
    if (fn === "relu") { for (let i = 0; i < n; i++) dz[i] = z[i] > 0 ? up[i] : 0; }
    else if (fn === "sigmoid") { for (let i = 0; i < n; i++) dz[i] = up[i] * out[i] * (1 - out[i]); }
    else if (fn === "tanh") { for (let i = 0; i < n; i++) dz[i] = up[i] * (1 - out[i] * out[i]); }
    else if (fn === "softrelu") { for (let i = 0; i < n; i++) dz[i] = up[i] * 0.5 * (1 + Math.tanh(0.5 * z[i])); }
    else { dz.set(up); }
  }

  function mulberry32(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  class MLP {
    // spec: {input_shape, layers: [{type, name, units, activation, use_bias, rate, function}]};
    // layout: [{name, shape, offset}] as the bridge's welcome message gives it
    constructor(spec, layout, seed) {
      const offsets = {};
      let size = 0;
      for (const entry of layout) {
        offsets[entry.name] = entry.offset;
        size = Math.max(size, entry.offset + entry.shape.reduce((a, b) => a * b, 1));
      }
      this.size = size;
      this.features = spec.input_shape.reduce((a, b) => a * b, 1);
      this.layers = [];
      let width = this.features;
      for (const layer of spec.layers) {
        if (layer.type === "dense") {
          const bias = layer.use_bias !== false;
          this.layers.push({ kind: "dense", inputs: width, units: layer.units, fn: layer.activation || "linear",
            w: offsets[layer.name + ".weight"], b: bias ? offsets[layer.name + ".bias"] : -1 });
          width = layer.units;
        } else if (layer.type === "dropout") {
          this.layers.push({ kind: "dropout", rate: layer.rate, units: width });
        } else if (layer.type === "activation") {
          this.layers.push({ kind: "activation", fn: layer.function, units: width });
        } else if (layer.type !== "flatten") {
          throw new Error("the browser worker runs dense, flatten, dropout and activation layers, not " + layer.type);
        }
      }
      this.classes = width;
      this.params = new Float64Array(size);
      this.random = mulberry32(seed || 1);
      this.buffers = new Map();
    }

    setWeights(values) { this.params.set(values); }   // Float32Array -> float64

    _buffers(rows) {
      let found = this.buffers.get(rows);
      if (!found) {
        found = this.layers.map((layer) => ({
          z: new Float64Array(rows * layer.units), out: new Float64Array(rows * layer.units),
          keep: layer.kind === "dropout" ? new Float64Array(rows * layer.units) : null,
          dz: new Float64Array(rows * layer.units), up: new Float64Array(rows * (layer.inputs || layer.units)) }));
        this.buffers.set(rows, found);
      }
      return found;
    }

    // the logits of x (rows x features, float64), keeping what backward needs
    forward(x, rows, training) {
      const buffers = this._buffers(rows);
      const p = this.params;
      let input = x;
      this.layers.forEach((layer, index) => {
        const buf = buffers[index];
        if (layer.kind === "dense") {
          const I = layer.inputs, U = layer.units, z = buf.z;
          for (let r = 0; r < rows; r++) {
            const xo = r * I;
            for (let u = 0; u < U; u++) {
              const wo = layer.w + u * I;
              let sum = layer.b >= 0 ? p[layer.b + u] : 0;
              for (let i = 0; i < I; i++) sum += input[xo + i] * p[wo + i];
              z[r * U + u] = sum;
            }
          }
          activate(layer.fn, z, buf.out);
        } else if (layer.kind === "dropout") {
          buf.z.set(input.subarray(0, rows * layer.units));
          if (training && layer.rate > 0) {
            const scale = 1 / (1 - layer.rate);
            for (let i = 0; i < buf.z.length; i++) {
              buf.keep[i] = this.random() >= layer.rate ? scale : 0;
              buf.out[i] = buf.z[i] * buf.keep[i];
            }
          } else {
            buf.keep.fill(1);
            buf.out.set(buf.z);
          }
        } else {
          buf.z.set(input.subarray(0, rows * layer.units));
          activate(layer.fn, buf.z, buf.out);
        }
        buf.input = input;
        input = buf.out;
      });
      return input;
    }

    // adds d(mean loss)/d(weights) of the batch into grad (Float64Array of this.size); returns the mean loss
    gradients(x, labels, rows, grad) {
      const logits = this.forward(x, rows, true);
      const buffers = this.buffers.get(rows);
      const C = this.classes;
      const up = new Float64Array(rows * C);
      let loss = 0;
      for (let r = 0; r < rows; r++) {
        let max = -Infinity;
        for (let c = 0; c < C; c++) max = Math.max(max, logits[r * C + c]);
        let sum = 0;
        for (let c = 0; c < C; c++) sum += Math.exp(logits[r * C + c] - max);
        const lse = Math.log(sum) + max;
        loss += lse - logits[r * C + labels[r]];
        for (let c = 0; c < C; c++) up[r * C + c] = Math.exp(logits[r * C + c] - lse) / rows;
        up[r * C + labels[r]] -= 1 / rows;
      }
      let upstream = up;
      for (let index = this.layers.length - 1; index >= 0; index--) {
        upstream = this._backward(this.layers[index], buffers[index], upstream, rows, grad, index > 0);
      }
      return loss / rows;
    }

    _backward(layer, buf, upstream, rows, grad, needInput) {
      if (layer.kind === "dropout") {
        for (let i = 0; i < buf.up.length; i++) buf.up[i] = upstream[i] * buf.keep[i];
        return buf.up;
      }
      activationGradient(layer.fn, buf.z, buf.out, upstream, buf.dz);
      if (layer.kind === "activation") return buf.dz;
      const I = layer.inputs, U = layer.units, dz = buf.dz, x = buf.input, p = this.params;
      for (let u = 0; u < U; u++) {
        const wo = layer.w + u * I;
        let db = 0;
        for (let r = 0; r < rows; r++) {
          const d = dz[r * U + u];
          if (d === 0) continue;
          db += d;
          const xo = r * I;
          for (let i = 0; i < I; i++) grad[wo + i] += d * x[xo + i];
        }
        if (layer.b >= 0) grad[layer.b + u] += db;
      }
      if (!needInput) return null;
      const dx = buf.up;
      dx.fill(0);
      for (let r = 0; r < rows; r++) {
        const xo = r * I;
        for (let u = 0; u < U; u++) {
          const d = dz[r * U + u];
          if (d === 0) continue;
          const wo = layer.w + u * I;
          for (let i = 0; i < I; i++) dx[xo + i] += d * p[wo + i];
        }
      }
      return dx;
    }

    // softmax probabilities (rows x classes) in inference mode
    predict(x, rows) {
      const logits = this.forward(x, rows, false);
      const C = this.classes, out = new Float64Array(rows * C);
      for (let r = 0; r < rows; r++) {
        let max = -Infinity, sum = 0;
        for (let c = 0; c < C; c++) max = Math.max(max, logits[r * C + c]);
        for (let c = 0; c < C; c++) { out[r * C + c] = Math.exp(logits[r * C + c] - max); sum += out[r * C + c]; }
        for (let c = 0; c < C; c++) out[r * C + c] /= sum;
      }
      return out;
    }

    // one plain SGD step (no network): what the benchmark times against NumpyModel.train_step
    sgdStep(x, labels, rows, lr, grad) {
      grad.fill(0);
      const loss = this.gradients(x, labels, rows, grad);
      const p = this.params;
      for (let i = 0; i < p.length; i++) p[i] -= lr * grad[i];
      return loss;
    }
  }

  // the bridge's binary frames (docs/web.md): a 16-byte header, then float32 values
  const MAGIC = [0x48, 0x33, 0x57, 0x42]; // "H3WB"
  const KINDS = { weights: 1, gradients: 2, data: 3, examples: 4 };

  function encodeFrame(kind, values, version, steps, rows, labels) {
    const n = values.length, extra = labels ? labels.length : 0;
    const buffer = new ArrayBuffer(16 + 4 * n + 4 * extra);
    const head = new DataView(buffer);
    MAGIC.forEach((byte, i) => head.setUint8(i, byte));
    head.setUint8(4, kind); head.setUint8(5, 1);
    head.setUint16(6, steps || 0, true); head.setUint32(8, version || 0, true); head.setUint32(12, rows || 0, true);
    new Float32Array(buffer, 16, n).set(values);
    if (labels) new Int32Array(buffer, 16 + 4 * n, extra).set(labels);
    return buffer;
  }

  function decodeFrame(buffer, features) {
    const head = new DataView(buffer);
    for (let i = 0; i < 4; i++) if (head.getUint8(i) !== MAGIC[i]) throw new Error("not an h3spark frame");
    const frame = { kind: head.getUint8(4), steps: head.getUint16(6, true), version: head.getUint32(8, true),
      rows: head.getUint32(12, true) };
    if (frame.kind === KINDS.data) {
      frame.values = new Float32Array(buffer, 16, frame.rows * features);
      frame.labels = new Int32Array(buffer, 16 + 4 * frame.rows * features, frame.rows);
    } else {
      frame.values = new Float32Array(buffer, 16, (buffer.byteLength - 16) / 4);
    }
    return frame;
  }

  root.H3MLP = { MLP, encodeFrame, decodeFrame, KINDS, mulberry32 };
})(typeof self !== "undefined" ? self : this);
