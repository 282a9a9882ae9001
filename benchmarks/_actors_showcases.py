"""The actor showcases' figures for benchmarks/actors.py: distillation's recovered gap (with item 7's FGSM table)
and the validation sentinel's cost to the learner's throughput; also the transfer showcase's steps to its level.

    .venv/bin/python benchmarks/_actors_showcases.py [--quick] [--bootstrap 127.0.0.1:9092] [--skip-transfer]

- ``distill_gap_recovered``: conf/actors_distill_teacher.yaml then conf/actors_distill.yaml on the in-process bus
  (the figures are the same on the broker: one process per actor, the same seeds; the Kafka test shows it), for
  the split seeds 7, 1 and 2 (the producers' seed: which 539 digits are held out, which 100 are labelled). The
  figure is the mean of (err_baseline - err_student) / (err_baseline - err_teacher); each seed's is printed.
- item 7, on seed 7's models: the error under FGSM (x + eps * sign(grad), clipped to [0, 1]) of the teacher, the
  student and the baseline on the held-out rows, the gradient taken on the softmax (T = 1) and on logits / T.
- ``sentinel_cost``: on the broker, a learner (conf/actors_sentinel.yaml's, in this process) trains through a
  stream published beforehand: alone (no parameters published), publishing at the conf's interval to a sentinel
  in a process of its own that scores each version on the 539 held-out rows, and publishing every 10 steps (a
  denser sentinel, for scale); arms rotate, fresh topics each run. Throughput: rows trained between the first
  and the last step over that time (the group's join before the first step left out). sentinel_cost is the
  median over repeats of 1 - with / without, the two from the same repeat. A sentinel scores 539 rows a version, about what 10 steps of 32 rows cost
  the learner, so on a machine without a spare core the interval decides the cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SEEDS = (7, 1, 2)
EPSILONS = (0.0, 0.05, 0.1, 0.2, 0.3)
FULL = {"seeds": SEEDS, "teacher_epochs": 20, "few_epochs": 750, "learner_epochs": 10, "repeats": 3}
QUICK = {"seeds": (7,), "teacher_epochs": 10, "few_epochs": 250, "learner_epochs": 8, "repeats": 2}
VALIDATION_ROWS = 539
WAIT_S = 300.0


def _conf(name: str, overrides=()):
    from h3spark.config import load_config
    from h3spark.train import validation_context

    return load_config(CONF / name, overrides=list(overrides), context=validation_context())


# --- (b) distillation and item 7 ----------------------------------------------------------------

def distillation_figures(quick: bool = False) -> dict:
    """Each seed's errors and recovered gap, their mean, and the FGSM table of the first seed's models."""
    from h3spark.actors._showcases import distillation_robustness, run_distillation

    sizes = QUICK if quick else FULL
    runs, table = [], None
    for seed in sizes["seeds"]:
        teacher = _conf("actors_distill_teacher.yaml", [f"actors.producers.digits.seed={seed}",
                                                        f"actors.producers.digits.epochs={sizes['teacher_epochs']}"])
        network = _conf("actors_distill.yaml", [f"actors.producers.few.seed={seed}",
                                                f"actors.producers.few.epochs={sizes['few_epochs']}"])
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="h3spark-distill-") as workdir:
            result = run_distillation(teacher, network, workdir)
        runs.append({"seed": seed, **{f"err_{k}": round(v, 4) for k, v in result.errors.items()},
                     "recovered": round(result.recovered, 3), "seconds": round(time.monotonic() - started, 1)})
        if table is None:
            table = distillation_robustness(result, list(EPSILONS))
    recovered = statistics.mean(run["recovered"] for run in runs)
    return {"distill_gap_recovered": round(recovered, 3), "distill_runs": runs, "fgsm": table,
            "temperature": 4.0, "labelled_rows": 100, "holdout_rows": VALIDATION_ROWS}


def print_distillation(figures: dict) -> None:
    print("distillation (conf/actors_distill*.yaml; 100 labelled digits, 539 held out, T = 4, alpha 0.9):")
    for run in figures["distill_runs"]:
        print(f"  seed {run['seed']}: error teacher {run['err_teacher']:.4f}, student {run['err_student']:.4f}, "
              f"baseline {run['err_baseline']:.4f} -> recovered {run['recovered']:.3f} ({run['seconds']:.0f} s)")
    print(f"  mean recovered {figures['distill_gap_recovered']:.3f}")
    print(f"FGSM error on the held-out rows (seed {figures['distill_runs'][0]['seed']}), epsilon "
          + " ".join(f"{eps:>5}" for eps in EPSILONS) + "   rows with a zero gradient")
    for row in figures["fgsm"]:
        print(f"  {row['model']:<8} {row['gradient']:<9}        " + " ".join(f"{e:5.3f}" for e in row["error"])
              + f"   {row['masked_rows']:.3f}")


def distill_gap_recovered(quick: bool = False) -> float:
    """benchmarks/actors.py's figure: the mean recovered gap (the tables are printed)."""
    figures = distillation_figures(quick)
    print_distillation(figures)
    return figures["distill_gap_recovered"]


