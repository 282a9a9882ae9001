"""Where a network's actors run (launcher: auto): the bus and the master Spark would run on decide."""

import pytest

from h3spark.actors._network import choose_launcher
from h3spark.config import ActorsConfig, SparkConfig

ACTOR = {"learner": {"inputs": {"raw": "train"}, "model": {"engine": "numpy", "mlp": {"input_shape": [4], "hidden": [4],
                                                                                    "classes": 2}}}}


@pytest.mark.parametrize("transport, master, expected", [
    ("kafka", "spark://10.1.2.3:7077", "spark"),
    ("kafka", "yarn", "spark"),
    ("kafka", "local[2]", "processes"),
    ("memory", "spark://10.1.2.3:7077", "threads"),
])
def test_auto_picks_the_launcher_from_the_transport_and_the_master(monkeypatch, transport, master, expected):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)  # not under spark-submit: the config's master
    section = ActorsConfig.model_validate({"transport": transport, "bootstrap_servers": "127.0.0.1:9092", "actors": ACTOR})
    assert choose_launcher(section, SparkConfig(master=master)) == expected


def test_a_launcher_the_config_names_is_kept_whatever_the_master():
    section = ActorsConfig.model_validate({"transport": "kafka", "bootstrap_servers": "127.0.0.1:9092",
                                           "launcher": "processes", "actors": ACTOR})
    assert choose_launcher(section, SparkConfig(master="spark://10.1.2.3:7077")) == "processes"
