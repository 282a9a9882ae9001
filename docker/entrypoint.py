"""Container entry point: run one h3spark service role in the foreground.

    entrypoint.py kafka | namenode | datanode | spark-master | spark-worker | jupyter
    entrypoint.py postgres-password FILE              a random password in FILE, unless it has one
    entrypoint.py check-versions NAME=VERSION...      fail unless the image holds these versions
    entrypoint.py versions                            print them (kafka, hadoop, spark, postgres-jdbc)
    entrypoint.py COMMAND...                          anything else is executed as it is

The roles' configs and commands come from h3spark.services (the renderers of `h3spark services
up`), with the container's own host name advertised and every daemon bound to 0.0.0.0.
PostgreSQL runs from the official image (see docker-compose.yml); its password comes from
`postgres-password`, as `h3spark services up postgres` makes one.
"""

from __future__ import annotations

import os
import secrets
import sys
import xml.etree.ElementTree as ElementTree
from importlib import resources
from pathlib import Path

from h3spark.services import CONTAINER_ROLES, ServicesConfig, prepare_role

DATA = Path(os.environ.get("H3SPARK_DATA", "/data"))
COMMANDS = (*CONTAINER_ROLES, "jupyter", "postgres-password", "check-versions", "versions")
_POM = "{http://maven.apache.org/POM/4.0.0}"
# the version in each pom of h3spark/services/poms: a property, or the first dependency's version
_POM_VERSIONS = {"kafka": ("kafka", "properties/kafka.version"), "hadoop": ("hdfs", "properties/hadoop.version"),
                 "postgres-jdbc": ("postgres-jdbc", "dependencies/dependency/version")}


def versions() -> dict[str, str]:
    """What the image runs: Kafka and Hadoop (the services' poms), Spark (pyspark's), the JDBC driver."""
    import pyspark

    found = {"spark": pyspark.__version__}
    for name, (pom, path) in _POM_VERSIONS.items():
        text = resources.files("h3spark.services").joinpath("poms", f"{pom}.xml").read_text()
        element = ElementTree.fromstring(text).find("/".join(_POM + part for part in path.split("/")))
        if element is None or not element.text:
            sys.exit(f"check-versions: h3spark/services/poms/{pom}.xml has no {path}")
        found[name] = element.text.strip()
    return found


def check_versions(pairs: list[str]) -> None:
    """Exit with a message naming each NAME=VERSION that is not what the image holds."""
    expected = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    actual = versions()
    wrong = [f"{name}: docker-compose.yml says {version}, the image has {actual.get(name, 'none')}"
             for name, version in expected.items() if actual.get(name) != version]
    if wrong or len(expected) != len(pairs):
        sys.exit("check-versions: the build args disagree with h3spark/services (update docker-compose.yml's "
                 "x-h3spark build args):\n  " + "\n  ".join(wrong or [f"not NAME=VERSION: {pairs}"]))


def write_password(path: Path) -> None:
    """A random password in ``path`` (readable by the postgres container's user), unless one is there."""
    if path.is_file() and path.read_text().strip():
        print(f"postgres-password: keeping {path}", flush=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_urlsafe(24) + "\n")
    path.chmod(0o644)  # the volume is mounted only by the postgres and jupyter containers
    print(f"postgres-password: wrote {path}", flush=True)


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


def main(argv: list[str]) -> None:
    command, rest = (argv[0], argv[1:]) if argv else (None, [])
    if command in CONTAINER_ROLES:
        run_role(command)
    elif command == "jupyter":
        jupyter()
    elif command == "postgres-password" and len(rest) == 1:
        write_password(Path(rest[0]))
    elif command == "check-versions":
        check_versions(rest)
    elif command == "versions":
        print(" ".join(f"{name}={version}" for name, version in versions().items()))
    elif command is not None and command not in COMMANDS:
        _exec(argv)  # any other command, e.g. `h3spark run ...` or `bash`
    else:
        sys.exit(f"usage: entrypoint.py {{{'|'.join(COMMANDS)}}} [ARGS] | COMMAND...")


if __name__ == "__main__":
    main(sys.argv[1:])
