"""The browser side: a headless chromium worker against NumpyModel, the draw-a-digit round trip, the wire.

    .venv/bin/python benchmarks/browser.py [--quick]

In one run, against one bridge (`h3spark web`'s WebApp on loopback) and one headless chromium
(Debian's, through Selenium with the driver's path given; nothing is downloaded):

1. samples/s of the browser's MLP (static/mlp.js, in a page) against NumpyModel.train_step on the same
   batches of digits, from the same weights, with plain SGD (both as fast as they go, no network);
   and samples/s of one worker window training against the master (Downpour: pull, push, acks);
2. the draw-a-digit round trip, timed in the page from sending a digit to the last answer (a learner
   actor on the in-process bus and the master), one digit at a time: p50 and p95;
3. the bytes on the TCP stream (through a counting proxy) for one weights frame and one gradients frame,
   over their raw float32 bytes;
4. the master's held-out accuracy after three worker windows trained their shards.

The last line is one JSON object: browser_vs_python, predict_p95_ms (target <= 100), wire_overhead
(target <= 1.05), accuracy_3_workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time

import numpy as np

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TOKEN = "b" * 24
HIDDEN, BATCH, LR = [64], 16, 0.05


def config(epochs: int, proxy_port: int | None = None):
    from h3spark.config import H3SparkConfig

    learner = {"inputs": {"digits.raw": "train", "web.draw": "predict"},
               "model": {"engine": "numpy", "mlp": {"input_shape": [64], "hidden": [32], "classes": 10}},
               "training": {"optimizer": "adam", "lr": 0.01, "batch_size": 32},
               "pipeline": {"steps": [{"kind": "image", "columns": ["features"], "shape": [64]}], "fit_rows": 64},
               "outputs": {"predictions": "web.predictions"}, "stop_at_end": False}
    producer = {"source": {"bundled": "digits"}, "topic": "digits.raw", "records_per_message": 64, "epochs": 1,
                "holdout_fraction": 0.2, "seed": 1}
    origins = [f"http://127.0.0.1:{proxy_port}"] if proxy_port else []
    return H3SparkConfig.model_validate({
        "name": "bench-browser", "actors": {"transport": "memory", "progress_s": 1, "producers": {"digits": producer},
                                            "actors": {"learner": learner}},
        "web": {"port": 0, "allowed_origins": origins, "downpour": {
            "model": {"input_shape": [64], "hidden": HIDDEN, "classes": 10},
            "training": {"optimizer": "dcasgd", "lr": LR, "batch_size": BATCH, "epochs": epochs},
            "data": {"shards": 3}, "eval_every_s": 0.25}}})


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                     "--disable-backgrounding-occluded-windows"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(600)
    return driver


def wait_until(condition, what: str, timeout_s: float = 600):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


# --- 1. compute: the browser's MLP against NumpyModel ------------------------------------------------

def compute(driver, app, steps: int) -> dict:
    from h3spark.train.engines.model import TrainOptions
    from h3spark.train.engines.numpy_model import NumpyModel

    master = app.master
    features, labels = master.data.shard(0)
    order = np.random.default_rng(0).integers(0, len(labels), (steps, BATCH))
    model = NumpyModel(master.spec, options=TrainOptions(optimizer="sgd", lr=LR))
    initial = master.layout.flatten(model.get_weights())
    started = time.perf_counter()
    for rows in order:
        model.train_step(features[rows], labels[rows])
    python_s = time.perf_counter() - started
    driver.get(f"{app.server.url}worker#token={app.token}")
    result = driver.execute_script("""
        const [spec, layout, weights, x, y, order, batch, lr] = arguments;
        const mlp = new H3MLP.MLP(spec, layout, 1), F = mlp.features;
        const X = Float64Array.from(x), Y = Int32Array.from(y), grad = new Float64Array(mlp.size);
        const bx = new Float64Array(batch * F), by = new Int32Array(batch);
        function run() {
          for (const rows of order) {
            rows.forEach((row, r) => { bx.set(X.subarray(row * F, (row + 1) * F), r * F); by[r] = Y[row]; });
            mlp.sgdStep(bx, by, batch, lr, grad);
          }
        }
        mlp.setWeights(Float32Array.from(weights)); run();            // warm-up: the JIT compiles the loops
        mlp.setWeights(Float32Array.from(weights));
        const started = performance.now(); run(); const ms = performance.now() - started;
        return [ms, Array.from(mlp.params)];""", master.spec.to_dict(), master.layout.to_json(), initial.tolist(),
        features.reshape(-1).tolist(), labels.tolist(), order.tolist(), BATCH, LR)
    browser_s = result[0] / 1000
    final_gap = float(np.abs(np.array(result[1]) - master.layout.flatten(model.get_weights())).max())
    samples = steps * BATCH
    return {"python_samples_per_s": round(samples / python_s), "browser_samples_per_s": round(samples / browser_s),
            "browser_vs_python": round(python_s / browser_s, 2), "final_weights_max_gap": final_gap}


def one_worker(driver, app) -> dict:
    """One window's end-to-end samples/s training its shard against the master."""
    driver.get(f"{app.server.url}worker?autostart=1&epochs=3&n_fetch=4&n_push=4&max_in_flight=4#token={app.token}")
    wait_until(lambda: driver.execute_script("return window.h3Worker.state.phase") in ("done", "failed"), "the worker")
    state = driver.execute_script("return window.h3Worker.state")
    return {"worker_samples_per_s": round(state["samplesPerS"]), "worker_pushes": state["applied"],
            "worker_refused": state["refused"], "worker_compute_s": round(state["computeMs"] / 1000, 2),
            "worker_waited_for_acks_s": round(state["waitedMs"] / 1000, 2)}


