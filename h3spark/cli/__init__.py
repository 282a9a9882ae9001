"""The ``h3spark`` command line: thin wrappers that parse and call one public function."""

from h3spark.cli._main import job_main, main

__all__ = ["main", "job_main"]
