"""Item 8 on the broker: an actor process killed (SIGKILL) mid-run whose group's last commits were lost (the
process died before they reached the broker) is started again with the same group: it resumes from its snapshot's
step, not from 0; the messages its snapshot's model holds come again and are skipped, counted as duplicates; every
message after them is trained once."""

import os
import signal
import time

import pytest

from h3spark.actors import KafkaTransport, Snapshots, decode
from tests.integration.kafka.test_actor_showcases import (finish, publish_digits, snapshotting_learner, start_network,
                                                          state_of, wait_state)

REWIND_DEADLINE_S = 180.0  # the killed member stays in its group until its session times out


def rewind_group(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Commit ``offset`` for the group, as if its later commits never reached the broker (retried while the
    killed member still holds the group: the broker takes a commit from outside only for an empty group)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    partition = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.assign([partition])
    deadline, failure = time.monotonic() + REWIND_DEADLINE_S, None
    try:
        while time.monotonic() < deadline:
            try:
                consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
                return
            except KafkaError as error:
                failure = error
            time.sleep(1.0)
    finally:
        consumer.close()
    raise AssertionError(f"could not rewind group {group!r}: {failure!r}")


@pytest.mark.timeout(900)
def test_a_killed_actor_skips_what_its_snapshot_holds_when_it_comes_again_and_trains_the_rest(tmp_path,
                                                                                               kafka_bootstrap):
    path, data = snapshotting_learner(tmp_path, kafka_bootstrap)
    name, workdir = data["name"], tmp_path / "w"
    topic, group = f"{name}.raw", f"{name}.learner"
    publish_digits(kafka_bootstrap, topic, slice(0, 32 * 14), per_message=32)  # 14 steps: the last snapshot at 10
    first = start_network(path, workdir)
    state = wait_state(workdir, name, lambda s: s["actors"].get("learner", {}).get("step", 0) == 14, first)
    os.kill(state["actors"]["learner"]["pid"], signal.SIGKILL)
    code, out = finish(first)
    assert code == 1 and "1 actor(s) failed: learner" in out, out
    snapshot = Snapshots(f"file://{workdir}/actors/{name}/learner/snapshots").latest()
    with KafkaTransport(kafka_bootstrap) as transport:
        sent = [decode(record.value).id for record in transport.read(topic)]
    assert snapshot.step == 10 and snapshot.seen_ids() == sent[:9]        # taken in message 9's step
    rewind_group(kafka_bootstrap, group, topic, 0)
    with KafkaTransport(kafka_bootstrap) as transport:
        assert transport.committed(group, topic) == 0
    publish_digits(kafka_bootstrap, topic, slice(32 * 14, 32 * 30), per_message=32, end=True)

    code, out = finish(start_network(path, workdir))                     # the same network, the same group
    assert code == 0, out
    report = state_of(workdir, name)["actors"]["learner"]
    assert report["duplicates"] == 9                                     # messages 0..8: in the snapshot's model
    assert report["step"] == snapshot.step + (30 - 9)                   # 9..29 trained once on the restored model
    assert report["by_kind"]["raw"] == snapshot.state["stats"]["by_kind"]["raw"] + (30 - 9) == 30
    assert report["rows_trained"] == 32 * (10 + 21) and report["state"] == "stopped"
