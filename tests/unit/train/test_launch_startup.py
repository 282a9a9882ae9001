"""What a launch does before its workers run: the channel's all-gather, the scheduler's port, roles started at once."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading

import pytest

from h3spark.train import distributed
from h3spark.train import _task
from h3spark.train._channel import DriverChannel, TaskChannel
from h3spark.train._roles import reserved_port


def gather_all(channel: DriverChannel, items: list[str]) -> list:
    """Every task gathers its item at once, each from its own thread; returns what each task got."""
    got: list = [None] * len(items)

    def task(index: int) -> None:
        connection = TaskChannel(*channel.address, channel.token, index)
        try:
            got[index] = connection.all_gather(items[index])
        except ConnectionError as error:
            got[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=task, args=(index,)) for index in reversed(range(len(items)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return got


def test_the_channel_gathers_every_tasks_item_in_task_order():
    with DriverChannel("127.0.0.1", num_tasks=3) as channel:
        got = gather_all(channel, ["zero", "one", "two"])
        assert got == [["zero", "one", "two"]] * 3
        assert channel.events.empty()  # a gather is answered, not reported as an event


def test_a_gather_without_the_jobs_token_or_with_a_task_out_of_range_is_dropped():
    with DriverChannel("127.0.0.1", num_tasks=2) as channel:
        replies = [io.BytesIO(), io.BytesIO()]

        def gather(token: str, task, item: str, reply) -> None:
            channel.receive(json.dumps({"token": token, "kind": "gather", "task": task, "item": item}).encode(), reply)

        gather("not-the-token", 1, "forged", replies[1])
        gather(channel.token, 7, "out of range", replies[1])
        gather(channel.token, 0, "zero", replies[0])
        assert replies[0].getvalue() == b""  # still waiting for task 1
        gather(channel.token, 1, "one", replies[1])
    answers = [json.loads(reply.getvalue()) for reply in replies]
    assert [answer["items"] for answer in answers] == [["zero", "one"], ["zero", "one"]]
    assert all(answer["token"] == channel.token and answer["kind"] == "gathered" for answer in answers)


def test_a_task_waiting_on_a_gather_gets_an_error_when_the_driver_closes_the_channel():
    results: list = []
    with DriverChannel("127.0.0.1", num_tasks=2) as channel:
        task = TaskChannel(*channel.address, channel.token, 0)
        waiting = threading.Thread(target=lambda: results.append(_gather_or_error(task, "zero")), daemon=True)
        waiting.start()
    waiting.join(30)
    task.close()
    assert not waiting.is_alive(), "the task still waits for a gather the driver will never answer"
    assert len(results) == 1 and isinstance(results[0], ConnectionError)


def _gather_or_error(channel: TaskChannel, item: str):
    try:
        return channel.all_gather(item)
    except ConnectionError as error:
        return error


def test_a_reserved_port_is_kept_from_others_but_a_reuse_address_server_listens_on_it():
    with reserved_port("127.0.0.1") as held:
        port = held.getsockname()[1]
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))  # someone else's plain bind: refused while held
        with socket.socket() as server:  # ZeroMQ's listener, as ps-lite's scheduler binds it
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("0.0.0.0", port))
            server.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass


SCHEDULER_WAITS_FOR_WORKERS = (
    "import os, sys, time\n"
    "if os.environ['DMLC_ROLE'] == 'scheduler':\n"
    "    folder, deadline = os.environ['H3SPARK_TEST_FOLDER'], time.monotonic() + 120\n"
    "    while len(os.listdir(folder)) < int(os.environ['DMLC_NUM_WORKER']) and time.monotonic() < deadline:\n"
    "        time.sleep(0.01)\n"
    "    sys.exit(0 if len(os.listdir(folder)) else 5)\n")


def mark_started():
    import os

    open(os.path.join(os.environ["H3SPARK_TEST_FOLDER"], os.environ["H3SPARK_TASK"]), "w").close()
    return {"port": os.environ["DMLC_PS_ROOT_PORT"], "role": os.environ["DMLC_ROLE"]}


def test_servers_and_workers_start_without_waiting_for_the_scheduler_to_listen(tmp_path, monkeypatch):
    # a scheduler that never listens and ends only once both workers ran: the launch must not wait for it first
    monkeypatch.setattr(_task, "PS_ROLE_COMMAND", [sys.executable, "-c", SCHEDULER_WAITS_FOR_WORKERS])
    results = distributed(mark_started, num_workers=2, num_servers=1, launcher="local", echo=False,
                          env={"H3SPARK_TEST_FOLDER": str(tmp_path)})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["0", "1"]
    assert [r["role"] for r in results] == ["worker", "worker"]
    assert len({r["port"] for r in results}) == 1 and int(results[0]["port"]) > 0


def test_gathered_items_are_json_the_tasks_agree_on():
    # what task 0 shares through the gather: its host and the scheduler's port
    with DriverChannel("127.0.0.1", num_tasks=2) as channel:
        items = [json.dumps({"host": "127.0.0.1", "port": 9091}), json.dumps({"host": "127.0.0.1"})]
        got = gather_all(channel, items)
    assert [json.loads(item)["host"] for item in got[1]] == ["127.0.0.1", "127.0.0.1"]
    assert json.loads(got[1][0])["port"] == 9091