# --- (d) the sentinel's cost -------------------------------------------------------------------

def _learner_and_sentinel(tag: str, every_steps: int | None):
    """conf/actors_sentinel.yaml's learner and sentinel on fresh topics; the learner publishes its weights every
    ``every_steps`` (None: never, and its publish_parameters is dropped; 0: the conf's interval)."""
    from h3spark.config import ActorConfig

    actors = _conf("actors_sentinel.yaml").actors.actors
    topics = {name: f"bench-sentinel-{tag}.{name}" for name in ("digits", "validation", "weights", "results")}
    learner = actors["learner"].model_dump(mode="json")
    every = every_steps or actors["learner"].publish_parameters.every_steps
    learner.update(inputs={topics["digits"]: "train"},
                   outputs={"parameters": topics["weights"]} if every_steps is not None else {},
                   publish_parameters={"every_steps": every} if every_steps is not None else None)
    sentinel = actors["sentinel"].model_dump(mode="json")
    sentinel.update(inputs={topics["validation"]: "evaluate", topics["weights"]: "evaluate"},
                    sentinel={"parameters": topics["weights"]}, outputs={"validation": topics["results"]})
    return ActorConfig.model_validate(learner), ActorConfig.model_validate(sentinel), topics


def _publish_streams(transport, topics: dict, epochs: int) -> None:
    from h3spark.actors import produce, source_records
    from h3spark.config._actors import ProducerSourceConfig

    records, _ = source_records(ProducerSourceConfig(bundled="digits"), "json", str(ROOT))
    produce(transport, topics["digits"], records, "json", records_per_message=64, epochs=epochs, holdout_fraction=0.3,
            seed=7)
    produce(transport, topics["validation"], records, "json", records_per_message=100, holdout_fraction=0.3, seed=7,
            train_range=(0, 0))


def _start_sentinel(transport, config, workdir: str, network: str):
    """The sentinel as a process of its own (a one-actor network), once it holds the whole validation set."""
    from h3spark.actors import Network
    from h3spark.config import ActorsConfig

    section = ActorsConfig.model_validate({"transport": "kafka", "bootstrap_servers": transport.bootstrap_servers,
                                           "progress_s": 0.5, "launcher": "processes",
                                           "actors": {"sentinel": config.model_dump(mode="json")}})
    sentinel = Network(network, section, workdir, "processes", transport=transport, progress=lambda line: None)
    sentinel.start()
    deadline = time.monotonic() + WAIT_S
    while sentinel.status().get("sentinel", {}).get("validation_rows", 0) < VALIDATION_ROWS:
        if time.monotonic() > deadline or not sentinel.active():
            sentinel.stop()
            raise RuntimeError(f"the sentinel did not take its validation rows: {sentinel.status()}")
        sentinel.poll(timeout_s=0.2)
    return sentinel


def _timed_run(actor, limit_s: float = 2 * WAIT_S) -> tuple[float, int]:
    """Run ``actor`` to its end (as Actor.run, within ``limit_s``: under heavy load a kafka-python consumer was
    seen never to join its group); rows per second between its first and last step, and its steps."""
    marks: list[tuple[float, int]] = []
    after_step = actor.after_step

    def timed_after_step() -> None:
        after_step()
        marks.append((time.perf_counter(), actor.stats.rows_trained))

    actor.after_step = timed_after_step
    deadline = time.monotonic() + limit_s
    actor.open()
    try:
        while not actor.stopping:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the learner did not finish within {limit_s:.0f} s: {actor.status()}")
            actor.poll()
    finally:
        actor.close()
    (first_s, first_rows), (last_s, last_rows) = marks[0], marks[-1]
    return (last_rows - first_rows) / (last_s - first_s), len(marks)


def _one_arm(bootstrap: str, every_steps: int | None, epochs: int) -> dict:
    """One learner run; with a sentinel (scoring every ``every_steps``) unless that is None."""
    from h3spark.actors import Actor, KafkaTransport

    tag, with_sentinel = uuid.uuid4().hex[:10], every_steps is not None
    learner_config, sentinel_config, topics = _learner_and_sentinel(tag, every_steps)
    with tempfile.TemporaryDirectory(prefix="h3spark-sentinel-") as workdir, KafkaTransport(bootstrap) as transport:
        _publish_streams(transport, topics, epochs)
        network = f"bench-sentinel-{tag}"
        sentinel = _start_sentinel(transport, sentinel_config, workdir, network) if with_sentinel else None
        try:
            learner = Actor.from_config("learner", learner_config, transport, workdir, network=network)
            rows_per_s, steps = _timed_run(learner)
            evaluations = 0
            if sentinel is not None:
                while sentinel.active():
                    sentinel.poll(timeout_s=0.2)
                evaluations = sentinel.status()["sentinel"].get("evaluations", 0)
        finally:
            if sentinel is not None:
                sentinel.stop()
                sentinel.close()
    return {"rows_per_s": rows_per_s, "steps": steps, "evaluations": evaluations}


