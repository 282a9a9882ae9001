"""Tables in a database reached over JDBC: ``source.jdbc`` (a source) and :class:`JdbcSinkConfig` (a sink).

    source:
      format: jdbc
      jdbc:
        url: jdbc:postgresql://127.0.0.1:5433/postgres
        table: public.events            # or query: SELECT ... (one of the two)
        user: h3spark
        password_file: ~/.cache/h3spark/services/postgres/password   # or password_env: EVENTS_DB_PASSWORD
        partition_column: id            # a numeric column: num_partitions reads in parallel
        num_partitions: 4               # bounds are fetched (min, max) unless lower_bound/upper_bound say

A password is never written in a config: it comes from the environment variable that
``password_env`` names (``H3SPARK_JDBC_PASSWORD`` when neither is set) or from the file
``password_file``. A ``password`` key, a password in the URL or in ``properties`` is a config
error saying so, without repeating the value.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from h3spark.config._base import ERROR_AT, StrictModel

DEFAULT_PASSWORD_ENV = "H3SPARK_JDBC_PASSWORD"
HIDDEN = "<hidden>"
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL_PASSWORD = re.compile(r"(?i)[?&;]password=|//[^/@?]*:[^/@?]*@")
_HOW_TO = (f"Put it in an environment variable and name that with password_env: NAME (default {DEFAULT_PASSWORD_ENV}), "
           "or in a file only you can read and name that with password_file: PATH.")


class JdbcConnectionConfig(StrictModel):
    """Where the database is and who logs in; the password comes from the environment or a file."""

    # a value a user mistook for a setting could be a password: pydantic's messages show no input
    model_config = ConfigDict(hide_input_in_errors=True)

    url: str = Field(description="jdbc:SUBPROTOCOL://HOST:PORT/DATABASE, e.g. jdbc:postgresql://127.0.0.1:5433/postgres")
    user: str | None = None
    password_env: str | None = Field(default=None, description=f"the environment variable holding the password "
                                     f"(default {DEFAULT_PASSWORD_ENV})")
    password_file: str | None = Field(default=None, description="a file holding the password (its first line)")
    driver: str | None = Field(default=None, description="the JDBC driver class; default: known from the URL")
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict,
                                                            description="passed to the driver and to Spark's JDBC source")

    @model_validator(mode="before")
    @classmethod
    def _no_password_in_clear(cls, data):
        """Refuse a password written in the config, naming where it is (never its value)."""
        if not isinstance(data, dict):
            return data
        if "password" in data:
            raise _clear_password(data, ("password",), "a password may not be written in the config")
        if isinstance(data.get("url"), str) and _URL_PASSWORD.search(data["url"]):
            raise _clear_password(data, ("url",), "must not hold a password")
        properties = data.get("properties")
        for key in list(properties) if isinstance(properties, dict) else ():
            if "password" in str(key).lower():
                raise _clear_password(data, ("properties", key), "a password may not be written in the config")
        name = data.get("password_env")
        if name is not None and not (isinstance(name, str) and _IDENTIFIER.fullmatch(name)):
            raise _clear_password(data, ("password_env",), "must be the name of an environment variable (letters, "
                                  "digits and '_'), not the password itself")
        return data

    @field_validator("url")
    @classmethod
    def _jdbc_url(cls, value: str) -> str:
        if not re.match(r"jdbc:[A-Za-z0-9]+:", value):
            raise ValueError("must be a JDBC URL: jdbc:SUBPROTOCOL:..., e.g. jdbc:postgresql://127.0.0.1:5433/postgres")
        return value

    @model_validator(mode="after")
    def _one_password_source(self):
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("set password_env or password_file, not both")
        return self


def _clear_password(data: dict, path: tuple[str, ...], what: str) -> PydanticCustomError:
    """The error for a password in the config. The value is masked in ``data`` itself, which pydantic
    keeps as the error's input (and a ValidationError's text shows)."""
    owner = data
    for key in path[:-1]:
        owner = owner[key]
    owner[path[-1]] = HIDDEN
    return PydanticCustomError("password_in_config", "{what}. {how}",
                               {"what": what, "how": _HOW_TO, ERROR_AT: ".".join(str(key) for key in path)})


def _table_name(value: str | None) -> str | None:
    if value is not None and not TABLE_NAME.fullmatch(value):
        raise ValueError("must be TABLE or SCHEMA.TABLE (letters, digits and '_'); read anything else with query: SELECT ...")
    return value


class JdbcSourceConfig(JdbcConnectionConfig):
    """A table (or a query) read with Spark's JDBC source, in parallel by a numeric column."""

    table: str | None = Field(default=None, description="TABLE or SCHEMA.TABLE")
    query: str | None = Field(default=None, min_length=1, description="a SELECT, instead of table")
    partition_column: str | None = Field(default=None, description="a numeric column splitting the read into "
                                         "num_partitions")
    lower_bound: int | None = None
    upper_bound: int | None = None
    num_partitions: int | None = Field(default=None, gt=0, description="default: Spark's default parallelism")
    fetch_size: int = Field(default=1000, gt=0, description="rows per round trip")

    _table = field_validator("table")(classmethod(lambda cls, value: _table_name(value)))

    @field_validator("partition_column")
    @classmethod
    def _column_name(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.fullmatch(value):
            raise ValueError("must be a column name (letters, digits and '_')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "JdbcSourceConfig":
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of table (TABLE or SCHEMA.TABLE) and query (a SELECT)")
        if self.partition_column is None and (self.lower_bound, self.upper_bound, self.num_partitions) != (None,) * 3:
            raise ValueError("lower_bound, upper_bound and num_partitions split the read by partition_column; "
                             "add partition_column: COLUMN (a numeric column)")
        if (self.lower_bound is None) != (self.upper_bound is None):
            raise ValueError("set both lower_bound and upper_bound, or neither (then they are fetched: min and max)")
        if self.lower_bound is not None and self.lower_bound >= self.upper_bound:
            raise ValueError(f"lower_bound must be less than upper_bound. Got {self.lower_bound} and "
                             f"{self.upper_bound} instead.")
        return self


class JdbcSinkConfig(JdbcConnectionConfig):
    """A table written with Spark's JDBC writer in batches, all rows or none (see h3spark.storage.write_jdbc)."""

    table: str = Field(description="TABLE or SCHEMA.TABLE")
    mode: Literal["append", "overwrite"] = "append"
    batch_size: int = Field(default=1000, gt=0, description="rows per INSERT batch")
    num_partitions: int | None = Field(default=None, gt=0, description="at most this many connections write at once")
    truncate: bool = Field(default=False, description="overwrite keeps the table (its columns, indexes and grants) "
                           "and replaces its rows, instead of replacing the table")

    _table = field_validator("table")(classmethod(lambda cls, value: _table_name(value)))

    @model_validator(mode="after")
    def _truncate_overwrites(self) -> "JdbcSinkConfig":
        if self.truncate and self.mode != "overwrite":
            raise ValueError("truncate applies to mode: overwrite only; remove it or set mode: overwrite")
        return self
