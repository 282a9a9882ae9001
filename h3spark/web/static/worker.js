// h3spark browser worker, in a dedicated Web Worker (not throttled with its page): Downpour SGD against
// the bridge's master. It pulls the weights every n_fetch steps, sums the gradients of n_push minibatches
// into one push (binary, float32, stamped with the version they were computed on), keeps at most
// max_in_flight pushes unacknowledged, and trains on the shard the master hands it and on the examples
// its user adds (sent raw, preprocessed by the master's pipeline). docs/web.md describes the protocol.
"use strict";
importScripts("mlp.js");

const state = { phase: "idle", worker: null, shard: null, step: 0, epoch: 0, version: 0, masterVersion: 0, loss: null, samples: 0,
  applied: 0, refused: 0, rows: 0, samplesPerS: 0, waitedMs: 0, computeMs: 0, error: null, delays: [], lastReason: null };
let ws = null, mlp = null, settings = null, features = 0, stopping = false;
let rows = new Float64Array(0), labels = new Int32Array(0), count = 0;
let pendingWeights = null, pulling = false, inflight = 0, waiters = [], newRows = null;
const ticker = new MessageChannel();
let tickResolve = null;
ticker.port1.onmessage = () => { const r = tickResolve; tickResolve = null; if (r) r(); };

function tick() { return new Promise((resolve) => { tickResolve = resolve; ticker.port2.postMessage(0); }); }
function report() { postMessage({ type: "state", state: Object.assign({}, state, { delays: state.delays.slice(-50) }) }); }
function fail(message) { state.phase = "failed"; state.error = message; report(); stopping = true; }
function send(message) { ws.send(JSON.stringify(message)); }

onmessage = (event) => {
  const command = event.data;
  if (command.cmd === "start") start(command);
  else if (command.cmd === "stop") { stopping = true; if (ws) ws.close(1000, "stopped by the page"); }
  else if (command.cmd === "examples" && ws) {
    ws.send(H3MLP.encodeFrame(H3MLP.KINDS.examples, command.pixels, 0, 0, command.labels.length, command.labels));
  }
};

function start(command) {
  settings = command.settings;
  ws = new WebSocket(command.url);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => send({ type: "hello", role: "worker", token: command.token });
  ws.onclose = (event) => { if (!stopping && state.phase !== "done") fail("the bridge closed the connection (" + event.code + " " + event.reason + ")"); };
  ws.onerror = () => fail("the WebSocket failed");
  ws.onmessage = (event) => (typeof event.data === "string" ? onText(JSON.parse(event.data), command) : onBinary(event.data));
  state.phase = "connecting";
  report();
}

function onText(message, command) {
  if (message.type === "welcome") {
    if (!message.downpour) return fail("this bridge runs no Downpour master");
    if (!message.authenticated) return fail("the bridge did not take the token; open the URL it printed");
    const info = message.downpour;
    mlp = new H3MLP.MLP(info.spec, info.layout, command.seed || 1);
    features = info.features;
    send({ type: "join", settings: settings, data: command.data || "shard" });
  } else if (message.type === "joined") {
    Object.assign(state, { worker: message.worker, shard: message.shard, phase: "joined" });
    settings = message.settings;
    report();
  } else if (message.type === "ack") {
    inflight -= 1;
    if (message.applied) { state.applied += 1; state.delays.push(message.delay); }
    else { state.refused += 1; state.lastReason = message.reason; pull(); }
    state.masterVersion = message.version;
    const waiting = waiters; waiters = [];
    waiting.forEach((resolve) => resolve());
  } else if (message.type === "error") {
    state.lastReason = message.code + ": " + message.message;
    if (message.code === "unauthorized" || message.code === "no_master" || message.ref === "join") fail(state.lastReason);
    if (message.ref === "gradients" && inflight > 0) { inflight -= 1; waiters.splice(0).forEach((r) => r()); }
  }
}

