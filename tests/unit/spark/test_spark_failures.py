"""Spark's failures in h3spark's tree: the translation table, a task's exception carried whole, one error per job."""

from __future__ import annotations

import traceback

import pytest

from h3spark.errors import (ConfigError, DataError, DependencyError, JobFailedError, StorageError, TaskFailure,
                            TrialError)
from h3spark.preprocess import BadRowError
from h3spark.spark import carrying_errors
from h3spark.spark._failures import MARKER, carried_error, classify

SPARK_EXCEPTION = ("org.apache.spark.SparkException", "java.lang.Exception", "java.lang.Throwable")
BLOCK_MISSING = ("org.apache.hadoop.hdfs.BlockMissingException", "java.io.IOException", "java.lang.Exception")


def shipped_text(task_fn) -> str:
    """What the driver reads: the task's traceback as Spark ships it, followed by Java stack lines."""
    with pytest.raises(Exception) as caught:
        list(carrying_errors(task_fn)(iter([])))
    python = "".join(traceback.format_exception(caught.value))
    return f"[PYTHON_EXCEPTION] An exception was thrown from the Python worker: {python}\n\tat org.apache.spark.Foo(Foo.scala:1)"


def test_java_causes_are_translated_by_class_outermost_first_without_stack_lines():
    causes = [(SPARK_EXCEPTION, "Job aborted due to stage failure: Task 0 failed\n\tat org.apache.spark.Dag(Dag.scala:1)"),
              (BLOCK_MISSING, "Could not obtain block: BP-1:blk_7 file=/data/x.csv\n\tat org.apache.hadoop.X(X.java:9)"),
              (("java.net.ConnectException", "java.net.SocketException", "java.io.IOException"), "Connection refused")]
    cls, sentence = classify(causes)
    assert cls is StorageError
    assert sentence == "BlockMissingException: Could not obtain block: BP-1:blk_7 file=/data/x.csv"
    kafka = [(SPARK_EXCEPTION, "boom"), (("org.apache.kafka.common.errors.TimeoutException",
                                          "org.apache.kafka.common.errors.RetriableException"), "Timed out waiting")]
    assert classify(kafka) == (DataError, "TimeoutException: Timed out waiting")


def test_spark_conditions_are_translated_with_their_parameters():
    assert classify([], "PATH_NOT_FOUND", {"path": "file:/w/nowhere.csv"}) == (DataError, "file:/w/nowhere.csv does not exist")
    cls, sentence = classify([], "DATA_SOURCE_NOT_FOUND", {"provider": "kafka"})
    assert cls is DependencyError and "'kafka'" in sentence
    cls, sentence = classify([(SPARK_EXCEPTION, "[PATH_NOT_FOUND] odd")], "PATH_NOT_FOUND", {})
    assert cls is DataError and sentence == "[PATH_NOT_FOUND] odd"


def test_an_unmapped_failure_is_a_job_failure_naming_the_root_cause():
    causes = [(SPARK_EXCEPTION, "Job aborted"), (("java.lang.IllegalStateException", "java.lang.RuntimeException"), "bad state")]
    assert classify(causes) == (JobFailedError, "IllegalStateException: bad state")


def test_an_h3spark_error_raised_in_a_task_is_raised_again_with_its_class_and_message():
    message = "cannot read hdfs://127.0.0.1:8020/data/x.parquet: DataNode 127.0.0.1:9866 refused the connection"

    def task(_batches):
        raise StorageError(message)
        yield  # noqa: unreachable - a task function is a generator

    text = shipped_text(task)
    assert MARKER in text
    error = carried_error(text, "a preprocessing task")
    assert type(error) is StorageError and str(error) == message


def test_subclasses_and_their_attributes_survive_the_trip():
    def bad_row(_batches):
        raise BadRowError("bad row in step cast(x): cannot parse 'lots'")
        yield

    def config(_batches):
        raise ConfigError("python step", ["cannot import module 'nope'", "second problem"])
        yield

    assert type(carried_error(shipped_text(bad_row), "t")) is BadRowError
    error = carried_error(shipped_text(config), "t")
    assert type(error) is ConfigError and error.problems == ["cannot import module 'nope'", "second problem"]
    assert str(error).startswith("invalid config python step (2 problems)")


def test_any_other_task_exception_is_a_job_failure_naming_type_message_and_tail():
    def task(_batches):
        print("unrelated")
        raise ValueError("x must be positive, got -1")
        yield

    error = carried_error(shipped_text(task), "a preprocessing task")
    assert type(error) is JobFailedError and len(error.failures) == 1
    failure = error.failures[0]
    assert (failure.kind, failure.error_type, failure.message) == ("task", "ValueError", "x must be positive, got -1")
    assert "raise ValueError" in failure.tail and "\tat org.apache" not in str(error)
    assert str(error).startswith("a preprocessing task failed:\n  task on host ")
    assert carried_error("no marker here\n\tat org.apache.spark.Foo", "t") is None


