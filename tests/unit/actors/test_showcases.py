"""The actor showcases on the in-process bus (tests/integration/kafka/test_actor_showcases.py runs them on the
broker): (a) online learning reaches its stated held-out accuracy, (e) a learner joins a running network and
leaves it, and the first goes on."""

import time
from pathlib import Path

from h3spark.actors import Network, end_marker, raw_envelope, source_records
from h3spark.config import load_config
from h3spark.config._actors import ProducerSourceConfig
from h3spark.train import validation_context

CONF = Path(__file__).resolve().parents[3] / "conf"
ONLINE_LEVEL = 0.90  # conf/actors_online.yaml's stated held-out accuracy
DEADLINE_S = 120.0


def test_online_learning_passes_its_stated_held_out_accuracy(tmp_path):
    config = load_config(CONF / "actors_online.yaml", context=validation_context())
    lines = []
    result = Network.from_config(config, tmp_path, progress=lines.append).run()
    report = result.reports["learner"]
    assert result.states == {"learner": "stopped"} and result.producers["digits"]["state"] == "done"
    assert report["evaluated"]["rows"] == 359 and report["evaluated"]["accuracy"] >= ONLINE_LEVEL
    assert report["rows_trained"] == 3 * (1797 - 359) and report["quarantined"] == 0
    assert lines[0] == "actor learner: launched (threads)" and lines[-1].startswith("actor learner: stopped")
    assert (tmp_path / "actors" / "actors-online" / "network.json").exists()


def publish_digits(network, rows: slice, sender="stream"):
    records, _ = source_records(ProducerSourceConfig(bundled="digits"), "json", ".")
    for begin in range(rows.start, rows.stop, 64):
        network.transport.publish("membership.digits", raw_envelope(sender, records[begin:min(begin + 64, rows.stop)],
                                                                     "json"))


def follow(network, condition):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not reached; status {network.status()}"
        network.poll(timeout_s=0.05)


def test_a_learner_joins_a_running_network_and_leaves_it_and_the_first_goes_on(tmp_path):
    overrides = ["actors.transport=memory", "actors.producers.digits.start=false", "actors.progress_s=0.05"]
    config = load_config(CONF / "actors_membership.yaml", overrides=overrides, context=validation_context())
    network = Network.from_config(config, tmp_path, progress=lambda line: None)
    network.start()
    handled = lambda name: network.status().get(name, {}).get("handled", 0)  # noqa: E731
    publish_digits(network, slice(0, 640))
    follow(network, lambda: handled("learner1") >= 10)
    network.add("learner2")
    follow(network, lambda: handled("learner2") >= 10)                   # it reads the topic from its start
    network.remove("learner2")
    follow(network, lambda: network.status()["learner2"]["state"] == "removed")
    before = handled("learner1")
    publish_digits(network, slice(640, 1280))
    follow(network, lambda: handled("learner1") >= before + 10)          # the first goes on
    assert network.status()["learner2"]["handled"] == before_removed(network)
    network.transport.publish("membership.digits", end_marker("stream"))
    follow(network, lambda: not network.active())
    network.close()
    assert network.result().states == {"learner1": "stopped", "learner2": "removed"}
    assert network.result().reports["learner1"]["by_kind"] == {"raw": 20, "control": 2}  # + the end, learner2's stop


def before_removed(network) -> int:
    """learner2's count when it left: its final report, which no later message changed."""
    return network.result().reports["learner2"]["handled"]
