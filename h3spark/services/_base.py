"""What each local service provides to the manager."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from h3spark.services._config import ServicesConfig
from h3spark.services._endpoint import Endpoint

# Java 17 closes JDK internals that Hadoop and Kafka still reach into.
JAVA17_OPENS = [f"--add-opens=java.base/{pkg}=ALL-UNNAMED" for pkg in (
    "java.lang", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util",
    "java.util.concurrent", "java.util.concurrent.atomic", "sun.nio.ch", "sun.nio.cs", "sun.security.action",
    "sun.util.calendar")]

# Six JVMs start at once on a small machine: the C1 compiler alone and the serial collector
# start faster and use fewer threads, which is what development and test daemons need.
DAEMON_JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]


@dataclass(frozen=True)
class Daemon:
    """One process to launch: its role (the pid file's name), command and environment."""

    role: str
    cmd: list[str]
    env: dict[str, str]


class Service:
    """A local service: its ports, endpoint, preparation (jars, configs, format) and readiness probe."""

    name = ""
    port_flags = ""

    def ports(self, config: ServicesConfig) -> dict[str, int]:
        raise NotImplementedError

    def endpoint(self, config: ServicesConfig) -> Endpoint:
        raise NotImplementedError

    def prepare(self, config: ServicesConfig, java: str, state: Path) -> None:
        """Resolve jars, write configs into ``state`` and format storage on first start."""
        raise NotImplementedError

    def daemons(self, config: ServicesConfig, java: str, state: Path) -> list[Daemon]:
        raise NotImplementedError

    def is_ready(self, endpoint: Endpoint) -> bool:
        raise NotImplementedError


def java_cmd(java: str, heap: str, classpath: str, main: str, props: dict[str, str]) -> list[str]:
    """``java`` with a small heap, the Java 17 opens, ``-Dkey=value`` properties and a main class."""
    defines = [f"-D{key}={value}" for key, value in props.items()]
    return [java, f"-Xmx{heap}", *DAEMON_JVM_FLAGS, "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true",
            *JAVA17_OPENS, *defines, "-cp", classpath, main]