def test_one_error_names_every_failure_in_order():
    failures = [TaskFailure("worker", 0, "RuntimeError", "boom 0", "line a\nline b", "h1", "exited with code 1"),
                TaskFailure("server", 1, tail="", host="h2", exit="was killed by signal 9")]
    error = JobFailedError.of("the launch failed on 2 of 2 tasks", failures)
    assert str(error).splitlines() == [
        "the launch failed on 2 of 2 tasks:",
        "  worker 0 on host h1 exited with code 1: RuntimeError: boom 0",
        "      | line a",
        "      | line b",
        "  server 1 on host h2 was killed by signal 9"]
    assert error.failures == failures and error.exit_code == 1
    assert isinstance(TrialError.of("no trial succeeded", failures[:1]), TrialError)
    assert str(JobFailedError.of("nothing to list", [])) == "nothing to list"


def test_a_failure_from_a_traceback_text_keeps_type_message_and_tail():
    try:
        raise KeyError("train_fn returned no 'accuracy' metric")
    except KeyError:
        text = traceback.format_exc()
    failure = TaskFailure.from_traceback("trial", 3, text, tail_lines=2)
    assert (failure.kind, failure.index, failure.error_type) == ("trial", 3, "KeyError")
    assert failure.message == "\"train_fn returned no 'accuracy' metric\"" and len(failure.tail.splitlines()) == 2
    timeout = TaskFailure.from_traceback("trial", 4, "stopped after timeout_s=3: the trial ran longer than its time limit")
    assert timeout.error_type == "" and timeout.message.startswith("stopped after timeout_s=3")


# What Spark 4.3 raised when a mapInArrow (or RDD) task called os._exit(1), measured on local[2]: the causes, outermost first.
EOF_CAUSE = ("java.io.EOFException", "java.io.IOException", "java.lang.Exception", "java.lang.Throwable")
CRASHED = "Python worker exited unexpectedly (crashed). Consider setting 'spark.python.worker.faulthandler.enabled' to 'true'"
WORKER_EXIT = [(SPARK_EXCEPTION, "Job aborted due to stage failure: Task 0 in stage 0.0 failed 1 times, most recent failure: "
                                 f"Lost task 0.0 in stage 0.0 (TID 0) (localhost executor driver): {CRASHED}\n\tat org.x"),
               (SPARK_EXCEPTION, CRASHED), (EOF_CAUSE, "")]


def test_a_crashed_python_worker_is_a_job_failure_saying_so_not_a_storage_error():
    cls, sentence = classify(WORKER_EXIT)
    assert cls is JobFailedError
    assert sentence.startswith("the Python worker crashed (task 0.0 in stage 0.0 on localhost, executor driver): its "
                               "process died without a Python exception (out of memory? a native crash such as a segfault?")
    assert "EOFException" not in sentence and "spark.python.worker.faulthandler.enabled=true" in sentence
    assert classify([(SPARK_EXCEPTION, "Job aborted"), (EOF_CAUSE, "")])[0] is JobFailedError  # no Spark sentence: still a crash
    cls, sentence = classify([(SPARK_EXCEPTION, "Job aborted"), (EOF_CAUSE, "Unexpected end of input stream")])
    assert (cls, sentence) == (JobFailedError, "EOFException: Unexpected end of input stream")  # a cut stream, no crash
    assert classify([(BLOCK_MISSING, "Could not obtain block")])[0] is StorageError  # other IOExceptions stay storage


def test_a_job_failure_carried_from_a_task_keeps_its_failures():
    failures = [TaskFailure("worker", 1, "RuntimeError", "boom", "line a", "h1", "exited with code 1")]

    def task(_batches):
        raise TrialError.of("the launch failed on 1 of 2 tasks", failures)
        yield

    error = carried_error(shipped_text(task), "t")
    assert type(error) is TrialError and error.failures == failures and error.exit_code == 1
    assert str(error).startswith("the launch failed on 1 of 2 tasks:\n  worker 1 on host h1")
    assert JobFailedError.__new__(JobFailedError).failures == ()  # any instance built without __init__ has them


@pytest.mark.parametrize("marker", ['{"types": ["builtins.ValueError"], "message": "cut of}',  # cut off: not JSON
                                    '{"message": "no types"}', '{"types": 3}', '{"types": []}',
                                    '{"types": ["builtins.ValueError"], "message": "m", "failures": [{"x": 1}]}'])
def test_an_unreadable_marker_leaves_the_failure_to_the_generic_translation(marker, caplog):
    caplog.set_level("DEBUG", logger="h3spark.spark._failures")
    assert carried_error(f"Traceback ...\n{MARKER} {marker}\n\tat org.apache.spark.Foo", "t") is None
    assert "ignored an unreadable H3SPARK_TASK_ERROR marker" in caplog.text
