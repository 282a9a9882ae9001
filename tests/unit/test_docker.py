"""docker/ brings up the topology of `h3spark services`: checked without a Docker engine.

The compose file must parse, publish the ports of ``ServicesConfig`` (the defaults of
`h3spark services up`), build with the versions h3spark/services resolves, and use only
commands that docker/entrypoint.py has.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from h3spark.services import CONTAINER_ROLES, POSTGRES_USER, ServicesConfig
from h3spark.services._postgres import server_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def _entrypoint():
    spec = importlib.util.spec_from_file_location("docker_entrypoint", ROOT / "docker" / "entrypoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENTRYPOINT = _entrypoint()


def _expected_ports(config: ServicesConfig) -> dict[str, set[int]]:
    """The ports each role publishes, from the services' settings (the KRaft controller and the
    DataNode's IPC stay inside the compose network)."""
    expected = {"kafka": {config.kafka_port}, "namenode": {config.hdfs_port, config.hdfs_http_port},
                "datanode": {config.hdfs_datanode_port, config.hdfs_datanode_http_port},
                "spark-master": {config.spark_port, config.spark_webui_port}, "postgres": {config.postgres_port}}
    for index in range(config.spark_workers):
        expected[f"spark-worker-{index + 1}"] = {config.spark_worker_webui_port + index}
    return expected


def _port_problems(compose: dict, config: ServicesConfig) -> list[str]:
    problems = []
    for name, ports in _expected_ports(config).items():
        service = compose["services"].get(name)
        if service is None:
            problems.append(f"no service {name}")
            continue
        published = {tuple(int(part) for part in port.split(":")[1:]) for port in service.get("ports", [])}
        if published != {(port, port) for port in ports}:
            problems.append(f"{name} publishes {sorted(published)}, `h3spark services` listens on {sorted(ports)}")
    workers = [name for name in compose["services"] if name.startswith("spark-worker-")]
    if len(workers) != config.spark_workers:
        problems.append(f"{len(workers)} Spark workers, `h3spark services` starts {config.spark_workers}")
    return problems


def test_the_compose_file_publishes_the_ports_of_h3spark_services():
    assert _port_problems(COMPOSE, ServicesConfig()) == []


def test_a_port_that_moved_is_found():
    moved = copy.deepcopy(COMPOSE)
    moved["services"]["namenode"]["ports"] = ["127.0.0.1:9000:9000", "127.0.0.1:9870:9870"]
    del moved["services"]["spark-worker-2"]
    problems = _port_problems(moved, ServicesConfig())
    assert any(p.startswith("namenode publishes") for p in problems) and any("Spark workers" in p for p in problems)


def test_the_workers_have_the_cores_and_memory_of_h3spark_services():
    config = ServicesConfig()
    for index in range(config.spark_workers):
        worker = COMPOSE["services"][f"spark-worker-{index + 1}"]
        assert worker["environment"]["H3SPARK_SPARK_WORKER_CORES"] == str(config.spark_worker_cores)
        assert worker["environment"]["H3SPARK_SPARK_WORKER_MEMORY"] == config.spark_worker_memory
        assert worker["environment"]["SPARK_MASTER"] == f"spark://spark-master:{config.spark_port}"


def test_the_build_args_name_the_versions_h3spark_services_resolves():
    args = COMPOSE["x-h3spark"]["build"]["args"]
    names = {"KAFKA_VERSION": "kafka", "HADOOP_VERSION": "hadoop", "SPARK_VERSION": "spark",
             "POSTGRES_JDBC_VERSION": "postgres-jdbc"}
    assert set(args) == set(names)
    assert {names[arg]: value for arg, value in args.items()} == ENTRYPOINT.versions()
    assert set(re.findall(r"^ARG (\w+)$", DOCKERFILE, re.M)) == set(args)
    assert all(f'"${arg}"' in DOCKERFILE for arg in args)  # each one reaches check-versions


def test_check_versions_refuses_a_version_the_image_does_not_hold(capsys):
    actual = ENTRYPOINT.versions()
    ENTRYPOINT.check_versions([f"{name}={version}" for name, version in actual.items()])
    with pytest.raises(SystemExit, match="kafka: docker-compose.yml says 0.1, the image has " + actual["kafka"]):
        ENTRYPOINT.check_versions(["kafka=0.1", f"spark={actual['spark']}"])
    with pytest.raises(SystemExit, match="not NAME=VERSION"):
        ENTRYPOINT.check_versions(["kafka"])


def test_every_command_of_the_h3spark_image_is_an_entrypoint_command():
    ours = {name: service for name, service in COMPOSE["services"].items() if service.get("image") == "h3spark:latest"}
    commands = {service["command"][0] for service in ours.values()}
    assert commands <= set(ENTRYPOINT.COMMANDS)
    assert set(CONTAINER_ROLES) <= commands  # every role of `h3spark services` runs somewhere
    assert set(COMPOSE["services"]) - set(ours) == {"postgres"}


def test_the_dockerfile_runs_the_entrypoint_it_copies():
    assert 'ENTRYPOINT ["python", "/opt/h3spark/docker/entrypoint.py"]' in DOCKERFILE
    assert "COPY docker/entrypoint.py ./docker/entrypoint.py" in DOCKERFILE and "WORKDIR /opt/h3spark" in DOCKERFILE
    for source in re.findall(r"^COPY (.+) \S+$", DOCKERFILE, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"


def test_postgres_runs_with_the_settings_of_h3spark_services():
    config, postgres = ServicesConfig(), COMPOSE["services"]["postgres"]
    settings = dict(arg.split("=", 1) for arg in postgres["command"] if "=" in arg)
    expected = server_settings(config)
    assert settings["port"] == expected["port"] == postgres["environment"]["PGPORT"]
    assert {key: settings[key] for key in ("shared_buffers", "max_connections")} == \
        {key: expected[key] for key in ("shared_buffers", "max_connections")}
    assert postgres["environment"]["POSTGRES_USER"] == POSTGRES_USER
    assert "scram-sha-256" in postgres["environment"]["POSTGRES_HOST_AUTH_METHOD"]
    debian = re.search(r"^FROM python:[\d.]+-slim-(\w+)$", DOCKERFILE, re.M).group(1)
    assert postgres["image"].endswith("-" + debian), "PostgreSQL's image and the h3spark image share a Debian release"


def test_the_password_is_written_once(tmp_path):
    secret = tmp_path / "secrets" / "password"
    ENTRYPOINT.write_password(secret)
    first = secret.read_text()
    assert len(first.strip()) >= 24
    ENTRYPOINT.write_password(secret)
    assert secret.read_text() == first
    command = COMPOSE["services"]["postgres-password"]["command"]
    assert command[0] == "postgres-password" and COMPOSE["services"]["postgres"]["environment"][
        "POSTGRES_PASSWORD_FILE"] == command[1]


def test_an_entrypoint_without_a_command_prints_its_usage():
    with pytest.raises(SystemExit, match="usage: entrypoint.py .*postgres-password"):
        ENTRYPOINT.main([])
    with pytest.raises(SystemExit, match="usage"):
        ENTRYPOINT.main(["postgres-password"])
