"""Ports and sizes of the local services, from defaults, ``H3SPARK_*`` variables and CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from h3spark.errors import ServiceError


@dataclass(frozen=True)
class ServicesConfig:
    """Settings of ``h3spark services up``; each field can be set by ``H3SPARK_<FIELD>`` (upper case).

    >>> ServicesConfig.from_env({"kafka_port": 19092}).kafka_port
    19092
    """

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    hdfs_port: int = 8020
    hdfs_http_port: int = 9870
    hdfs_datanode_port: int = 9866
    hdfs_datanode_http_port: int = 9864
    hdfs_datanode_ipc_port: int = 9867
    spark_port: int = 7077
    spark_webui_port: int = 8080
    spark_worker_webui_port: int = 8081
    spark_workers: int = 2
    spark_worker_cores: int = 1
    spark_worker_memory: str = "2g"
    connect_port: int = 15002
    connect_cores: int = 2
    connect_memory: str = "1g"
    postgres_port: int = 5433  # not 5432: a cluster the machine's own packages start may hold that one
    heap: str = "512m"
    timeout_s: float = 180.0

    @classmethod
    def from_env(cls, overrides: dict[str, object] | None = None,
                 environ: dict[str, str] | None = None) -> ServicesConfig:
        """Defaults, then ``H3SPARK_<FIELD>`` variables, then ``overrides`` (None values ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = environ.get(env_var(field.name))
            if raw is not None and raw != "":
                values[field.name] = _convert(field.name, field.type, raw, f"from {env_var(field.name)}")
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = _convert(name, _field_type(name), value, "")
        config = replace(cls(), **values)
        config.validate()
        return config

    def validate(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_port") and not 1 <= value <= 65535:
                raise ServiceError(f"The '{field.name}' setting must be a port in the range [1, 65535]. "
                                   f"Got {value} instead.")
        if self.connect_cores < 1:
            raise ServiceError(f"The 'connect_cores' setting must be at least 1. Got {self.connect_cores} instead.")
        if self.spark_workers < 1 or self.spark_worker_cores < 1:
            raise ServiceError("The 'spark_workers' and 'spark_worker_cores' settings must be at least 1. "
                               f"Got {self.spark_workers} and {self.spark_worker_cores} instead.")
        if self.timeout_s <= 0:
            raise ServiceError(f"The 'timeout_s' setting must be greater than 0. Got {self.timeout_s} instead.")


def env_var(field_name: str) -> str:
    return f"H3SPARK_{field_name.upper()}"


def _field_type(name: str) -> str:
    for field in fields(ServicesConfig):
        if field.name == name:
            return field.type
    raise ServiceError(f"unknown services setting '{name}'")


def _convert(name: str, type_name: str, raw: object, origin: str) -> object:
    converter = {"int": int, "float": float, "str": str}[type_name]
    try:
        return converter(raw)
    except (TypeError, ValueError):
        where = f" ({origin})" if origin else ""
        raise ServiceError(f"The '{name}' setting must be of type {type_name}. Got {raw!r} instead{where}.") from None