def sentinel_figures(quick: bool = False, bootstrap: str = "127.0.0.1:9092") -> dict:
    """The learner alone, with the conf's sentinel (every ``publish_parameters.every_steps``) and with one scoring
    every 10 steps, in turn (the order rotates each repeat); medians."""
    sizes = QUICK if quick else FULL
    arms = {"without": None, "with": 0, "with_every_10": 10}
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    for repeat in range(sizes["repeats"]):
        order = list(arms)[repeat % 3:] + list(arms)[:repeat % 3]
        for arm in order:
            runs[arm].append(_one_arm(bootstrap, arms[arm], sizes["learner_epochs"]))
            print(f"sentinel arm {arm}, run {repeat + 1}: learner {runs[arm][-1]['rows_per_s']:,.0f} rows/s",
                  file=sys.stderr, flush=True)
    median = {arm: statistics.median(run["rows_per_s"] for run in found) for arm, found in runs.items()}
    every = _conf("actors_sentinel.yaml").actors.actors["learner"].publish_parameters.every_steps
    return {"sentinel_cost": _paired_cost(runs, "with"), "sentinel_every_steps": every,
            "sentinel_cost_every_10": _paired_cost(runs, "with_every_10"),
            "learner_rows_per_s": {arm: round(value) for arm, value in median.items()}, "sentinel_runs": runs}


def _paired_cost(runs: dict[str, list[dict]], arm: str) -> float:
    """The median over repeats of 1 - with / without, each from runs next to each other (the machine's load
    drifts between repeats more than within one)."""
    pairs = zip(runs[arm], runs["without"])
    return round(statistics.median(1.0 - run["rows_per_s"] / alone["rows_per_s"] for run, alone in pairs), 3)


def print_sentinel(figures: dict) -> None:
    runs, rates = figures["sentinel_runs"], figures["learner_rows_per_s"]
    print("sentinel (conf/actors_sentinel.yaml's learner on the broker; its sentinel a process of its own):")
    labels = {"without": "alone", "with": f"scored every {figures['sentinel_every_steps']} steps",
              "with_every_10": "scored every 10 steps"}
    for arm, label in labels.items():
        found = runs[arm]
        each = ", ".join(f"{run['rows_per_s']:,.0f}" for run in found)
        print(f"  {label:<24} learner {each} rows/s (median {rates[arm]:,}; {found[0]['steps']} steps, "
              f"{found[0]['evaluations']} versions scored)")
    print(f"  sentinel_cost {figures['sentinel_cost']:.3f} (every {figures['sentinel_every_steps']} steps); "
          f"every 10 steps {figures['sentinel_cost_every_10']:.3f}")


def sentinel_cost(quick: bool = False, bootstrap: str = "127.0.0.1:9092") -> float:
    """benchmarks/actors.py's figure: 1 - the learner's throughput with its sentinel / without."""
    figures = sentinel_figures(quick, bootstrap)
    print_sentinel(figures)
    return figures["sentinel_cost"]


# --- (c) transfer ------------------------------------------------------------------------------

def transfer_figures(level: float = 0.93) -> dict:
    from h3spark.actors._showcases import run_transfer

    with tempfile.TemporaryDirectory(prefix="h3spark-transfer-") as workdir:
        result = run_transfer(_conf("actors_transfer_source.yaml"), _conf("actors_transfer.yaml"), workdir, level)
    print(f"transfer ({result.source_engine} source's first layer -> {result.target_engine} target): held-out "
          f"accuracy {level} at step {result.steps['target']}, from scratch at step {result.steps['scratch']}")
    return {"transfer_level": level, "transfer_steps_target": result.steps["target"],
            "transfer_steps_scratch": result.steps["scratch"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, shorter runs (a few minutes)")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="the broker (h3spark services up kafka)")
    parser.add_argument("--skip-transfer", action="store_true", help="leave out the transfer showcase")
    args = parser.parse_args(argv)
    figures = distillation_figures(args.quick)
    print_distillation(figures)
    figures.update(sentinel_figures(args.quick, args.bootstrap))
    print_sentinel(figures)
    if not args.skip_transfer:
        figures.update(transfer_figures())
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
