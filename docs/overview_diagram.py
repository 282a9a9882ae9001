"""Draws docs/overview.svg, the picture of docs/overview.md: what runs where.

    .venv/bin/python docs/overview_diagram.py          # rewrites docs/overview.svg

Boxes are processes or services, arrows what travels between them. The names (ports, topics,
paths) are those of docs/overview.md; change both together.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).with_name("overview.svg")
BLUE, GREEN, ORANGE, GREY, PURPLE, WHITE = "#dbe9f6", "#e2f0d9", "#fde9d9", "#eeeeee", "#ece4f4", "#ffffff"

# name: (x, y, width, height, colour, title, subtitle, lines), on an 18 x 11 canvas (inches), y upwards
BOXES = {
    "driver": (0.2, 5.4, 5.2, 5.4, BLUE, "Driver", "h3spark CLI, spark-submit jobs/, a notebook", [
        "SparkSession (spark.master)",
        "launch channel: tasks report,",
        "   the scheduler's address",
        "experiment dispatcher: trials -> slots",
        "actor / gate network: control, status",
        "h3spark predict: a Spark job, publish",
        "h3spark serve: KServe V2 HTTP :8000",
        "h3spark tensorboard :6006"]),
    "executors": (6.4, 5.4, 5.2, 5.4, GREEN, "Spark executors", "standalone :7077, YARN or Kubernetes", [
        "preprocess: fit scans, Arrow batches",
        "experiment trials: one slot each",
        "training: a barrier stage,",
        "   one task per worker:",
        "   task 0: ps-lite scheduler",
        "   servers spread over the tasks",
        "   each task: an MXNet worker",
        "   (kvstore dist_*), or a torch",
        "   DDP rank (gloo / NCCL)",
        "actors / gates (placement: spark)",
        "predict: model + fitted pipeline"]),
    "hdfs": (12.6, 5.4, 5.2, 5.4, ORANGE, "HDFS or file://", "hdfs://NN:8020, WebHDFS :9870; the workdir", [
        "datasets/NAME/_versions/0000000N/",
        "   Parquet, _manifest.json, _SUCCESS",
        "datasets/NAME_quarantine/",
        "experiments/NAME/",
        "   trials/, trials.jsonl, best.json",
        "checkpoints/NAME/run-R/step-N/",
        "   model.safetensors",
        "logs/NAME/ (TensorBoard)",
        "actors/NETWORK/ACTOR/snapshots/"]),
    "browser": (0.2, 0.2, 2.8, 4.4, WHITE, "Browser", "", [
        "network page:", " curves, draw", " a digit", "worker page:", " Downpour SGD", " worker"]),
    "actors": (3.6, 0.2, 4.9, 4.4, PURPLE, "Actors and gates", "threads, processes or Spark tasks", [
        "actor: model + its own pipeline;",
        "   inputs: train/predict/evaluate",
        "   outputs: predictions,",
        "   parameters, validation",
        "sentinels score the actors",
        "gates: layers of one spec;",
        "   forward/backward messages",
        "web bridge :8765 (an actor)"]),
    "kafka": (9.1, 0.2, 5.0, 4.4, GREY, "Kafka (KRaft)", "bootstrap_servers, :9092", [
        "source.topic, producers' topics",
        "actor inputs and outputs",
        "NETWORK.control, NETWORK.status",
        "TOPIC.dead (dead letters)",
        "gates: NETWORK.RUN.ROLE,",
        "   NETWORK.RUN.status",
        "MODEL.requests -> MODEL.replies",
        "h3spark-experiment-metrics"]),
    "postgres": (14.7, 0.2, 3.1, 4.4, GREY, "PostgreSQL", "jdbc:postgresql://H:5433", [
        "source.format:", "   jdbc", "predict.output", "   .jdbc", "(read and written", " by the executors)"]),
}

# (from, to, label, point on the first box, point on the second), points as fractions of a box
ARROWS = [
    ("driver", "executors", "tasks,\nresults", (1, 0.55), (0, 0.55)),
    ("executors", "hdfs", "Parquet,\ncheckpoints", (1, 0.55), (0, 0.55)),
    ("driver", "actors", "start, add, stop", (0.82, 0), (0.5, 1)),
    ("executors", "kafka", "records", (0.75, 0), (0.4, 1)),
    ("executors", "postgres", "JDBC", (1, 0.08), (0.3, 1)),
    ("browser", "actors", "WebSocket", (1, 0.5), (0, 0.5)),
    ("actors", "kafka", "envelopes", (1, 0.5), (0, 0.5)),
]


def _point(name: str, fraction: tuple[float, float]) -> tuple[float, float]:
    x, y, w, h = BOXES[name][:4]
    return x + w * fraction[0], y + h * fraction[1]


def _box(ax, x, y, w, h, colour, title, subtitle, lines) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12", fc=colour, ec="#555555"))
    ax.text(x + 0.15, y + h - 0.3, title, fontsize=13, fontweight="bold", va="center")
    ax.text(x + 0.15, y + h - 0.68, subtitle, fontsize=10, style="italic", va="center")
    for index, line in enumerate(lines):
        indent = len(line) - len(line.lstrip(" "))  # SVG collapses plain spaces: keep the indent with no-break ones
        ax.text(x + 0.15, y + h - 1.15 - 0.38 * index, "\u00a0" * indent + line.lstrip(" "), fontsize=10, va="center",
                family="monospace")


def draw(out: Path = OUT) -> Path:
    """Draw the boxes and arrows into ``out`` (matplotlib is imported here: the test reads the data only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "h3spark-overview"})
    fig = plt.figure(figsize=(18, 11))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 18)
    ax.set_ylim(0, 11)
    ax.axis("off")
    for box in BOXES.values():
        _box(ax, *box)
    for start, end, label, start_at, end_at in ARROWS:
        (x0, y0), (x1, y1) = _point(start, start_at), _point(end, end_at)
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="<|-|>", mutation_scale=14, color="#333333",
                                     connectionstyle="arc3,rad=0.0"))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.15, label, fontsize=9, ha="center", va="bottom",
                bbox={"fc": "white", "ec": "none", "pad": 1})
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
