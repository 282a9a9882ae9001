"""The ``dataset`` fixture: tiny published datasets (see feed_data.py)."""

import pytest

from feed_data import make_dataset


@pytest.fixture
def dataset(tmp_path):
    """A factory: ``dataset(rows=..., files=..., row_groups=..., encoding=...)`` -> URI."""
    counter = iter(range(1_000_000))

    def build(**options):
        return make_dataset(tmp_path, name=f"data{next(counter)}", **options)

    return build
