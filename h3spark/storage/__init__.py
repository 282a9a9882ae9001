"""Storage: file:// and hdfs:// URIs, the Python-side file system, the versioned dataset layout
(``resolve_published``: what every reader reads), atomic publish, manifests; database tables over
JDBC (credentials, and ``write_jdbc``: a table written all at once)."""

from h3spark.storage._dataset import ALL_ROWS, describe_splits
from h3spark.storage._fs import FileSystem, configure, LocalFileSystem, WebHDFSFileSystem, filesystem_for, webhdfs_url_for
from h3spark.storage._jdbc import (
    JDBC_DRIVERS,
    JdbcDriver,
    connection,
    jdbc_errors,
    jdbc_options,
    quote_identifier,
    read_password,
    require_driver,
)
from h3spark.storage._jdbc_sink import publish_statements, staging_table, write_jdbc
from h3spark.storage._layout import (
    MANIFEST_NAME,
    SUCCESS_MARKER,
    is_published,
    read_manifest,
    require_published,
    resolve_published,
    resolve_source,
    write_manifest,
)
from h3spark.storage._publish import publishing
from h3spark.storage._uri import join_uri, local_path, resolve_uri, split_name

__all__ = [
    "JDBC_DRIVERS",
    "JdbcDriver",
    "connection",
    "jdbc_errors",
    "jdbc_options",
    "quote_identifier",
    "read_password",
    "require_driver",
    "publish_statements",
    "staging_table",
    "write_jdbc",
    "describe_splits",
    "ALL_ROWS",
    "FileSystem",
    "configure",
    "LocalFileSystem",
    "WebHDFSFileSystem",
    "filesystem_for",
    "webhdfs_url_for",
    "publishing",
    "is_published",
    "require_published",
    "resolve_published",
    "resolve_source",
    "write_manifest",
    "read_manifest",
    "MANIFEST_NAME",
    "SUCCESS_MARKER",
    "resolve_uri",
    "local_path",
    "join_uri",
    "split_name",
]
