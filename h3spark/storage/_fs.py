"""The small file-system layer behind every Python-side access to datasets.

Spark reads and writes ``file://`` and ``hdfs://`` natively; Python code (manifests,
markers, listing, publishing, Parquet reads by the feeder) goes through
:func:`filesystem_for`, which picks the local disk or WebHDFS (the ``hdfs`` package).
"""

from __future__ import annotations

import io
import os
import shutil
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import BinaryIO, Iterator
from urllib.parse import urlsplit

from h3spark.errors import StorageError, missing_dependency
from h3spark.storage._uri import local_path

DEFAULT_WEBHDFS_PORT = 9870


class FileSystem(ABC):
    """Operations on absolute URIs of one scheme."""

    @abstractmethod
    def exists(self, uri: str) -> bool: ...

    @abstractmethod
    def isdir(self, uri: str) -> bool: ...

    @abstractmethod
    def listdir(self, uri: str) -> list[str]:
        """Names (not URIs) of the entries of a directory, sorted."""

    @abstractmethod
    def makedirs(self, uri: str) -> None: ...

    @abstractmethod
    def read_bytes(self, uri: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> None: ...

    @abstractmethod
    def rename(self, source: str, target: str) -> None:
        """Rename atomically; never replaces: raises StorageError when the target exists."""

    @abstractmethod
    def delete(self, uri: str) -> None:
        """Delete a file or a directory tree; a missing path is not an error."""

    @abstractmethod
    def open_input(self, uri: str) -> BinaryIO:
        """A seekable binary file for reading (range reads on remote storage)."""

    def size(self, uri: str) -> int:
        with self.open_input(uri) as handle:
            return handle.seek(0, io.SEEK_END)


class LocalFileSystem(FileSystem):
    """The local disk, for ``file://`` URIs and plain paths."""

    def exists(self, uri):
        return os.path.exists(local_path(uri))

    def isdir(self, uri):
        return os.path.isdir(local_path(uri))

    def listdir(self, uri):
        with _translated(uri):
            return sorted(os.listdir(local_path(uri)))

    def makedirs(self, uri):
        with _translated(uri):
            os.makedirs(local_path(uri), exist_ok=True)

    def read_bytes(self, uri):
        with _translated(uri), open(local_path(uri), "rb") as handle:
            return handle.read()

    def write_bytes(self, uri, data):
        path = local_path(uri)
        with _translated(uri):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(data)

    def rename(self, source, target):
        # The check covers files and empty folders; for a non-empty folder, which is what a
        # publish can race with, os.rename itself refuses atomically (ENOTEMPTY or EEXIST).
        with _translated(source):
            if os.path.lexists(local_path(target)):
                raise FileExistsError(f"cannot rename {local_path(source)} to {local_path(target)}: the target exists")
            os.rename(local_path(source), local_path(target))

    def delete(self, uri):
        path = local_path(uri)
        with _translated(uri):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.remove(path)

    def open_input(self, uri):
        with _translated(uri):
            return open(local_path(uri), "rb")

    def size(self, uri):
        return os.path.getsize(local_path(uri))


class WebHDFSFileSystem(FileSystem):
    """HDFS through WebHDFS (the ``hdfs`` package); ``hdfs://host:port/path`` URIs."""

    def __init__(self, webhdfs_url: str, user: str | None = None):
        try:
            from hdfs import InsecureClient
        except ImportError:
            raise missing_dependency("hdfs", "Reading hdfs:// URIs from Python") from None
        self.webhdfs_url = webhdfs_url
        self._client = InsecureClient(webhdfs_url, user=user or os.environ.get("HADOOP_USER_NAME") or _user())

    @staticmethod
    def _path(uri: str) -> str:
        return urlsplit(uri).path or "/"

    def exists(self, uri):
        with _translated(uri, self.webhdfs_url):
            return self._client.status(self._path(uri), strict=False) is not None

    def isdir(self, uri):
        with _translated(uri, self.webhdfs_url):
            status = self._client.status(self._path(uri), strict=False)
        return bool(status) and status["type"] == "DIRECTORY"

    def listdir(self, uri):
        with _translated(uri, self.webhdfs_url):
            return sorted(self._client.list(self._path(uri)))

    def makedirs(self, uri):
        with _translated(uri, self.webhdfs_url):
            self._client.makedirs(self._path(uri))

    def read_bytes(self, uri):
        with _translated(uri, self.webhdfs_url), self._client.read(self._path(uri)) as reader:
            return reader.read()

    def write_bytes(self, uri, data):
        with _translated(uri, self.webhdfs_url):
            self._client.write(self._path(uri), data=data, overwrite=True)

    def rename(self, source, target):
        # WebHDFS's plain RENAME moves the source *into* a target folder that exists; with
        # renameoptions=NONE the NameNode runs rename2, which refuses any existing target in
        # the same atomic step (FileAlreadyExistsException). The hdfs package's rename()
        # passes no options, hence its request method.
        with _translated(source, self.webhdfs_url):
            self._client._rename(self._path(source), destination=self._path(target), renameoptions="NONE")

    def delete(self, uri):
        with _translated(uri, self.webhdfs_url):
            self._client.delete(self._path(uri), recursive=True)

    def size(self, uri):
        with _translated(uri, self.webhdfs_url):
            return int(self._client.status(self._path(uri))["length"])

    def read_range(self, uri: str, offset: int, length: int) -> bytes:
        with _translated(uri, self.webhdfs_url), self._client.read(self._path(uri), offset=offset, length=length) as reader:
            return reader.read()

    def open_input(self, uri):
        return io.BufferedReader(_RangeReader(self, uri, self.size(uri)), buffer_size=1 << 20)


class _RangeReader(io.RawIOBase):
    """A seekable raw file over WebHDFS range reads, so Parquet footers and row groups
    are fetched on their own instead of copying the whole file."""

    def __init__(self, fs: WebHDFSFileSystem, uri: str, size: int):
        self._fs, self._uri, self._size, self._pos = fs, uri, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        length = min(len(buffer), self._size - self._pos)
        if length <= 0:
            return 0
        data = self._fs.read_range(self._uri, self._pos, length)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


_defaults: dict[str, str | None] = {"webhdfs_url": None, "user": None}


def configure(webhdfs_url: str | None = None, user: str | None = None) -> None:
    """Set this process's defaults for hdfs:// access (a config's ``storage:`` section)."""
    _defaults.update(webhdfs_url=webhdfs_url, user=user)


def filesystem_for(uri: str, webhdfs_url: str | None = None, user: str | None = None) -> FileSystem:
    """The file system for an absolute URI (see :func:`h3spark.storage.resolve_uri`)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return LocalFileSystem()
    if parts.scheme == "hdfs":
        return WebHDFSFileSystem(webhdfs_url_for(uri, webhdfs_url or _defaults["webhdfs_url"]), user or _defaults["user"])
    raise StorageError(f"URI {uri!r} has the unsupported scheme '{parts.scheme}'. Use file:// or hdfs://.")


def webhdfs_url_for(uri: str, configured: str | None = None) -> str:
    """WebHDFS address for an hdfs:// URI: the config, else $H3SPARK_WEBHDFS_URL, else host:9870."""
    if configured or os.environ.get("H3SPARK_WEBHDFS_URL"):
        return configured or os.environ["H3SPARK_WEBHDFS_URL"]
    host = urlsplit(uri).hostname or "127.0.0.1"
    return f"http://{host}:{DEFAULT_WEBHDFS_PORT}"


def _user() -> str:
    import getpass

    return getpass.getuser()


@contextmanager
def _translated(uri: str, endpoint: str | None = None) -> Iterator[None]:
    """Turn OS and WebHDFS errors into StorageError naming the URI."""
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError:
        raise StorageError(f"{uri}: no such file or directory.") from None
    except (OSError, ConnectionError) as error:
        where = f" (WebHDFS at {endpoint}; is HDFS running? try 'h3spark services up hdfs')" if endpoint else ""
        raise StorageError(f"{uri}: {error}{where}") from None
    except Exception as error:  # the hdfs package raises HdfsError and requests' errors
        if type(error).__module__.split(".")[0] not in ("hdfs", "requests", "urllib3"):
            raise
        answered = getattr(error, "exception", None)  # the NameNode's own refusal (e.g. FileAlreadyExistsException)
        where = f" (WebHDFS at {endpoint}; is HDFS running? try 'h3spark services up hdfs')" if endpoint and not answered else ""
        raise StorageError(f"{uri}: {str(error).splitlines()[0] if str(error) else type(error).__name__}{where}") from None
