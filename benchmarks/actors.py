"""Actor messaging against the real broker: KafkaTransport against a raw kafka-python loop.

    .venv/bin/python benchmarks/actors.py [--quick] [--bootstrap 127.0.0.1:9092] [--repeats N]

On one broker, in one run:
- throughput, actor to actor: a publishing actor (``KafkaTransport.publish``) in this process and a
  subscribed handler in another process, for small messages (a 1 KB array) and minibatches
  (256 x 784 float32), against a raw kafka-python producer -> consumer loop that sends the same raw
  bytes with the same settings (acks=all, idempotent, linger_ms=0, batch_size=16384, no compression;
  group consumers with max_poll_records=100 that commit after each batch). Arms alternate, each run on
  fresh topics; the median of ``--repeats`` runs counts;
- end-to-end latency at a fixed rate (200 messages/s of 1 KB): from the envelope's ``created_ns`` to
  the handler, p50 and p99 (the raw loop's, from a timestamp in its payload, for reference);
- the envelope's encode+decode speed (GB/s of float32 array bytes) and its size over the raw bytes;
- the showcases' figures, when benchmarks/_actors_showcases.py provides them.

A table, then one JSON line (the last line of the output).
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import statistics
import struct
import sys
import time
import traceback
import uuid

import numpy as np

from h3spark.actors import Envelope, KafkaTransport, ReceiveConfig, measure_codec
from h3spark.errors import ServiceError
from h3spark.transport import kafka

PRODUCER_SETTINGS = {"linger_ms": 0, "batch_size": 16384, "compression_type": None}
MAX_BATCH = 100                     # records per poll, both arms (the subscription's default)
MAX_RECORD_BYTES = 1_000_000        # KafkaTransport's default: a minibatch (803 KB) is one record
RATE_PER_S = 200
FULL = {"small": 20000, "batch": 400, "latency_s": 10.0, "repeats": 3}
QUICK = {"small": 3000, "batch": 60, "latency_s": 3.0, "repeats": 1}
WAIT_S = 300.0                      # a consumer that gets nothing for this long has lost messages
SHOWCASES = ("distill_gap_recovered", "sentinel_cost")


def payload(kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "small":
        return rng.integers(0, 256, 1024, dtype=np.uint8)
    return rng.standard_normal((256, 784)).astype(np.float32)


def new_topic(label: str) -> str:
    return f"bench-actors-{label}-{uuid.uuid4().hex[:10]}"


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Delete the run's topics (and their dead-letter topics): a full run writes about 1 GB to the broker."""
    admin = kafka.kafka_module().KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60000)
    try:
        existing = set(admin.list_topics())
        names = [name for topic in topics for name in (topic, topic + ".dead") if name in existing]
        if names:
            admin.delete_topics(names)
    finally:
        admin.close()


# the receiving side, in a process of its own (as a second actor would be)

def consume(arm: str, bootstrap: str, topic: str, count: int, conn) -> None:
    """Receive ``count`` messages of ``topic``; send back (time of the last, latencies in ms, CPU seconds)."""
    receive = consume_actor if arm == "actor" else consume_raw
    try:
        conn.send(receive(bootstrap, topic, count, lambda: conn.send("ready")))
    except BaseException as error:  # the parent reports it; nothing is lost silently
        conn.send(f"error: {type(error).__name__}: {error}")
        raise


def consume_actor(bootstrap: str, topic: str, count: int, ready) -> tuple[float, list[float], float]:
    latencies: list[float] = []

    def handle(envelope, delivery) -> None:
        latencies.append((time.time_ns() - envelope.created_ns) / 1e6)

    with KafkaTransport(bootstrap, MAX_RECORD_BYTES) as transport:
        subscription = transport.subscribe([topic], f"{topic}-reader", handle, config=ReceiveConfig(max_batch=MAX_BATCH))
        while subscription.stats.assignments == 0:
            subscription.poll(timeout_s=0.1)
        ready()
        cpu, deadline = time.process_time(), time.monotonic() + WAIT_S
        while len(latencies) < count and time.monotonic() < deadline:
            if subscription.poll(timeout_s=0.2):
                deadline = time.monotonic() + WAIT_S
        last, cpu = time.monotonic(), time.process_time() - cpu
    return last, latencies, cpu


