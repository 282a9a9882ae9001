"""A running network's state file, and how another process finds the network and talks to it.

    WORKDIR/actors/NETWORK/network.json    written by the network as it runs: its transport, launcher,
                                           the supervising process, and each actor's last report
    WORKDIR/actors/NETWORK/ACTOR/          each actor's snapshots, quarantine (and settings and log
                                           when it runs as a process)

``h3spark actors add|remove|status`` read the state file and send commands over the network's
control topic (see :mod:`h3spark.actors._control`); the network applies them and writes the file.
"""

from __future__ import annotations

import json
import os
import socket
import time

from h3spark.actors import _control as control
from h3spark.actors._child import make_transport
from h3spark.errors import UsageError
from h3spark.storage import filesystem_for, join_uri, local_path

STATE_NAME = "network.json"


def network_home(actors_dir: str, network: str) -> str:
    return join_uri(actors_dir, network)


def write_state(home: str, state: dict) -> None:
    """Replace the state file whole (readers never see half of it)."""
    uri = join_uri(home, STATE_NAME)
    data = json.dumps(state, indent=1, sort_keys=True, default=str).encode()
    fs = filesystem_for(uri)
    fs.makedirs(home)
    if uri.startswith("file://"):
        path = local_path(uri)
        with open(path + ".tmp", "wb") as handle:
            handle.write(data)
        os.replace(path + ".tmp", path)
        return
    fs.delete(uri + ".tmp")
    fs.write_bytes(uri + ".tmp", data)
    fs.delete(uri)
    fs.rename(uri + ".tmp", uri)


def read_state(home: str) -> dict | None:
    uri = join_uri(home, STATE_NAME)
    fs = filesystem_for(uri)
    return json.loads(fs.read_bytes(uri)) if fs.exists(uri) else None


def find_network(actors_dir: str, network: str | None) -> tuple[str, dict]:
    """The home and state of ``network`` under ``actors_dir`` (the only one there when None)."""
    fs = filesystem_for(actors_dir)
    names = [name for name in (fs.listdir(actors_dir) if fs.exists(actors_dir) else [])
             if fs.exists(join_uri(actors_dir, name, STATE_NAME))]
    if network is None:
        if len(names) != 1:
            found = f"networks {', '.join(names)}" if names else "no network"
            raise UsageError(f"found {found} under {actors_dir}; name one with --network NAME (or --workdir DIR "
                             "for another workdir).")
        network = names[0]
    state = read_state(network_home(actors_dir, network))
    if state is None:
        raise UsageError(f"no network {network!r} under {actors_dir} (it has {', '.join(names) or 'none'}); start it "
                         f"with: h3spark actors CONFIG")
    return network_home(actors_dir, network), state


def require_running(state: dict) -> None:
    """Refuse to command a network that is over, or that runs on the in-process bus of another process."""
    network = state["network"]
    if state.get("state") != "running" or not _supervisor_alive(state.get("supervisor", {})):
        raise UsageError(f"the network {network!r} is not running (state {state.get('state')!r}); start it with: "
                         "h3spark actors CONFIG")
    if state["transport"]["kind"] == "memory":
        raise UsageError(f"the network {network!r} runs on the in-process bus of process "
                         f"{state['supervisor']['pid']}, which other processes cannot reach. Use transport: kafka to "
                         "change a running network from the command line, or Network.add/remove in that process.")


def _supervisor_alive(supervisor: dict) -> bool:
    if supervisor.get("host") != socket.gethostname():
        return True  # another machine's process: trust the state file
    try:
        os.kill(int(supervisor.get("pid", -1)), 0)
    except (OSError, ValueError):
        return False
    return True


def send_command(state: dict, envelope) -> None:
    """Publish ``envelope`` on the network's control topic with the network's transport."""
    transport = make_transport(state["transport"])
    try:
        transport.publish(control.control_topic(state["network"]), envelope)
        transport.flush()
    finally:
        transport.close()


def wait_for(home: str, condition, timeout_s: float, poll_s: float = 0.5) -> dict | None:
    """The state once ``condition(state)`` holds, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = read_state(home)
        if state is not None and condition(state):
            return state
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)
