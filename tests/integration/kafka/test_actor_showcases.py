"""The actor showcases on the real broker, each actor a process of its own: (a) online learning reaches its stated
held-out accuracy; (e) a learner joins the running network and leaves it (``h3spark actors add|status|remove``)
and the first goes on; (8) an actor killed mid-stream and started again with the same group resumes from its
group's committed offsets and its last snapshot, handling no message twice."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from h3spark.actors import KafkaTransport, Snapshots, decode, end_marker, raw_envelope, source_records
from h3spark.actors._registry import read_state
from h3spark.cli import main
from h3spark.config._actors import ProducerSourceConfig

ROOT = Path(__file__).resolve().parents[3]
ONLINE_LEVEL = 0.90
DEADLINE_S = 240.0


def network_config(tmp_path, conf: str, edit) -> tuple[str, dict]:
    """A copy of conf/CONF with a fresh network name and topics (a broker keeps old topics), edited by ``edit``."""
    data = yaml.safe_load((ROOT / "conf" / conf).read_text())
    data["name"] = f"{data['name']}-{uuid.uuid4().hex[:8]}"
    edit(data, data["name"])
    path = tmp_path / "network.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path), data


def snapshotting_learner(tmp_path, kafka_bootstrap: str) -> tuple[str, dict]:
    """conf/actors_online.yaml's learner over Kafka, alone (no producer), reading ``NAME.raw``: one step per
    message of 32 rows (its pipeline fitted from the start), a snapshot every 5 steps, no outputs."""
    def edit(data, name):
        data["actors"].update(transport="kafka", bootstrap_servers=kafka_bootstrap, progress_s=0.5, producers={})
        learner = data["actors"]["actors"]["learner"]
        learner.update(inputs={f"{name}.raw": "train"}, snapshot_every_steps=5, outputs={}, training={"batch_size": 32})
        learner["pipeline"]["steps"][0]["max_value"] = 16
        learner.pop("publish_parameters")

    return network_config(tmp_path, "actors_online.yaml", edit)


def start_network(path: str, workdir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "h3spark.cli._main", "actors", path, "--workdir", str(workdir)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def state_of(workdir: Path, network: str) -> dict:
    return read_state(f"file://{workdir}/actors/{network}") or {"actors": {}}


def wait_state(workdir: Path, network: str, condition, process=None) -> dict:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        state = state_of(workdir, network)
        if condition(state):
            return state
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the network ended ({process.returncode}) first:\n{process.stdout.read()}")
        assert time.monotonic() < deadline, f"not reached; state {state}"
        time.sleep(0.3)


def handled(state: dict, actor: str) -> int:
    return state["actors"].get(actor, {}).get("by_kind", {}).get("raw", 0)


def publish_digits(bootstrap: str, topic: str, rows: slice, per_message: int = 64, end: bool = False) -> None:
    records, _ = source_records(ProducerSourceConfig(bundled="digits"), "json", ".")
    with KafkaTransport(bootstrap) as transport:
        for begin in range(rows.start, rows.stop, per_message):
            transport.publish(topic, raw_envelope("stream", records[begin:min(begin + per_message, rows.stop)], "json"))
        if end:
            transport.publish(topic, end_marker("stream"))
        transport.flush()


def finish(process: subprocess.Popen) -> tuple[int, str]:
    out, _ = process.communicate(timeout=DEADLINE_S)
    return process.returncode, out


def test_online_learning_on_the_broker_passes_its_stated_held_out_accuracy(tmp_path, kafka_bootstrap):
    def edit(data, name):
        data["actors"].update(transport="kafka", bootstrap_servers=kafka_bootstrap)
        data["actors"]["producers"]["digits"]["topic"] = f"{name}.raw"
        data["actors"]["actors"]["learner"]["inputs"] = {f"{name}.raw": "train"}
        data["actors"]["actors"]["learner"]["outputs"] = {"parameters": f"{name}.weights"}

    path, data = network_config(tmp_path, "actors_online.yaml", edit)
    code, out = finish(start_network(path, tmp_path / "w"))
    assert code == 0, out
    report = state_of(tmp_path / "w", data["name"])["actors"]["learner"]
    assert report["state"] == "stopped" and "actor learner: launched (processes)" in out
    assert report["evaluated"]["rows"] == 359 and report["evaluated"]["accuracy"] >= ONLINE_LEVEL
    assert report["rows_trained"] == 3 * (1797 - 359) and report["duplicates"] == 0


def test_a_learner_joins_the_running_network_and_leaves_it_and_the_first_goes_on(tmp_path, kafka_bootstrap, capsys):
    def edit(data, name):
        data["actors"].update(bootstrap_servers=kafka_bootstrap, progress_s=0.5)
        data["actors"]["producers"]["digits"]["start"] = False  # the test is the stream, in steps
        for actor in data["actors"]["actors"].values():
            actor["inputs"] = {f"{name}.digits": "train"}

    path, data = network_config(tmp_path, "actors_membership.yaml", edit)
    name, topic, workdir = data["name"], f"{data['name']}.digits", tmp_path / "w"
    publish_digits(kafka_bootstrap, topic, slice(0, 640))
    network = start_network(path, workdir)
    try:
        wait_state(workdir, name, lambda s: handled(s, "learner1") >= 10, network)
        assert main(["actors", "add", path, "learner2", "--workdir", str(workdir)]) == 0
        wait_state(workdir, name, lambda s: handled(s, "learner2") >= 10, network)
        assert main(["actors", "status", "--workdir", str(workdir)]) == 0
        assert main(["actors", "remove", "learner2", "--workdir", str(workdir)]) == 0
        out = capsys.readouterr().out
        assert "actor learner2: running" in out and "actor learner2: removed" in out
        before = handled(state_of(workdir, name), "learner1")
        publish_digits(kafka_bootstrap, topic, slice(640, 1280))
        wait_state(workdir, name, lambda s: handled(s, "learner1") >= before + 10, network)  # the first goes on
        publish_digits(kafka_bootstrap, topic, slice(1280, 1280), end=True)
        code, out = finish(network)
    finally:
        if network.poll() is None:
            network.kill()
    assert code == 0, out
    state = state_of(workdir, name)
    assert state["actors"]["learner1"]["state"] == "stopped" and handled(state, "learner1") == 20
    assert state["actors"]["learner2"]["state"] == "removed" and 10 <= handled(state, "learner2") <= 10 + 10


def test_an_actor_killed_mid_stream_resumes_from_its_committed_offsets_and_last_snapshot(tmp_path, kafka_bootstrap):
    path, data = snapshotting_learner(tmp_path, kafka_bootstrap)
    name, topic, workdir = data["name"], f"{data['name']}.raw", tmp_path / "w"
    group = f"{name}.learner"
    publish_digits(kafka_bootstrap, topic, slice(0, 32 * 14), per_message=32)  # 14 steps: the last snapshot at 10
    first = start_network(path, workdir)
    state = wait_state(workdir, name, lambda s: s["actors"].get("learner", {}).get("step", 0) == 14, first)
    os.kill(state["actors"]["learner"]["pid"], signal.SIGKILL)
    code, out = finish(first)
    assert code == 1 and "1 actor(s) failed: learner" in out, out
    with KafkaTransport(kafka_bootstrap) as transport:
        committed = transport.committed(group, topic)
    snapshot = Snapshots(f"file://{workdir}/actors/{name}/learner/snapshots").latest()
    assert snapshot.step == 10 and snapshot.state["offsets"] == {f"{topic}/0": 9}  # taken in message 9's step
    assert 10 <= committed <= 14
    publish_digits(kafka_bootstrap, topic, slice(32 * 14, 32 * 30), per_message=32, end=True)

    code, out = finish(start_network(path, workdir))                     # the same network, the same group
    assert code == 0, out
    report = state_of(workdir, name)["actors"]["learner"]
    resumed = 30 - committed                                               # messages after the committed offset
    assert report["records_after_snapshot"] == committed - 9 > 0         # trained before the kill, not in the snapshot
    assert report["by_kind"]["raw"] == snapshot.state["stats"]["by_kind"]["raw"] + resumed
    assert report["step"] == snapshot.step + resumed and report["duplicates"] == 0


def test_h3spark_actors_produce_writes_a_producers_raw_records_to_the_broker(tmp_path, kafka_bootstrap, capsys):
    def edit(data, name):
        data["actors"].update(transport="kafka", bootstrap_servers=kafka_bootstrap)
        data["actors"]["producers"]["digits"].update(topic=f"{name}.raw", format="csv", epochs=1,
                                                     records_per_message=500)

    path, data = network_config(tmp_path, "actors_online.yaml", edit)
    assert main(["actors", "produce", path, "digits", "--workdir", str(tmp_path)]) == 0
    assert "records   1438" in capsys.readouterr().out
    with KafkaTransport(kafka_bootstrap) as transport:
        messages = [decode(record.value) for record in transport.read(f"{data['name']}.raw")]
    raw = [message for message in messages if message.kind == "raw"]
    assert [message.meta["records"] for message in raw] == [500, 500, 438, 359]
    assert raw[0].meta["columns"][-1] == "label" and messages[-1].meta == {"op": "end"}
