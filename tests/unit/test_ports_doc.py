"""docs/ports.md names every port h3spark opens, and what ships for containers is published on loopback."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from h3spark.services import ServicesConfig

ROOT = Path(__file__).resolve().parents[2]
PORTS_DOC = (ROOT / "docs" / "ports.md").read_text()


def test_every_service_port_is_in_the_ports_doc():
    defaults = ServicesConfig()
    for field in dataclasses.fields(ServicesConfig):
        if field.name.endswith("_port"):
            assert f"| {getattr(defaults, field.name)}" in PORTS_DOC, f"docs/ports.md lacks {field.name}"


def test_the_servers_h3spark_starts_itself_are_in_the_ports_doc():
    for server in ("Driver web UI", "Launch channel", "ps-lite scheduler", "TCPStore", "Experiments dispatcher",
                   "TensorBoard", "6006", "4040"):
        assert server in PORTS_DOC


def test_the_compose_file_publishes_every_port_on_loopback_only():
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert published and all(re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port) for port in published), published


def test_the_readme_links_the_ports_doc():
    assert "(docs/ports.md)" in (ROOT / "README.md").read_text()
