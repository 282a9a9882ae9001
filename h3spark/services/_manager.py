"""``up``, ``down`` and ``status`` of the local services, with their state kept in the state dir."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import time
from pathlib import Path

from h3spark.errors import ServiceError
from h3spark.services._base import Service
from h3spark.services._config import ServicesConfig
from h3spark.services._connect import ConnectService
from h3spark.services._endpoint import Endpoint
from h3spark.services._hdfs import HdfsService
from h3spark.services._java import check_java
from h3spark.services._kafka import KafkaService
from h3spark.services._paths import SERVICE_NAMES, service_dir, state_dir
from h3spark.services._postgres import PostgresService
from h3spark.services._process import PidRecord, check_ports_free, is_running, launch, stop, wait_ready
from h3spark.services._spark import SparkService

logger = logging.getLogger(__name__)

_ENDPOINT_FILE = "endpoint.json"


@contextlib.contextmanager
def _exclusive():
    """One ``up`` or ``down`` at a time per state dir (a second waits for the first)."""
    state_dir().mkdir(parents=True, exist_ok=True)
    with open(state_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _services() -> dict[str, Service]:
    return {"kafka": KafkaService(), "hdfs": HdfsService(), "spark": SparkService(), "postgres": PostgresService(),
            "connect": ConnectService()}


def resolve_names(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """The services named (in the canonical order), all of them when none is named."""
    if not names:
        return list(SERVICE_NAMES)
    unknown = [n for n in names if n not in SERVICE_NAMES]
    if unknown:
        raise ServiceError(f"unknown service {', '.join(repr(n) for n in unknown)}; "
                           f"choose from {', '.join(SERVICE_NAMES)}.")
    return [n for n in SERVICE_NAMES if n in names]


def _pid_records(state: Path) -> list[PidRecord]:
    records = (PidRecord.read(p) for p in sorted(state.glob("*.pid")))
    return [r for r in records if r is not None]


def status() -> dict[str, Endpoint]:
    """Endpoints of the services whose daemons are all running, read from the state dir.

    >>> status().get("kafka")
    Endpoint(service='kafka', uri='127.0.0.1:9092', http_url=None)
    """
    running = {}
    for name in SERVICE_NAMES:
        state = service_dir(name)
        records = _pid_records(state)
        endpoint = Endpoint.load(state / _ENDPOINT_FILE)
        if endpoint and records and all(is_running(r) for r in records):
            running[name] = endpoint
    return running


def up(names: list[str] | None = None, config: ServicesConfig | None = None) -> dict[str, Endpoint]:
    """Start the named services (all when None), wait until each is ready, return their endpoints.

    Services already running are left alone. Raises ServiceError with what to fix.
    """
    names = resolve_names(names)
    config = config or ServicesConfig.from_env()
    with _exclusive():
        return _up(names, config)


def _up(names: list[str], config: ServicesConfig) -> dict[str, Endpoint]:
    running = status()
    todo = [n for n in names if n not in running]
    if not todo:
        return {n: running[n] for n in names}
    services = _services()
    for name in todo:
        _stop_leftovers(name)
        check_ports_free(name, services[name].ports(config), services[name].port_flags)
    java = check_java()
    launched: dict[str, list[PidRecord]] = {}
    try:
        for name in todo:
            launched[name] = _launch(services[name], config, java)
    except BaseException:
        for name, records in launched.items():  # a later service failed to prepare: undo this call
            _stop_records(name, records)
        raise
    failures = []
    for name in todo:
        try:
            _await(services[name], launched[name], config)
        except ServiceError as error:
            failures.append(str(error))
    if failures:
        raise ServiceError("\n".join(failures))
    running = status()
    return {n: running[n] for n in names if n in running}


def _launch(service: Service, config: ServicesConfig, java: str) -> list[PidRecord]:
    state = service_dir(service.name)
    state.mkdir(parents=True, exist_ok=True)
    service.prepare(config, java, state)
    service.endpoint(config).save(state / _ENDPOINT_FILE)
    records = []
    for daemon in service.daemons(config, java, state):
        record = launch(daemon.role, daemon.cmd, daemon.env, state, state / "logs" / f"{daemon.role}.log")
        record.write(state / f"{daemon.role}.pid")
        records.append(record)
    logger.info("launched service=%s pids=%s", service.name, [r.pid for r in records])
    return records


def _await(service: Service, records: list[PidRecord], config: ServicesConfig) -> None:
    started = time.monotonic()
    try:
        wait_ready(service.name, records, lambda: service.is_ready(service.endpoint(config)), config.timeout_s)
    except ServiceError:
        _stop_records(service.name, records)
        raise
    logger.info("ready service=%s seconds=%.1f", service.name, time.monotonic() - started)


def down(names: list[str] | None = None, timeout_s: float = 30.0) -> list[str]:
    """Stop the named services' daemons (those in our pid files only); return the names stopped."""
    stopped = []
    with _exclusive():
        for name in reversed(resolve_names(names)):
            records = _pid_records(service_dir(name))
            if any(is_running(r) for r in records):
                stopped.append(name)
            _stop_records(name, records, timeout_s)
    return list(reversed(stopped))


def _stop_records(name: str, records: list[PidRecord], timeout_s: float = 30.0) -> None:
    # Workers and the DataNode first, the master and the NameNode last.
    for record in sorted(records, key=lambda r: r.role in ("master", "namenode")):
        stop(record, timeout_s)
        logger.info("stopped service=%s role=%s pid=%d", name, record.role, record.pid)
    state = service_dir(name)
    for record in records:
        (state / f"{record.role}.pid").unlink(missing_ok=True)


def _stop_leftovers(name: str) -> None:
    """A half-running service (one daemon died) is stopped whole before a new start."""
    records = _pid_records(service_dir(name))
    if records:
        logger.warning("service=%s was partly running; stopping its remaining processes", name)
        _stop_records(name, records)


def reset(names: list[str] | None = None) -> None:
    """Stop the named services and delete their state (data, configs, logs)."""
    names = resolve_names(names)
    down(names)
    for name in names:
        shutil.rmtree(service_dir(name), ignore_errors=True)