def consume_raw(bootstrap: str, topic: str, count: int, ready) -> tuple[float, list[float], float]:
    consumer = kafka.kafka_module().KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"{topic}-reader", enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=MAX_BATCH)
    latencies: list[float] = []
    try:
        while not consumer.assignment():
            consumer.poll(timeout_ms=100)
        ready()
        cpu, deadline = time.process_time(), time.monotonic() + WAIT_S
        while len(latencies) < count and time.monotonic() < deadline:
            fetched = consumer.poll(timeout_ms=200)
            for records in fetched.values():
                now = time.time_ns()
                arrays = [np.frombuffer(record.value, np.uint8) for record in records]  # as a handler sees them
                latencies += [(now - int(array[:8].view("<i8")[0])) / 1e6 for array in arrays]
            if fetched:
                consumer.commit()
                deadline = time.monotonic() + WAIT_S
        return time.monotonic(), latencies, time.process_time() - cpu
    finally:
        consumer.close()


# the sending side, in this process

class ActorSender:
    """A publishing actor: one envelope per message, through KafkaTransport."""

    def __init__(self, bootstrap: str):
        self.transport = KafkaTransport(bootstrap, MAX_RECORD_BYTES, producer_options=PRODUCER_SETTINGS)

    def prepare(self, topics: list[str]) -> None:
        self.transport.ensure_topics(topics)

    def send(self, topic: str, array: np.ndarray) -> None:
        self.transport.publish(topic, Envelope("features", "sender", model_version=0, arrays={"x": array}))

    def flush(self) -> None:
        self.transport.flush()

    def close(self) -> None:
        self.transport.close()


class RawSender:
    """A raw kafka-python producer with the transport's settings, sending each array's bytes."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.producer = kafka.reliable_producer(bootstrap, MAX_RECORD_BYTES + 65536, **PRODUCER_SETTINGS)

    def prepare(self, topics: list[str]) -> None:
        kafka.ensure_topics(self.bootstrap, topics)

    def send(self, topic: str, array: np.ndarray, stamped: bool = False) -> None:
        data = array.tobytes()  # what a plain loop does with an array: one copy, as the envelope's
        if stamped:  # the send time in the first 8 bytes, for the latency run
            data = struct.pack("<q", time.time_ns()) + data[8:]
        self.producer.send(topic, value=data, key=b"sender")

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()


def with_consumer(arm: str, bootstrap: str, topic: str, count: int, produce) -> dict:
    """Start the consumer process, wait until it owns the partition, run ``produce()``; the start, the
    consumer's last receipt, its latencies, and the CPU seconds of each side."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=consume, args=(arm, bootstrap, topic, count, theirs), daemon=True)
    process.start()
    try:
        answer = ours.recv() if ours.poll(WAIT_S) else "error: the consumer did not join its group"
        if answer != "ready":
            raise ServiceError(f"the {arm} consumer of {topic} failed: {answer}")
        cpu = time.process_time()
        started = produce()
        cpu = time.process_time() - cpu
        answer = ours.recv() if ours.poll(WAIT_S * 2) else "error: no answer from the consumer"
        if isinstance(answer, str):
            raise ServiceError(f"the {arm} consumer of {topic} failed: {answer}")
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
    last, latencies, consumer_cpu = answer
    if len(latencies) < count:
        raise ServiceError(f"the {arm} consumer of {topic} received {len(latencies)} of {count} messages")
    return {"started": started, "last": last, "latencies": latencies, "producer_cpu_s": cpu,
            "consumer_cpu_s": consumer_cpu}


