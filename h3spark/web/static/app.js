// h3spark web: the network's page. Curves per actor, the actors and their topics, the Downpour master,
// and a canvas whose digit goes to every actor that predicts on the bridge's predict topic.
(function () {
  "use strict";
  const el = H3Client.el;
  const $ = (id) => document.getElementById(id);
  const colors = new Map();
  const loss = new H3Charts.LineChart($("loss"), { title: "loss", colors: colors });
  const accuracy = new H3Charts.LineChart($("accuracy"), { title: "accuracy (held-out)", range: [0, 1], colors: colors });
  // what the page knows, for people and for tests (tests/integration/web, benchmarks/browser.py)
  const page = window.h3Page = { welcome: null, authenticated: false, updates: 0, points: 0, predictions: {},
    sent: {}, roundTrips: [], errors: [], closed: null };
  let ws = null, nextId = 1;

  function addPoint(point) {
    page.points += 1;
    const name = point.kind === "validation" ? point.actor + " (" + point.by + ")" : point.actor;
    if (point.loss !== null && point.loss !== undefined) loss.add(name, point.t, point.loss);
    if (point.accuracy !== null && point.accuracy !== undefined) accuracy.add(name, point.t, point.accuracy);
  }

  function renderActors(states) {
    const graph = (page.welcome && page.welcome.graph) || { actors: {}, producers: {} };
    const names = new Set([...Object.keys(graph.actors || {}), ...Object.keys(states || {})]);
    const body = $("actors").querySelector("tbody");
    body.replaceChildren(...[...names].sort().map((name) => {
      const actor = (graph.actors || {})[name] || { inputs: {}, outputs: {} };
      const state = (states || {})[name] || {};
      const inputs = Object.entries(actor.inputs).map(([topic, use]) => topic + " (" + use + ")").join(", ");
      const outputs = Object.entries(actor.outputs).map(([key, topic]) => key + ": " + topic).join(", ");
      return el("tr", {}, [el("td", { text: name }), el("td", { text: state.state || "?" }),
        el("td", { text: state.step === undefined || state.step === null ? "" : String(state.step) }),
        el("td", { text: inputs }), el("td", { text: outputs })]);
    }));
    $("producers").replaceChildren(...Object.entries(graph.producers || {}).map(([name, producer]) =>
      el("li", { text: "producer " + name + " -> " + producer.topic })));
  }

  function renderMaster(master) {
    if (!master) return;
    const scores = master.evaluated;
    $("master").textContent = "version " + master.step + ", " + master.applied + " pushes applied, " + master.refused +
      " refused, " + master.samples + " samples" + (scores ? ", held-out accuracy " + scores.accuracy.toFixed(3) : "");
    $("workers").querySelector("tbody").replaceChildren(...master.workers.map((w) => el("tr", {}, [
      el("td", { text: w.id + (w.done ? " (done)" : "") }), el("td", { text: w.shard === null ? "own" : String(w.shard) }),
      el("td", { text: String(w.pushes) }), el("td", { text: String(w.refused) }), el("td", { text: String(w.samples) }),
      el("td", { text: w.loss === null ? "" : w.loss.toFixed(3) })])));
  }

  function renderPredictions(id) {
    const answers = page.predictions[id] || {};
    $("predictions").querySelector("tbody").replaceChildren(...Object.values(answers).map((a) => {
      const p = a.probabilities[a.label];
      return el("tr", {}, [el("td", { text: a.actor }), el("td", { text: String(a.label) }),
        el("td", {}, [bar(p), el("span", { text: " " + p.toFixed(2) })]),
        el("td", { text: String(a.version) }), el("td", { text: a.ms.toFixed(1) })]);
    }));
  }

  // a bar as wide as p; set through the CSSOM (the page's policy refuses style attributes)
  function bar(p) {
    const node = el("span", { class: "bar" });
    node.style.width = Math.round(60 * p) + "px";
    return node;
  }

  function predict(pixels) {
    if (!page.authenticated) $("draw-note").textContent = "read-only: the bridge takes drawings with the token only";
    const id = "d" + nextId++;
    page.sent[id] = performance.now();
    page.predictions[id] = {};
    ws.send(JSON.stringify({ type: "predict", id: id, pixels: pixels }));
    return id;
  }
  page.predict = predict;   // the same path as a drawing's, for tests and the benchmark

  function onPrediction(message) {
    const answers = page.predictions[message.id] = page.predictions[message.id] || {};
    answers[message.actor] = message;
    renderPredictions(message.id);
    const expected = page.welcome.predictors;
    if (page.sent[message.id] !== undefined && expected.every((name) => answers[name])) {
      page.roundTrips.push(performance.now() - page.sent[message.id]);
      delete page.sent[message.id];
    }
  }

  function connect() {
    ws = H3Client.connect("viewer", {
      welcome: (m) => {
        page.welcome = m;
        page.authenticated = m.authenticated;
        $("status").textContent = "connected";
        $("network").textContent = m.network;
        $("access").textContent = m.authenticated ? "token: you may draw and change settings" : "read-only (no token)";
        if (H3Client.token()) $("worker-link").href = "worker#token=" + encodeURIComponent(H3Client.token());
        Object.values(m.history).forEach((points) => points.forEach(addPoint));
        renderActors(m.actors);
      },
      update: (m) => {
        page.updates += 1;
        m.points.forEach(addPoint);
        if (m.actors) renderActors(m.actors);
        if (m.downpour) renderMaster(m.downpour);
      },
      prediction: onPrediction,
      error: (m) => { page.errors.push(m); $("errors").textContent = m.code + ": " + m.message; },
      close: (event) => { page.closed = event.code; $("status").textContent = "disconnected (" + event.code + ")"; },
    });
  }

  const pad = new H3Draw.DrawPad($("pad"), predict);
  $("clear").addEventListener("click", () => pad.clear());
  connect();
})();