function onBinary(buffer) {
  const frame = H3MLP.decodeFrame(buffer, features);
  if (frame.kind === H3MLP.KINDS.data) {
    addRows(frame.values, frame.labels);
  } else if (frame.kind === H3MLP.KINDS.weights) {
    pulling = false;
    pendingWeights = frame;
    if (state.phase === "joined") train();
  }
}

function addRows(values, newLabels) {
  const n = newLabels.length;
  const grown = new Float64Array((count + n) * features);
  grown.set(rows.subarray(0, count * features));
  grown.set(values, count * features);
  const grownLabels = new Int32Array(count + n);
  grownLabels.set(labels.subarray(0, count));
  grownLabels.set(newLabels, count);
  rows = grown; labels = grownLabels; count += n; state.rows = count;
  if (newRows) { const r = newRows; newRows = null; r(); }
  report();
}

function pull() { if (!pulling && ws.readyState === 1) { pulling = true; send({ type: "pull" }); } }

const run = { grad: null, steps: 0, rows: 0, started: 0 };

async function push() {
  if (run.steps === 0) return;
  const started = performance.now();
  while (inflight >= settings.max_in_flight) await new Promise((resolve) => waiters.push(resolve));
  state.waitedMs += performance.now() - started;
  ws.send(H3MLP.encodeFrame(H3MLP.KINDS.gradients, run.grad, state.version, run.steps, run.rows));
  inflight += 1;
  run.grad.fill(0); run.steps = 0; run.rows = 0;
}

// weights that arrived replace the replica's, after the gradients computed on the old ones are pushed
async function takeWeights() {
  if (!pendingWeights) return;
  await push();
  const frame = pendingWeights;
  pendingWeights = null;
  mlp.setWeights(frame.values);
  state.version = frame.version;
}

async function train() {
  if (state.phase === "training") return;
  state.phase = "training";
  run.grad = new Float64Array(mlp.size);
  run.started = performance.now();
  await takeWeights();
  let epochsDone = 0, lossEma = null, lastReport = 0;
  while (!stopping) {
    if (count === 0 || epochsDone >= settings.epochs) {
      if (state.shard !== null && epochsDone >= settings.epochs) break;
      state.phase = "waiting for examples"; report();
      await new Promise((resolve) => { newRows = resolve; });
      epochsDone = Math.min(epochsDone, settings.epochs - 1);
      state.phase = "training";
    }
    state.epoch = epochsDone;
    const order = shuffled(count);
    const B = settings.batch_size;
    const x = new Float64Array(B * features), y = new Int32Array(B);
    for (let start = 0; start < order.length && !stopping; start += B) {
      const b = Math.min(B, order.length - start);
      for (let r = 0; r < b; r++) {
        const row = order[start + r];
        x.set(rows.subarray(row * features, (row + 1) * features), r * features);
        y[r] = labels[row];
      }
      const computing = performance.now();
      const loss = mlp.gradients(x, y, b, run.grad);
      state.computeMs += performance.now() - computing;
      run.steps += 1; run.rows += b; state.step += 1; state.samples += b;
      lossEma = lossEma === null ? loss : 0.95 * lossEma + 0.05 * loss;
      if (run.steps >= settings.n_push) await push();
      if (state.step % settings.n_fetch === 0) pull();
      if (pulling || inflight > 0 || state.step % 8 === 0) await tick();
      await takeWeights();
      const now = performance.now();
      if (now - lastReport > 250) {
        lastReport = now;
        Object.assign(state, { loss: lossEma, samplesPerS: state.samples / ((now - run.started) / 1000) });
        send({ type: "progress", loss: lossEma, steps: state.step, samples: state.samples });
        report();
      }
    }
    epochsDone += 1;
  }
  await push();
  while (inflight > 0 && ws.readyState === 1) await new Promise((resolve) => waiters.push(resolve));
  if (ws.readyState === 1) send({ type: "done" });
  state.phase = stopping ? "stopped" : "done";
  state.loss = lossEma;
  report();
}

function shuffled(n) {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); const t = order[i]; order[i] = order[j]; order[j] = t; }
  return order;
}
