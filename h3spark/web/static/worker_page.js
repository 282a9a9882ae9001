// h3spark web: the worker page. Training runs in a dedicated Web Worker (static/worker.js) over its own
// WebSocket; this page sets it up, shows its state, sends its user's examples, and changes the master's
// settings over a viewer connection. URL parameters prefill the form (?batch_size=16&epochs=5&autostart=1).
(function () {
  "use strict";
  const el = H3Client.el;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const view = window.h3Worker = { state: { phase: "idle" }, welcome: null, errors: [], master: null };
  let worker = null, ws = null;

  const pad = new H3Draw.DrawPad($("pad"), null);
  for (let digit = 0; digit < 10; digit++) $("label").appendChild(el("option", { value: String(digit), text: String(digit) }));

  function formValues(form) {
    const values = {};
    [...form.elements].forEach((input) => {
      if (!input.name || input.value === "") return;
      values[input.name] = input.type === "number" ? Number(input.value) : input.value;
    });
    return values;
  }

  function fill(form, values) {
    [...form.elements].forEach((input) => { if (input.name && values[input.name] !== undefined) input.value = values[input.name]; });
  }

  function render(state) {
    view.state = state;
    $("status").textContent = state.phase + (state.error ? ": " + state.error : "");
    const rows = [["worker", state.worker], ["shard", state.shard === null ? "own examples" : state.shard], ["rows", state.rows],
      ["epoch", state.epoch], ["step", state.step], ["weights version", state.version],
      ["loss", state.loss === null ? "" : state.loss.toFixed(4)], ["samples/s", Math.round(state.samplesPerS)],
      ["pushes applied", state.applied], ["pushes refused", state.refused], ["last refusal", state.lastReason || ""],
      ["computing / waiting for acks (s)", (state.computeMs / 1000).toFixed(1) + " / " + (state.waitedMs / 1000).toFixed(1)]];
    $("state").querySelector("tbody").replaceChildren(...rows.map(([key, value]) =>
      el("tr", {}, [el("th", { text: key }), el("td", { text: value === undefined || value === null ? "" : String(value) })])));
  }

  function start() {
    if (worker) return;
    const values = formValues($("settings"));
    const data = values.data || "shard";
    delete values.data;
    worker = new Worker("static/worker.js");
    worker.onmessage = (event) => { if (event.data.type === "state") render(event.data.state); };
    worker.onerror = (event) => { view.errors.push(event.message); $("errors").textContent = event.message; };
    worker.postMessage({ cmd: "start", url: H3Client.socketUrl(), token: H3Client.token(), settings: values, data: data,
      seed: Math.floor(Math.random() * 2 ** 31) });
  }

  function addExample() {
    if (!worker) { $("examples-note").textContent = "start the worker first"; return; }
    const pixels = Float32Array.from(pad.pixels());
    worker.postMessage({ cmd: "examples", pixels: pixels, labels: Int32Array.of(Number($("label").value)) });
    $("examples-note").textContent = "sent one example of a " + $("label").value;
    pad.clear();
  }

  function connect() {
    ws = H3Client.connect("viewer", {
      welcome: (m) => {
        view.welcome = m;
        $("access").textContent = m.authenticated ? "token: you may train" : "no token: open the URL the bridge printed";
        if (H3Client.token()) $("page-link").href = "./#token=" + encodeURIComponent(H3Client.token());
        if (!m.downpour) { $("master").textContent = "this bridge runs no Downpour master"; return; }
        const settings = m.downpour.settings;
        fill($("settings"), settings.worker);
        fill($("hyper"), settings);
        fill($("init"), settings);
        params.forEach((value, key) => fill($("settings"), { [key]: value }));
        if (params.get("autostart") === "1") start();
      },
      update: (m) => {
        if (m.settings) fill($("hyper"), m.settings);
        if (!m.downpour) return;
        view.master = m.downpour;
        const scores = m.downpour.evaluated;
        $("master").textContent = "version " + m.downpour.step + ", " + m.downpour.workers.length + " workers" +
          (scores ? ", held-out accuracy " + scores.accuracy.toFixed(3) : "");
      },
      error: (m) => { view.errors.push(m); $("errors").textContent = m.code + ": " + m.message; },
      reset: (m) => { $("errors").textContent = "weights drawn again at version " + m.version; },
    });
  }

  $("start").addEventListener("click", start);
  $("stop").addEventListener("click", () => { if (worker) worker.postMessage({ cmd: "stop" }); });
  $("add").addEventListener("click", addExample);
  $("clear").addEventListener("click", () => pad.clear());
  $("set").addEventListener("click", () => ws.send(JSON.stringify({ type: "set", settings: formValues($("hyper")) })));
  $("reset").addEventListener("click", () => ws.send(JSON.stringify(Object.assign({ type: "reset" }, formValues($("init"))))));
  connect();
})();
