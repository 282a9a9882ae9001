"""Container entry point: run one h3spark service role in the foreground.

    entrypoint.py kafka | namenode | datanode | spark-master | spark-worker | jupyter | COMMAND...

The roles' configs and commands come from h3spark.services (the renderers of `h3spark services
up`), with the container's own host name advertised and every daemon bound to 0.0.0.0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from h3spark.services import CONTAINER_ROLES, ServicesConfig, prepare_role

DATA = Path(os.environ.get("H3SPARK_DATA", "/data"))


def _exec(cmd: list[str]) -> None:
    print("exec:", " ".join(cmd), flush=True)
    os.execvp(cmd[0], cmd)


def run_role(role: str) -> None:
    commands = prepare_role(role, DATA, Path("/etc/h3spark"), ServicesConfig.from_env())
    if commands.setup and os.spawnvp(os.P_WAIT, commands.setup[0], commands.setup) != 0:
        sys.exit(f"{role}: preparing the state in {DATA} failed (see the output above)")
    _exec(commands.main)


def jupyter() -> None:
    _exec(["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root",
           "--ServerApp.token=" + os.environ.get("JUPYTER_TOKEN", "h3spark"), "--notebook-dir=/opt/h3spark"])


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] in CONTAINER_ROLES:
        run_role(sys.argv[1])
    elif len(sys.argv) >= 2 and sys.argv[1] == "jupyter":
        jupyter()
    elif len(sys.argv) > 1:
        _exec(sys.argv[1:])  # any other command, e.g. `h3spark run ...` or `bash`
    else:
        sys.exit(f"usage: entrypoint.py {{{'|'.join((*CONTAINER_ROLES, 'jupyter'))}}} | COMMAND...")
