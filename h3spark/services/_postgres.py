"""PostgreSQL from the machine's own packages (Debian's /usr/lib/postgresql/N/bin), on loopback.

The first start installs the packages with apt-get where they are missing (as root), creates
the cluster with ``initdb`` in the state dir, with one superuser (``POSTGRES_USER``) whose
random password is kept in ``postgres_password_file()`` (mode 0600), and resolves PostgreSQL's JDBC
driver with Maven for Spark's jdbc data source. Clients connect over TCP to 127.0.0.1 only
(no Unix socket), with scram-sha-256 passwords.

PostgreSQL refuses to run as root. As root, initdb and the server run as the ``postgres``
system user the packages create (``setpriv``); that user cannot enter /root, where the
state dir usually lives, so the launcher (still root) holds the state dir open as fd 9 and
the server reaches its data dir as ``/proc/self/fd/9/data``: the data stays with the other
services' state, and no permission outside it changes.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from h3spark.errors import ServiceError
from h3spark.services._base import Daemon, Service
from h3spark.services._config import ServicesConfig
from h3spark.services._endpoint import POSTGRES_USER, Endpoint
from h3spark.services._maven import ensure_jars
from h3spark.services._paths import postgres_password_file
from h3spark.services._process import HOST, run_logged

logger = logging.getLogger(__name__)

DATABASE = "postgres"
SYSTEM_USER = "postgres"  # who runs the server when h3spark runs as root
PACKAGES_ROOT = Path("/usr/lib/postgresql")
_APT_TIMEOUT_S = 1200
_HELD_FD = 9

# Runs a command with the directory $1 held open as fd 9 ('' holds none), from '/', and turns
# the SIGTERM that 'services down' sends into PostgreSQL's fast shutdown (SIGINT): a plain
# SIGTERM is its smart shutdown, which waits for every client to disconnect.
_SUPERVISOR = f"""\
if [ -n "$1" ]; then exec {_HELD_FD}<"$1" || exit 1; fi
shift
cd /
"$@" &
server=$!
trap 'kill -INT "$server" 2>/dev/null' TERM INT
wait "$server"; code=$?
while kill -0 "$server" 2>/dev/null; do wait "$server"; code=$?; done
exit "$code"
"""


def jdbc_url(config: ServicesConfig) -> str:
    return f"jdbc:postgresql://{HOST}:{config.postgres_port}/{DATABASE}"


def find_server_bin(packages_root: Path = PACKAGES_ROOT) -> Path | None:
    """The directory holding ``postgres`` and ``initdb``: Debian's newest major version, else PATH."""
    majors = sorted((int(p.name), p / "bin") for p in _children(packages_root) if p.name.isdigit())
    for _, bin_dir in reversed(majors):
        if _is_server_bin(bin_dir):
            return bin_dir
    found = shutil.which("postgres")
    if found and _is_server_bin(Path(found).resolve().parent):
        return Path(found).resolve().parent
    return None


def _children(root: Path) -> list[Path]:
    return list(root.iterdir()) if root.is_dir() else []


def _is_server_bin(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / tool, os.X_OK) for tool in ("postgres", "initdb", "pg_isready"))


def ensure_server_bin(log: Path) -> Path:
    """The server's bin directory, installing the ``postgresql`` package with apt-get when missing."""
    found = find_server_bin()
    if found is not None:
        return found
    install_with_apt(log)
    found = find_server_bin()
    if found is None:
        raise ServiceError(f"apt-get installed postgresql, yet no postgres/initdb/pg_isready is under {PACKAGES_ROOT}/*/bin "
                           f"or on PATH. Look at {log}.")
    return found


def install_with_apt(log: Path, is_root: bool | None = None) -> None:
    """``apt-get update`` once, then ``apt-get install postgresql``; output to ``log``."""
    is_root = os.geteuid() == 0 if is_root is None else is_root
    if not is_root or shutil.which("apt-get") is None:
        raise ServiceError("PostgreSQL's server is not installed (no postgres, initdb and pg_isready under "
                           f"{PACKAGES_ROOT}/*/bin or on PATH). Install it (Debian/Ubuntu: sudo apt-get install "
                           "postgresql), or run 'h3spark services up postgres' as root to let it run apt-get.")
    log.parent.mkdir(parents=True, exist_ok=True)
    logger.warning("installing PostgreSQL with apt-get (once; output in %s)", log)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        run_logged(f"postgres: '{' '.join(command)}' (install PostgreSQL by hand: apt-get install postgresql)",
                   command, log, env=env, timeout_s=_APT_TIMEOUT_S)


