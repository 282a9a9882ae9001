"""Masters, data and running bridges for the web tests."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.config import DownpourConfig


def downpour_config(**training) -> DownpourConfig:
    """A small master: 6 inputs, 4 hidden units, 3 classes, no data unless given."""
    data = training.pop("data", {})
    return DownpourConfig.model_validate({"model": {"input_shape": [6], "hidden": [4], "classes": 3},
                                          "training": training, "data": data})


@pytest.fixture(scope="session")
def digits_data():
    """The digits through the default image pipeline: 3 shards, 20% held out."""
    from h3spark.web import MasterData

    config = DownpourConfig.model_validate({"data": {"shards": 3, "seed": 1}})
    return MasterData.from_config(config, "/nonexistent-workdir")


def gradient(master, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, master.layout.size).astype(np.float32)