def throughput(arm: str, bootstrap: str, kind: str, count: int) -> tuple[float, float]:
    """Messages per second from the first send to the last receipt, and CPU microseconds per message
    (both processes: on a busy machine the CPU, not the broker, sets the pace)."""
    sender = ActorSender(bootstrap) if arm == "actor" else RawSender(bootstrap)
    topic, warm = new_topic(kind), new_topic("warm")
    array = payload(kind)
    try:
        sender.prepare([topic, warm])
        sender.send(warm, array)  # connects and learns the cluster before the clock starts
        sender.flush()

        def produce() -> float:
            started = time.monotonic()
            for _ in range(count):
                sender.send(topic, array)
            sender.flush()
            return started

        run = with_consumer(arm, bootstrap, topic, count, produce)
    finally:
        sender.close()
        delete_topics(bootstrap, [topic, warm])
    return count / (run["last"] - run["started"]), (run["producer_cpu_s"] + run["consumer_cpu_s"]) / count * 1e6


def latency(arm: str, bootstrap: str, seconds: float) -> list[float]:
    """End-to-end latencies (ms) of 1 KB messages sent at RATE_PER_S."""
    sender = ActorSender(bootstrap) if arm == "actor" else RawSender(bootstrap)
    topic, array, count = new_topic("latency"), payload("small"), int(seconds * RATE_PER_S)
    options = {} if arm == "actor" else {"stamped": True}
    try:
        sender.prepare([topic])

        def produce() -> float:
            started = time.monotonic()
            for i in range(count):
                time.sleep(max(0.0, started + i / RATE_PER_S - time.monotonic()))
                sender.send(topic, array, **options)
            sender.flush()
            return started

        return with_consumer(arm, bootstrap, topic, count, produce)["latencies"]
    finally:
        sender.close()
        delete_topics(bootstrap, [topic])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def showcases(quick: bool, bootstrap: str) -> tuple[dict, str]:
    """The showcases' figures from benchmarks/_actors_showcases.py; None, with a note, for each not there or
    failed (its traceback on stderr), so that the transport's figures above are still reported."""
    try:
        module = importlib.import_module("_actors_showcases")
    except ModuleNotFoundError as error:
        if error.name != "_actors_showcases":
            raise
        return dict.fromkeys(SHOWCASES), "benchmarks/_actors_showcases.py is not there"
    calls = {"distill_gap_recovered": lambda: module.distill_gap_recovered(quick=quick),
             "sentinel_cost": lambda: module.sentinel_cost(quick=quick, bootstrap=bootstrap)}
    figures, notes = {}, []
    for name, call in calls.items():
        try:
            figures[name] = call()
        except Exception as error:  # noqa: BLE001 - reported in the table and on stderr, the figure left null
            traceback.print_exc()
            figures[name] = None
            notes.append(f"{name} failed: {type(error).__name__}: {error}"[:300])
    return figures, "; ".join(notes)