# --- 2. the draw-a-digit round trip -----------------------------------------------------------------

def round_trips(driver, app, count: int) -> dict:
    wait_until(lambda: app.network.producers["digits"]["state"] != "running", "the producer to finish")
    wait_until(lambda: (app.network.status().get("learner", {}).get("step") or 0) > 0, "the learner to train")
    driver.get(app.page_url())
    wait_until(lambda: driver.execute_script("return window.h3Page.welcome !== null"), "the page")
    pixels = [float(v) for v in app.master.data.holdout_features[0] * 16]
    times = driver.execute_async_script("""
        const [pixels, count, done] = arguments;
        (async () => {
          for (let i = 0; i < count; i++) {
            const before = h3Page.roundTrips.length;
            h3Page.predict(pixels);
            while (h3Page.roundTrips.length === before) await new Promise((r) => setTimeout(r, 1));
          }
          done(h3Page.roundTrips.slice(-count));
        })();""", pixels, count)
    bridge = driver.execute_script(  # at the bridge: from the request to its last answer
        "return Object.values(window.h3Page.predictions).map((a) => Math.max(...Object.values(a).map((m) => m.ms)))")
    times, bridge = sorted(times[1:]), sorted(bridge[-count + 1:])  # the first opens the actor's unlabelled pipeline
    return {"predict_p50_ms": round(statistics.median(times), 2), "predict_p95_ms": percentile(times, 0.95),
            "predict_bridge_p50_ms": round(statistics.median(bridge), 2), "predict_bridge_p95_ms": percentile(bridge, 0.95),
            "predictions": len(times), "predictors": driver.execute_script("return window.h3Page.welcome.predictors")}


def percentile(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


# --- 3. the wire ------------------------------------------------------------------------------------

class CountingProxy:
    """A TCP proxy on loopback that counts the bytes each way."""

    def __init__(self, target_port: int | None = None):
        self.target_port, self.up, self.down = target_port, 0, 0
        self.loop = asyncio.new_event_loop()
        self.port = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(source, sink, count):
            while data := await source.read(65536):
                count(len(data))
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer, self._add_up), pipe(upstream_reader, writer, self._add_down),
                             return_exceptions=True)

    def _add_up(self, n):
        self.up += n

    def _add_down(self, n):
        self.down += n


