from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every services unit test gets its own cache and state dirs and no jar override."""
    monkeypatch.setenv("H3SPARK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("H3SPARK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("H3SPARK_JARS_DIR", raising=False)
    return tmp_path
