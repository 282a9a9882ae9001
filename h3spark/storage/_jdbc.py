"""Databases over JDBC: the password (environment or file), Spark's JDBC options, the driver on
Spark's classpath, one connection from the driver, and failures in h3spark's tree.

The password is read when a read or write starts and goes only into the options Spark's JDBC
source gets and the driver's connection properties: no log line, error message or Spark conf
holds it (an error whose text would is masked).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from h3spark.config import DEFAULT_PASSWORD_ENV, JdbcConnectionConfig
from h3spark.errors import ConfigError, DependencyError, H3SparkError, JobFailedError, StorageError
from h3spark.spark import spark_errors

logger = logging.getLogger(__name__)

MASK = "<hidden>"


@dataclass(frozen=True)
class JdbcDriver:
    """A JDBC driver h3spark knows: its class and its Maven coordinate (for ``spark.jars.packages``)."""

    class_name: str
    package: str


# By the URL's subprotocol (jdbc:SUBPROTOCOL:...). The version matches h3spark/services/poms/postgres-jdbc.xml,
# which 'h3spark services up postgres' resolves into ~/.m2 (where spark.jars.packages finds it offline).
JDBC_DRIVERS = {"postgresql": JdbcDriver("org.postgresql.Driver", "org.postgresql:postgresql:42.7.14")}

_HINTS = {StorageError: "Check the url, the user and the password (password_env or password_file), that the database "
                        "is up (the local one: h3spark services up postgres) and that the table exists."}


def read_password(config: JdbcConnectionConfig, where: str, environ: dict[str, str] | None = None) -> str | None:
    """The password from ``config.password_file``, else the variable ``config.password_env`` names,
    else ``$H3SPARK_JDBC_PASSWORD``; None when none is set (the database may not ask for one)."""
    environ = os.environ if environ is None else environ
    if config.password_file is not None:
        return _password_from_file(Path(config.password_file).expanduser(), where)
    name = config.password_env or DEFAULT_PASSWORD_ENV
    value = environ.get(name)
    if config.password_env is not None and not value:
        state = "is empty" if value == "" else "is not set"
        raise ConfigError(where, [f"password_env: the environment variable {name} {state}. Export it with the "
                                  f"password (export {name}=...), or name a password_file instead."])
    return value or None


def _password_from_file(path: Path, where: str) -> str:
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(where, [f"password_file: {path} does not exist. Write the password into it "
                                  "(chmod 600), or name another file."]) from None
    except OSError as error:
        raise ConfigError(where, [f"password_file: {path} cannot be read ({error.strerror}). Make it readable "
                                  "by this user (and nobody else: chmod 600)."]) from None
    password = text.splitlines()[0] if text.strip() else ""
    if not password:
        raise ConfigError(where, [f"password_file: {path} is empty; its first line must be the password."])
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("password_file %s can be read by others (mode %o); chmod 600 %s", path, mode & 0o777, path)
    return password


def driver_class(config: JdbcConnectionConfig, where: str) -> str:
    """``config.driver``, else the known driver of the URL's subprotocol."""
    if config.driver:
        return config.driver
    subprotocol = config.url.split(":", 2)[1]
    known = JDBC_DRIVERS.get(subprotocol)
    if known is None:
        raise ConfigError(where, [f"driver: h3spark knows no JDBC driver for jdbc:{subprotocol}: URLs. Name its class "
                                  "(e.g. driver: com.mysql.cj.jdbc.Driver) and put its jar on Spark's classpath "
                                  "(spark.conf: {spark.jars.packages: GROUP:ARTIFACT:VERSION})."])
    return known.class_name


def jdbc_options(config: JdbcConnectionConfig, where: str, password: str | None) -> dict[str, str]:
    """Spark's JDBC options for ``config``: url, driver, user, password and the extra properties."""
    options = {"url": config.url, "driver": driver_class(config, where)}
    if config.user is not None:
        options["user"] = config.user
    if password is not None:
        options["password"] = password
    options.update({key: str(value).lower() if isinstance(value, bool) else str(value)
                    for key, value in config.properties.items()})
    return options


def require_driver(spark, class_name: str) -> None:
    """Raise DependencyError, with the setting that fixes it, when Spark's driver cannot load ``class_name``."""
    from py4j.protocol import Py4JJavaError

    try:
        _class_loader(spark).loadClass(class_name)
    except Py4JJavaError:
        package = next((d.package for d in JDBC_DRIVERS.values() if d.class_name == class_name), "GROUP:ARTIFACT:VERSION")
        raise DependencyError(f"the JDBC driver {class_name} is not on Spark's classpath. Add spark.conf: "
                              f"{{spark.jars.packages: {package}}} to the config (or spark-submit --packages "
                              f"{package}); 'h3spark services up postgres' puts PostgreSQL's driver in ~/.m2, where "
                              "Spark finds it offline.") from None


def _class_loader(spark):
    """The class loader Spark's JDBC source loads drivers with (jars added at run time included)."""
    return spark._jvm.org.apache.spark.util.Utils.getContextOrSparkClassLoader()


def quote_identifier(spark, url: str, name: str) -> str:
    """``name`` quoted the way Spark's JDBC dialect for ``url`` quotes columns ("name" for PostgreSQL)."""
    return spark._jvm.org.apache.spark.sql.jdbc.JdbcDialects.get(url).quoteIdentifier(name)


@contextlib.contextmanager
def jdbc_errors(what: str, secret: str | None):
    """Spark's and the driver's failures as h3spark errors (see h3spark.spark.spark_errors), with a
    database's hint; should a message hold ``secret``, it is masked."""
    try:
        with spark_errors(what, _HINTS):
            yield
    except H3SparkError as error:
        if secret:
            _mask(error, secret)
        raise


def _mask(error: H3SparkError, secret: str) -> None:
    error.args = tuple(arg.replace(secret, MASK) if isinstance(arg, str) else arg for arg in error.args)
    if isinstance(error, JobFailedError):
        error.failures = [dataclasses.replace(failure, message=failure.message.replace(secret, MASK),
                                              tail=failure.tail.replace(secret, MASK)) for failure in error.failures]


@contextlib.contextmanager
def connection(spark, options: dict[str, str], where: str):
    """One JDBC connection from Spark's driver JVM (the driver Spark's JDBC source uses), closed after."""
    jvm = spark._jvm
    properties = jvm.java.util.Properties()
    for key, value in options.items():
        if key not in ("url", "driver"):
            properties.setProperty(key, value)
    with jdbc_errors(f"connecting to {options['url']}", options.get("password")):
        driver = _class_loader(spark).loadClass(options["driver"]).newInstance()
        opened = driver.connect(options["url"], properties)
    if opened is None:
        raise ConfigError(where, [f"url: the JDBC driver {options['driver']} does not accept {options['url']}. "
                                  "Check the URL's jdbc:SUBPROTOCOL: against the driver."])
    try:
        yield opened
    finally:
        opened.close()