def wire(app, proxy: CountingProxy, pulls: int = 20) -> dict:
    from websockets.sync.client import connect

    from h3spark.web import GRADIENTS, encode_frame

    raw = 4 * app.master.layout.size
    with connect(f"ws://127.0.0.1:{proxy.port}/ws") as ws:
        ws.send(json.dumps({"type": "hello", "role": "worker", "token": app.token}))
        ws.send(json.dumps({"type": "join", "data": "own"}))
        while not isinstance(ws.recv(timeout=30), bytes):
            pass
        downs, ups = [], []
        for _ in range(pulls):
            before = proxy.down
            ws.send(json.dumps({"type": "pull"}))
            frame = ws.recv(timeout=30)
            while not isinstance(frame, bytes):
                frame = ws.recv(timeout=30)
            time.sleep(0.01)  # let the proxy count what arrived
            downs.append(proxy.down - before)
            version = int.from_bytes(frame[8:12], "little")
            before = proxy.up
            ws.send(encode_frame(GRADIENTS, np.zeros(app.master.layout.size, np.float32), version=version, steps=1,
                                 rows=BATCH))
            ack = json.loads(ws.recv(timeout=30))
            while ack["type"] != "ack":
                ack = json.loads(ws.recv(timeout=30))
            time.sleep(0.01)
            ups.append(proxy.up - before)
    weights_bytes, gradients_bytes = min(downs), min(ups)
    return {"raw_bytes": raw, "wire_bytes_weights": weights_bytes, "wire_bytes_gradients": gradients_bytes,
            "wire_overhead": round(max(weights_bytes, gradients_bytes) / raw, 4)}


# --- 4. three worker windows ----------------------------------------------------------------------------

def three_workers(driver, app) -> dict:
    driver.get("about:blank")  # the window of the one worker before goes
    master = app.master
    wait_until(lambda: not master.workers, "the workers before to leave")
    init = master.config.model.init
    master.reset(init.mean, init.std)  # from fresh weights
    started = time.monotonic()
    handles = []
    for index in range(3):
        if index:
            driver.switch_to.new_window("window")
        driver.get(f"{app.server.url}worker?autostart=1#token={app.token}")
        handles.append(driver.current_window_handle)
    wait_until(lambda: len(master.workers) == 3 and all(w.done for w in master.workers.values()), "three workers")
    seconds = time.monotonic() - started
    scores = master.evaluate()
    for handle in handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(handles[0])
    return {"accuracy_3_workers": round(scores["accuracy"], 4), "three_workers_s": round(seconds, 1),
            "master_version": master.version, "master_refused": master.refused}


def main() -> None:
    from h3spark.web import WebApp

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, predictions and epochs (about a minute)")
    args = parser.parse_args()
    steps, count, epochs = (300, 40, 6) if args.quick else (3000, 200, 15)
    proxy = CountingProxy()  # first, so that the bridge can allow its origin
    app = WebApp(config(epochs, proxy.port), "/tmp/h3spark-bench-browser", token=TOKEN)
    app.start()
    proxy.target_port = app.server.port
    driver = browser()
    results = {}
    try:
        results.update(compute(driver, app, steps))
        print(f"compute: NumpyModel {results['python_samples_per_s']} samples/s, browser "
              f"{results['browser_samples_per_s']} samples/s (x{results['browser_vs_python']})", flush=True)
        results.update(round_trips(driver, app, count))
        print(f"draw-a-digit round trip: p50 {results['predict_p50_ms']} ms, p95 {results['predict_p95_ms']} ms "
              f"in the page, p50 {results['predict_bridge_p50_ms']} ms, p95 {results['predict_bridge_p95_ms']} ms at the "
              f"bridge ({results['predictions']} digits, answered by {', '.join(results['predictors'])})", flush=True)
        results.update(wire(app, proxy))
        print(f"wire: weights {results['wire_bytes_weights']} B, gradients {results['wire_bytes_gradients']} B for "
              f"{results['raw_bytes']} raw bytes (x{results['wire_overhead']})", flush=True)
        results.update(one_worker(driver, app))
        print(f"one worker window against the master: {results['worker_samples_per_s']} samples/s", flush=True)
        results.update(three_workers(driver, app))
        print(f"three worker windows, {epochs} epochs each: held-out accuracy {results['accuracy_3_workers']} in "
              f"{results['three_workers_s']} s", flush=True)
    finally:
        driver.quit()
        app.stop()
    results.update(quick=args.quick, steps=steps, batch=BATCH, hidden=HIDDEN, epochs=epochs,
                   load_average=round(os.getloadavg()[0], 2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
