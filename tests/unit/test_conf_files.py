"""Every file in conf/ is a valid config."""

from pathlib import Path

import pytest

from h3spark.config import load_config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
CONF_FILES = sorted(CONF_DIR.glob("*.yaml"))


def test_conf_dir_is_not_empty():
    assert CONF_FILES, f"no configs found in {CONF_DIR}"


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.name)
def test_conf_file_validates(path):
    config = load_config(path)
    assert config.name