def check_broker(bootstrap: str) -> None:
    try:
        with kafka.translate_errors("the benchmark", bootstrap, "Start it: h3spark services up kafka"):
            probe = new_topic("probe")
            kafka.ensure_topics(bootstrap, [probe])
            delete_topics(bootstrap, [probe])
    except ServiceError as error:
        print(f"h3spark: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def run(bootstrap: str, sizes: dict) -> dict:
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for kind in ("small", "batch"):
        for repeat in range(sizes["repeats"]):
            for arm in ("raw", "actor") if repeat % 2 == 0 else ("actor", "raw"):
                rate, cpu_us = throughput(arm, bootstrap, kind, sizes[kind])
                runs.setdefault((arm, kind), []).append((rate, cpu_us))
                print(f"  {kind:5} {arm:5} run {repeat + 1}: {rate:,.0f} messages/s, {cpu_us:,.0f} us CPU per message",
                      file=sys.stderr)
    latencies = {arm: latency(arm, bootstrap, sizes["latency_s"]) for arm in ("actor", "raw")}
    return {"runs": runs, "latencies": latencies, "codec": measure_codec(),
            "codec_small": measure_codec(shape=(1024,), dtype="uint8")}


def median_of(runs: dict, arm: str, kind: str, column: int) -> float:
    return statistics.median(run[column] for run in runs[(arm, kind)])


def print_table(results: dict, figures: dict, note: str, sizes: dict) -> None:
    runs, lat = results["runs"], results["latencies"]
    print(f"throughput, messages/s (median of {sizes['repeats']}; consumer in its own process) and CPU per message "
          f"(both processes)")
    print(f"{'payload':26} {'raw kafka':>10} {'actors':>10} {'ratio':>6} {'CPU us raw':>11} {'actors':>7}   runs")
    for kind, label in (("small", f"1 KB x {sizes['small']}"), ("batch", f"256x784 float32 x {sizes['batch']}")):
        raw, actor = median_of(runs, "raw", kind, 0), median_of(runs, "actor", kind, 0)
        listed = "; ".join(f"{arm} " + ", ".join(f"{rate:,.1f}" for rate, _ in runs[(arm, kind)]) for arm in ("raw", "actor"))
        print(f"{label:26} {raw:>10,.1f} {actor:>10,.1f} {actor / raw:>6.2f} {median_of(runs, 'raw', kind, 1):>11,.0f} "
              f"{median_of(runs, 'actor', kind, 1):>7,.0f}   {listed}")
    print(f"latency at {RATE_PER_S} messages/s of 1 KB for {sizes['latency_s']:.0f} s, ms: "
          f"actors p50 {percentile(lat['actor'], 50):.2f} p99 {percentile(lat['actor'], 99):.2f}; "
          f"raw kafka p50 {percentile(lat['raw'], 50):.2f} p99 {percentile(lat['raw'], 99):.2f}")
    codec, small = results["codec"], results["codec_small"]
    print(f"envelope, 256x784 float32: encode+decode {codec['codec_gb_per_s']:.2f} GB/s, {codec['wire_bytes']:,} bytes "
          f"on the wire for {codec['raw_bytes']:,} (x{codec['wire_overhead']:.4f}); a 1 KB array: x{small['wire_overhead']:.3f}")
    print("showcases: " + ", ".join(f"{k} {v}" for k, v in figures.items()) + (f" ({note})" if note else ""))


def summary(results: dict, figures: dict) -> dict:
    runs, lat, codec = results["runs"], results["latencies"], results["codec"]
    rate = {(arm, kind): median_of(runs, arm, kind, 0) for arm, kind in runs}
    cpu = {(arm, kind): median_of(runs, arm, kind, 1) for arm, kind in runs}
    return {"ratio_vs_raw_kafka_small": round(rate[("actor", "small")] / rate[("raw", "small")], 3),
            "ratio_vs_raw_kafka_batch": round(rate[("actor", "batch")] / rate[("raw", "batch")], 3),
            "p50_ms": round(percentile(lat["actor"], 50), 2), "p99_ms": round(percentile(lat["actor"], 99), 2),
            "codec_gb_per_s": round(codec["codec_gb_per_s"], 2), "wire_overhead": round(codec["wire_overhead"], 4),
            **figures,
            **{f"{arm}_{kind}_per_s": round(value, 1) for (arm, kind), value in rate.items()},
            **{f"{arm}_{kind}_cpu_us": round(value) for (arm, kind), value in cpu.items()},
            "raw_p50_ms": round(percentile(lat["raw"], 50), 2), "raw_p99_ms": round(percentile(lat["raw"], 99), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one run per arm (about a minute)")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="the broker (h3spark services up kafka)")
    parser.add_argument("--repeats", type=int, help="runs per arm and payload (median counts)")
    parser.add_argument("--skip-showcases", action="store_true", help="leave distill_gap_recovered and "
                                                                       "sentinel_cost null (they take minutes)")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error(f"--repeats must be at least 1. Got {args.repeats} instead")
        sizes["repeats"] = args.repeats
    check_broker(args.bootstrap)
    load = os.getloadavg()
    print(f"broker {args.bootstrap}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", file=sys.stderr)
    results = run(args.bootstrap, sizes)
    figures, note = (dict.fromkeys(SHOWCASES), "skipped: --skip-showcases") if args.skip_showcases else \
        showcases(args.quick, args.bootstrap)
    print_table(results, figures, note, sizes)
    print(json.dumps(summary(results, figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
