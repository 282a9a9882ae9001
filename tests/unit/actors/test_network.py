"""``h3spark actors`` and the Network on the in-process bus: runs, state file, status, refusals with their fix."""

import json
import os
import socket
from pathlib import Path

import pytest

from h3spark.actors import Network
from h3spark.actors._registry import network_home, read_state, require_running, write_state
from h3spark.cli import main
from h3spark.config import load_config
from h3spark.errors import UsageError

CONF = Path(__file__).resolve().parents[3] / "conf"
ONLINE = str(CONF / "actors_online.yaml")
QUICK = ["--set", "actors.producers.digits.epochs=1", "--set", "actors.producers.digits.holdout_fraction=0.05"]


def write_config(tmp_path, text: str) -> str:
    path = tmp_path / "network.yaml"
    path.write_text(text)
    return str(path)


def test_the_cli_runs_a_network_prints_progress_and_a_summary_and_status_reads_its_state(tmp_path, capsys):
    assert main(["actors", ONLINE, "--workdir", str(tmp_path), *QUICK]) == 0
    out = capsys.readouterr().out
    assert "actor learner: launched (threads)" in out and "h3spark actors actors-online: done" in out
    assert "producer digits  done, 1707 records + 90 held out in 29 messages" in out
    state = read_state(network_home(f"file://{tmp_path}/actors", "actors-online"))
    assert state["state"] == "stopped" and state["actors"]["learner"]["state"] == "stopped"
    assert state["actors"]["learner"]["step"] == 54 and state["actors"]["learner"]["evaluated"]["rows"] == 90
    assert main(["actors", "status", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("network actors-online: stopped (threads, memory transport;")
    assert "actor learner: stopped, 30 messages, step 54" in out          # 29 of records, the end marker


def test_a_network_that_is_not_running_cannot_be_changed(tmp_path, capsys):
    assert main(["actors", ONLINE, "--workdir", str(tmp_path), *QUICK]) == 0
    capsys.readouterr()
    assert main(["actors", "remove", "learner", "--workdir", str(tmp_path)]) == 2
    assert "the network 'actors-online' is not running (state 'stopped')" in capsys.readouterr().err
    assert main(["actors", "add", ONLINE, "learner", "--workdir", str(tmp_path)]) == 2
    assert "is not running" in capsys.readouterr().err


def test_a_running_network_on_the_in_process_bus_is_out_of_reach_of_other_processes(tmp_path):
    home = f"file://{tmp_path}/actors/n"
    write_state(home, {"network": "n", "state": "running", "transport": {"kind": "memory"},
                       "supervisor": {"pid": os.getpid(), "host": socket.gethostname()}, "actors": {}})
    with pytest.raises(UsageError, match="in-process bus of process .* Use transport: kafka"):
        require_running(read_state(home))


@pytest.mark.parametrize("argv, message", [
    (["actors", "add", ONLINE], "'h3spark actors add' takes CONFIG NAME. Got"),
    (["actors", ONLINE, "extra"], "takes one config"),
    (["actors", "status", "--set", "a=1"], "take no --set"),
    (["actors", ONLINE, "--network", "x"], "takes no --network"),
    (["actors", "status"], "found no network under"),
    (["actors", "add", ONLINE, "nobody"], "describes no actor 'nobody'; it has learner"),
    (["actors", "produce", ONLINE, "digits"], "a producer run alone needs transport: kafka"),
    (["actors", "produce", ONLINE, "other"], "describes no producer 'other'; it has digits"),
])
def test_usage_errors_exit_2_and_say_how_to_fix_them(tmp_path, capsys, argv, message):
    assert main([*argv, "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_config_without_an_actors_section_or_with_a_bad_one_exits_2(tmp_path, capsys):
    plain = write_config(tmp_path, "name: plain\n")
    assert main(["actors", plain, "--workdir", str(tmp_path)]) == 2
    assert "the config has no actors: section" in capsys.readouterr().err
    bad = write_config(tmp_path, "name: bad\nactors:\n  transport: kafka\n  actors:\n    a:\n      model: {mlp: "
                                 "{input_shape: [4], classes: 2}}\n      inputs: {t: predict}\n")
    assert main(["actors", bad, "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "line 5  actors.actors.a.outputs: an input used to predict needs a topic" in err and "Traceback" not in err
    assert main(["actors", ONLINE, "--workdir", str(tmp_path), "--set", "actors.actors.learner.training.schedule=cosine"]) == 2
    err = capsys.readouterr().err
    assert "actors.actors.learner.training.total_steps: the cosine schedule needs total_steps >= 1" in err, err


def test_an_actor_that_fails_is_named_and_the_run_exits_1_while_the_others_finish(tmp_path, capsys):
    config = write_config(tmp_path, """
name: failing
actors:
  producers:
    p: {source: {bundled: iris}, topic: t, format: json}
  actors:
    good:
      inputs: {t: train}
      model: {mlp: {input_shape: [4], classes: 3}}
      pipeline: {steps: [{kind: image, columns: [features], shape: [4], max_value: 8}]}
    broken:
      inputs: {t: train}
      model: {file: models/missing.safetensors}
""")
    assert main(["actors", config, "--workdir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "stopped, step 5, 4 messages" in captured.out and "failed, step 0, 0 messages" in captured.out
    assert "1 actor(s) failed: broken" in captured.err and "no model at" not in captured.out
    assert "missing.safetensors" in captured.err and "Traceback" not in captured.err


def test_the_python_api_refuses_unknown_and_repeated_members(tmp_path):
    config = load_config(ONLINE, overrides=["actors.producers.digits.start=false"])
    network = Network.from_config(config, tmp_path, progress=lambda line: None)
    network.start()
    try:
        with pytest.raises(UsageError, match="no actor 'ghost' in the network's config"):
            network.add("ghost")
        with pytest.raises(UsageError, match="already in the network"):
            network.add("learner")
        with pytest.raises(UsageError, match="no running actor 'ghost'"):
            network.remove("ghost")
    finally:
        network.stop()
        network.close()
    assert network.result().states == {"learner": "stopped"}
    state = json.loads((tmp_path / "actors" / "actors-online" / "network.json").read_text())
    assert state["state"] == "stopped" and state["supervisor"]["pid"] == os.getpid()


@pytest.mark.parametrize("signum", [15, 2])
def test_an_actor_process_stops_cleanly_on_sigterm_or_sigint_with_its_snapshot(tmp_path, signum):
    import subprocess
    import sys
    import time

    config = load_config(ONLINE).actors.actors["learner"].model_dump(mode="json")
    settings = {"network": "n", "name": "learner", "config": config, "workdir": str(tmp_path),
                "transport": {"kind": "memory"}, "home": f"file://{tmp_path}/learner", "progress_s": 60}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    process = subprocess.Popen([sys.executable, "-m", "h3spark.actors", str(tmp_path / "settings.json")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while not any("actor started" in line for line in lines):
        assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
        lines.append(process.stdout.readline())
    process.send_signal(signum)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    assert "actor stopped at step 0 state=stopped" in out
    assert (tmp_path / "learner" / "snapshots" / "step-00000000" / "state.json").exists()


@pytest.mark.timeout(120)  # before the network ended a failed actor's streams, the student waited for it forever
def test_the_readers_of_a_failed_actor_stop_at_the_end_the_network_publishes_in_its_place(tmp_path, capsys):
    config = write_config(tmp_path, """
name: failing-teacher
actors:
  producers:
    p: {source: {bundled: iris}, topic: t, format: json}
  actors:
    teacher:
      inputs: {t: predict}
      model: {file: models/missing.safetensors}
      outputs: {predictions: teacher.out}
    student:
      inputs: {teacher.out: train}
      model: {mlp: {input_shape: [4], classes: 3}}
""")
    assert main(["actors", config, "--workdir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "teacher: ended its stream on teacher.out in its place (it failed)" in captured.out
    assert "1 actor(s) failed: teacher" in captured.err and "Traceback" not in captured.err
    assert "student" in captured.out and "failed, step 0, 0 messages" in captured.out
