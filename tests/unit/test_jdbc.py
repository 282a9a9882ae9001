"""The jdbc source and sink without a database: config, credentials, options, the publish's SQL."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from h3spark.config import JdbcSinkConfig, JdbcSourceConfig, SourceConfig, load_config
from h3spark.errors import ConfigError, JobFailedError, StorageError, TaskFailure
from h3spark.storage import jdbc_errors, jdbc_options, publish_statements, read_password, staging_table

URL = "jdbc:postgresql://127.0.0.1:5433/postgres"
SECRET = "s3cret-Value-9431"


def _write_config(tmp_path, jdbc_lines: str):
    path = tmp_path / "c.yaml"
    path.write_text("name: db\nsource:\n  format: jdbc\n  jdbc:\n    url: " + URL + "\n    table: events\n" + jdbc_lines)
    return path


def test_a_jdbc_source_loads_from_yaml(tmp_path):
    path = _write_config(tmp_path, "    user: h3spark\n    password_env: EVENTS_PW\n    partition_column: id\n"
                                   "    num_partitions: 4\n")
    source = load_config(path).source
    assert source.format == "jdbc" and source.jdbc.table == "events" and source.jdbc.num_partitions == 4


def test_a_password_in_the_yaml_is_a_config_error_naming_its_line_and_the_fix(tmp_path):
    path = _write_config(tmp_path, f"    user: h3spark\n    password: {SECRET}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    text = str(error.value)
    assert "line 8  source.jdbc.password: a password may not be written in the config" in text
    assert "password_env: NAME (default H3SPARK_JDBC_PASSWORD)" in text and "password_file: PATH" in text
    assert SECRET not in text


@pytest.mark.parametrize("where, line", [
    (f"    properties: {{sslpassword: {SECRET}}}\n", "source.jdbc.properties.sslpassword"),
    (f"    password_env: '{SECRET} !'\n", "source.jdbc.password_env: must be the name of an environment variable"),
])
def test_other_places_a_password_hides_are_refused_without_repeating_it(tmp_path, where, line):
    with pytest.raises(ConfigError) as error:
        load_config(_write_config(tmp_path, where))
    assert line in str(error.value) and SECRET not in str(error.value)


def test_a_password_in_the_url_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"name: db\nsource:\n  format: jdbc\n  jdbc:\n    url: {URL}?user=a&password={SECRET}\n"
                    "    table: t\n")
    with pytest.raises(ConfigError, match="source.jdbc.url: must not hold a password") as error:
        load_config(path)
    assert SECRET not in str(error.value)


def test_a_password_given_with_set_is_refused_too(tmp_path):
    path = _write_config(tmp_path, "")
    with pytest.raises(ConfigError, match="--set  source.jdbc.password: a password may not") as error:
        load_config(path, overrides=[f"source.jdbc.password={SECRET}"])
    assert SECRET not in str(error.value)


def test_pydantics_own_message_does_not_show_the_password_either():
    with pytest.raises(ValidationError) as error:
        SourceConfig(format="jdbc", jdbc={"url": URL, "table": "t", "password": SECRET})
    assert SECRET not in str(error.value)


@pytest.mark.parametrize("settings, message", [
    ({}, "set exactly one of table"),
    ({"table": "t", "query": "SELECT 1"}, "set exactly one of table"),
    ({"table": "a b"}, "must be TABLE or SCHEMA.TABLE"),
    ({"table": "t", "num_partitions": 4}, "add partition_column"),
    ({"table": "t", "partition_column": "id", "lower_bound": 3}, "set both lower_bound and upper_bound"),
    ({"table": "t", "partition_column": "id", "lower_bound": 3, "upper_bound": 3}, "lower_bound must be less than"),
    ({"table": "t", "partition_column": "id; DROP"}, "must be a column name"),
    ({"table": "t", "password_env": "A", "password_file": "/f"}, "not both"),
    ({"table": "t", "url": "postgresql://x/y"}, "must be a JDBC URL"),
])
def test_source_settings_that_do_not_fit_together_are_refused(settings, message):
    with pytest.raises(ValidationError, match=message):
        JdbcSourceConfig(**{"url": URL, **settings})


def test_a_jdbc_source_needs_its_section_and_no_spark_options():
    with pytest.raises(ValidationError, match="format 'jdbc' needs 'jdbc'"):
        SourceConfig(format="jdbc")
    with pytest.raises(ValidationError, match="move source.options to source.jdbc.properties"):
        SourceConfig(format="jdbc", jdbc={"url": URL, "table": "t"}, options={"fetchsize": 10})


def test_truncate_belongs_to_overwrite():
    with pytest.raises(ValidationError, match="truncate applies to mode: overwrite only"):
        JdbcSinkConfig(url=URL, table="t", truncate=True)


def _source(**settings) -> JdbcSourceConfig:
    return JdbcSourceConfig(url=URL, table="t", **settings)


def test_the_password_comes_from_the_default_variable_or_is_absent():
    assert read_password(_source(), "source.jdbc", {"H3SPARK_JDBC_PASSWORD": SECRET}) == SECRET
    assert read_password(_source(), "source.jdbc", {}) is None


def test_a_named_variable_that_is_missing_or_empty_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="the environment variable EVENTS_PW is not set"):
        read_password(_source(password_env="EVENTS_PW"), "source.jdbc", {"H3SPARK_JDBC_PASSWORD": "other"})
    with pytest.raises(ConfigError, match="EVENTS_PW is empty"):
        read_password(_source(password_env="EVENTS_PW"), "source.jdbc", {"EVENTS_PW": ""})


def test_a_password_file_gives_its_first_line(tmp_path, caplog):
    path = tmp_path / "pw"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert read_password(_source(password_file=str(path)), "source.jdbc", {}) == SECRET
    assert caplog.records == []


def test_a_password_file_others_can_read_is_used_with_a_warning(tmp_path, caplog):
    path = tmp_path / "pw"
    path.write_text(SECRET)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert read_password(_source(password_file=str(path)), "source.jdbc", {}) == SECRET
    assert "chmod 600" in caplog.text and SECRET not in caplog.text


def test_a_missing_or_empty_password_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=f"password_file: {tmp_path / 'nope'} does not exist"):
        read_password(_source(password_file=str(tmp_path / "nope")), "source.jdbc", {})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty; its first line must be the password"):
        read_password(_source(password_file=str(tmp_path / "empty")), "source.jdbc", {})


def test_the_options_carry_driver_user_password_and_properties():
    config = _source(user="h3spark", properties={"sslmode": "disable", "reWriteBatchedInserts": True})
    options = jdbc_options(config, "source.jdbc", SECRET)
    assert options == {"url": URL, "driver": "org.postgresql.Driver", "user": "h3spark", "password": SECRET,
                       "sslmode": "disable", "reWriteBatchedInserts": "true"}
    assert "password" not in jdbc_options(config, "source.jdbc", None)


def test_an_unknown_database_needs_its_driver_named():
    config = JdbcSourceConfig(url="jdbc:mysql://127.0.0.1/db", table="t")
    with pytest.raises(ConfigError, match="knows no JDBC driver for jdbc:mysql: URLs"):
        jdbc_options(config, "source.jdbc", None)
    named = JdbcSourceConfig(url="jdbc:mysql://127.0.0.1/db", table="t", driver="com.mysql.cj.jdbc.Driver")
    assert jdbc_options(named, "source.jdbc", None)["driver"] == "com.mysql.cj.jdbc.Driver"


def test_an_error_that_would_show_the_password_is_masked():
    failure = TaskFailure("task", 0, "SQLException", f"login with {SECRET} failed", f"tail {SECRET}")
    with pytest.raises(JobFailedError) as error:
        with jdbc_errors("reading t", SECRET):
            raise JobFailedError(f"reading t failed: {SECRET}", [failure])
    assert SECRET not in str(error.value) and "<hidden>" in str(error.value)
    assert SECRET not in error.value.failures[0].message + error.value.failures[0].tail
    with pytest.raises(StorageError, match="<hidden>"):
        with jdbc_errors("reading t", SECRET):
            raise StorageError(f"bad {SECRET}")


def test_the_staging_table_sits_next_to_the_target_within_63_characters():
    assert staging_table("public.Events", "0123456789ab") == "public.events_h3s_0123456789ab"
    long_name = staging_table("x" * 80)
    assert len(long_name) == 63 and long_name.endswith(long_name[-12:]) and "_h3s_" in long_name
    assert staging_table("t") != staging_table("t")


def _sink(**settings) -> JdbcSinkConfig:
    return JdbcSinkConfig(url=URL, table="s.preds", **settings)


COLUMNS = ['"id"', '"score"']


def test_a_new_table_is_the_renamed_staging_table_in_every_mode():
    for sink in (_sink(), _sink(mode="overwrite"), _sink(mode="overwrite", truncate=True)):
        assert publish_statements(sink, "s.preds_h3s_1", COLUMNS, table_exists=False) == [
            "ALTER TABLE s.preds_h3s_1 RENAME TO preds"]


def test_append_inserts_the_staged_rows_and_drops_the_staging_table():
    assert publish_statements(_sink(), "s.preds_h3s_1", COLUMNS, table_exists=True) == [
        'INSERT INTO s.preds ("id", "score") SELECT "id", "score" FROM s.preds_h3s_1', "DROP TABLE s.preds_h3s_1"]


def test_overwrite_replaces_the_table_or_with_truncate_its_rows():
    assert publish_statements(_sink(mode="overwrite"), "s.preds_h3s_1", COLUMNS, table_exists=True) == [
        "DROP TABLE s.preds", "ALTER TABLE s.preds_h3s_1 RENAME TO preds"]
    assert publish_statements(_sink(mode="overwrite", truncate=True), "s.preds_h3s_1", COLUMNS, table_exists=True) == [
        "DELETE FROM s.preds", 'INSERT INTO s.preds ("id", "score") SELECT "id", "score" FROM s.preds_h3s_1',
        "DROP TABLE s.preds_h3s_1"]
