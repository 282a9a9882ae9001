"""The experiment metric channel over a real Kafka broker: reports and stop decisions."""

import json
import time
import uuid

from h3spark import tune


def _learning_curve(params, ctx):
    for step in range(4):
        ctx.report({"accuracy": params["x"] * (step + 1)}, step=step)
    return {"accuracy": params["x"] * 4}


def test_median_stopping_works_over_kafka(spark, kafka_bootstrap, tmp_path):
    topic = f"h3spark-test-metrics-{uuid.uuid4().hex[:8]}"
    result = tune.grid_search(_learning_curve, {"x": [1.0, 1.1, 1.2, 0.1]}, parallelism=1, spark=spark,
                              early_stopping={"rule": "median", "grace_steps": 1, "min_trials": 3},
                              kafka={"bootstrap_servers": kafka_bootstrap, "topic": topic},
                              experiment_dir=str(tmp_path / "exp"))
    statuses = result.results.set_index("param_x")["status"].to_dict()
    assert statuses == {1.0: "completed", 1.1: "completed", 1.2: "completed", 0.1: "stopped"}
    assert result.results.set_index("param_x").loc[0.1, "metric_accuracy"] == 0.2

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    reports = [json.loads(record.value) for record in consumer]
    consumer.close()
    assert len(reports) == 3 * 4 + 2  # three full curves, and the laggard stopped at its second report
    assert {report["trial_id"] for report in reports} == {0, 1, 2, 3}


def test_an_unreachable_broker_is_a_clear_error(spark, tmp_path):
    started = time.monotonic()
    try:
        tune.launch(_learning_curve, {"x": 1.0}, spark=spark, kafka={"bootstrap_servers": "127.0.0.1:1"},
                    experiment_dir=str(tmp_path / "exp"))
    except Exception as error:  # noqa: BLE001 - the message is what is tested
        assert "cannot reach Kafka at 127.0.0.1:1" in str(error)
    else:
        raise AssertionError("expected an error for an unreachable broker")
    assert time.monotonic() - started < 60


def test_malformed_records_on_the_report_topic_are_counted_in_the_summary(spark, kafka_bootstrap, tmp_path):
    topic = f"h3spark-test-metrics-{uuid.uuid4().hex[:8]}"

    def noisy(params, ctx):
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        producer.send(topic, b"not json")
        producer.send(topic, json.dumps({"op": "report", "trial_id": ctx.trial_id, "step": 0}).encode())  # no run_id
        producer.flush()
        producer.close()
        ctx.report({"accuracy": 0.5, "phase": "warmup"}, step=0)  # answered after the two above: same partition
        return {"accuracy": 0.9}

    result = tune.launch(noisy, {}, spark=spark, kafka={"bootstrap_servers": kafka_bootstrap, "topic": topic},
                         experiment_dir=str(tmp_path / "exp"))
    assert result.results.iloc[0]["status"] == "completed"
    assert result.warnings == [
        "trial 0 reported metric 'phase' = 'warmup' (str) at step 0, not a number: TensorBoard and early stopping skip it",
        "2 messages to the experiment's dispatcher were refused (not from a trial of this experiment, or malformed); "
        f"the first: a record that is not JSON (Expecting value: line 1 column 1 (char 0)) on {topic}"]
