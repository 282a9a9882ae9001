"""Where a driver's web UI listens: loopback for a local master unless a config or the environment widens it."""

from __future__ import annotations

import pytest

from h3spark.config import SparkConfig
from h3spark.spark._session import _ui_bind_address


@pytest.mark.parametrize("master", ["local[2]", "local[*]", "spark://127.0.0.1:7077", "spark://localhost:7077"])
def test_a_local_driver_keeps_its_ui_on_loopback(master):
    assert _ui_bind_address(master, SparkConfig(master=master), {}) == "127.0.0.1"


def test_a_config_widens_it_and_so_does_the_environment():
    wide = SparkConfig(conf={"spark.driver.bindAddress": "0.0.0.0"})
    assert _ui_bind_address("local[2]", wide, {"SPARK_LOCAL_IP": "127.0.0.1"}) == "0.0.0.0"
    assert _ui_bind_address("local[2]", SparkConfig(), {"SPARK_LOCAL_IP": "10.0.0.5"}) == "10.0.0.5"


def test_a_cluster_driver_is_left_to_spark_unless_the_config_says():
    assert _ui_bind_address("yarn", SparkConfig(master="yarn"), {}) is None
    assert _ui_bind_address("spark://10.0.0.1:7077", SparkConfig(conf={"spark.driver.bindAddress": "10.0.0.2"}), {}) == "10.0.0.2"


def test_a_cluster_driver_never_gets_a_wildcard_local_ip():
    # SPARK_LOCAL_IP=0.0.0.0 would become the driver host that remote executors are told to reach
    wide = SparkConfig(conf={"spark.driver.bindAddress": "0.0.0.0"})
    assert _ui_bind_address("spark://10.0.0.1:7077", wide, {}) is None
    assert _ui_bind_address("yarn", SparkConfig(conf={"spark.driver.bindAddress": "::"}), {}) is None