def system_user(is_root: bool | None = None) -> str | None:
    """The user the server runs as: None (this process's own) unless h3spark runs as root."""
    if not (os.geteuid() == 0 if is_root is None else is_root):
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ServiceError(f"postgres refuses to run as root, and there is no '{SYSTEM_USER}' system user to run it "
                           "as. Install the Debian packages (apt-get install postgresql), which create it, or run "
                           "'h3spark services up postgres' as an ordinary user.") from None
    return SYSTEM_USER


def server_command(state: Path, command: list[str], user: str | None) -> tuple[list[str], str]:
    """The supervised form of ``command`` (run as ``user``) and the data dir path to give it.

    >>> server_command(Path("/s"), ["initdb"], "postgres")[1]
    '/proc/self/fd/9/data'
    """
    if user is None:
        return ["sh", "-c", _SUPERVISOR, "sh", "", *command], str(state / "data")
    drop = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
    return ["sh", "-c", _SUPERVISOR, "sh", str(state), *drop, *command], f"/proc/self/fd/{_HELD_FD}/data"


def server_settings(config: ServicesConfig) -> dict[str, str]:
    """What the server runs with (``-c key=value``): TCP on loopback only, no Unix socket."""
    return {"listen_addresses": HOST, "port": str(config.postgres_port), "unix_socket_directories": "",
            "shared_buffers": "64MB", "max_connections": "50"}


class PostgresService(Service):
    name = "postgres"
    port_flags = "--postgres-port or H3SPARK_POSTGRES_PORT"

    def ports(self, config: ServicesConfig) -> dict[str, int]:
        return {"postgres": config.postgres_port}

    def endpoint(self, config: ServicesConfig) -> Endpoint:
        return Endpoint(service="postgres", uri=jdbc_url(config))

    def prepare(self, config: ServicesConfig, java: str, state: Path) -> None:
        (state / "logs").mkdir(parents=True, exist_ok=True)
        self._bin = ensure_server_bin(state / "logs" / "apt.log")
        self._user = system_user()
        ensure_jars("postgres-jdbc")
        if self._user is not None:
            state.chmod(0o711)  # the server's user passes through to data/, and sees nothing else here
        if not (state / "data" / "PG_VERSION").is_file():
            self._initdb(state)

    def _initdb(self, state: Path) -> None:
        data, secret = state / "data", state / "initdb.pw"
        shutil.rmtree(data, ignore_errors=True)  # what a failed initdb left
        data.mkdir(mode=0o700)
        password = secrets.token_urlsafe(24)
        _write_private(postgres_password_file(), password)
        _write_private(secret, password)
        if self._user is not None:
            shutil.chown(data, self._user, self._user)
            shutil.chown(secret, self._user, self._user)
        try:
            self._run_initdb(state, secret)
        finally:
            secret.unlink(missing_ok=True)

    def _run_initdb(self, state: Path, secret: Path) -> None:
        cmd, data_arg = server_command(state, [str(self._bin / "initdb")], self._user)
        secret_arg = str(Path(data_arg).parent / secret.name)
        cmd += ["-D", data_arg, "-U", POSTGRES_USER, f"--pwfile={secret_arg}", "--auth-host=scram-sha-256",
                "--auth-local=reject", "--encoding=UTF8", "--locale=C", "--no-instructions"]
        (state / "logs" / "initdb.log").unlink(missing_ok=True)
        run_logged(f"postgres: initdb in {state / 'data'}", cmd, state / "logs" / "initdb.log")

    def daemons(self, config: ServicesConfig, java: str, state: Path) -> list[Daemon]:
        if not postgres_password_file().is_file():
            raise ServiceError(f"postgres: {postgres_password_file()} is missing, so nobody can log in to the cluster in "
                               f"{state / 'data'}. Delete {state} to start over with a new cluster.")
        cmd, data_arg = server_command(state, [str(self._bin / "postgres")], self._user)
        cmd += ["-D", data_arg]
        for key, value in server_settings(config).items():
            cmd += ["-c", f"{key}={value}"]
        return [Daemon(role="postgres", cmd=cmd, env=dict(os.environ))]

    def is_ready(self, endpoint: Endpoint) -> bool:
        """The server accepts connections (pg_isready)."""
        port = endpoint.uri.rsplit(":", 1)[1].split("/", 1)[0]
        result = subprocess.run([str(self._bin / "pg_isready"), "-q", "-h", HOST, "-p", port, "-t", "2"],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        return result.returncode == 0


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by its owner only (never briefly readable by others)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
