"""The typed error hierarchy.

Every error names the thing that went wrong (a path, a task, a record offset,
a worker) so that a user reading one line knows where to look.  The CLI turns
any ``MapredError`` into a one-line message and a non-zero exit status.
"""
from __future__ import annotations


class MapredError(Exception):
    """Base of every error mapred raises on purpose."""


class ConfigError(MapredError):
    """A setting, parameter or argument that cannot be used."""


class InputError(MapredError):
    """Job input that cannot be read: a missing path, an empty glob, an undecodable line."""


class OutputExistsError(MapredError):
    """The output path exists and overwrite was not asked for."""


class RecordError(MapredError):
    """A record a user function produced that the engine cannot carry (not a pair, unencodable key)."""


class UserCodeError(MapredError):
    """A user function raised.  Carries the task, split, record offset and the traceback text."""

    def __init__(self, message: str, *, task: str = "", split: str = "", offset=None,
                 traceback_text: str = "") -> None:
        super().__init__(message)
        self.task = task
        self.split = split
        self.offset = offset
        self.traceback_text = traceback_text


class JobFailed(MapredError):
    """A job ended FAILED.  ``cause`` holds the last attempt's error details (a dict)."""

    def __init__(self, message: str, *, job_id: str = "", cause: dict | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.cause = cause or {}


class JobKilled(MapredError):
    """A job was killed on request before it finished."""


class ProtocolError(MapredError):
    """A wire message that does not decode or does not validate; the receiver logs and drops it."""


class StorageError(MapredError):
    """Base of block-store errors."""


class FileNotFound(StorageError):
    """A path that does not exist in the store."""


class FileExists(StorageError):
    """Creating over an existing path without overwrite."""


class ChecksumError(StorageError):
    """A block replica whose bytes do not match its stored checksums."""


class NoLiveReplica(StorageError):
    """No DataNode that holds a block could serve it."""


class PermissionDenied(StorageError):
    """The store refused a path operation to this principal (owner and permission bits)."""


class SafeModeError(StorageError):
    """A namespace change refused because the NameNode is in safe mode."""


class ClusterError(MapredError):
    """A master, worker or NameNode that cannot be reached, or refused us."""


class FetchError(MapredError):
    """A map output that could not be read; carries the map index so the master re-runs that map."""

    def __init__(self, message: str, map_index: int) -> None:
        super().__init__(message)
        self.map_index = map_index


class FatalError(MapredError):
    """Raise (a subclass of) this from user code when retrying cannot help: the job fails at once.

    The engine knows no library's errors by name; a library marks its own
    as fatal by deriving from this class (``ModelError`` does).
    """


class ModelError(FatalError):
    """Bad model input or state: wrong width, NaN features, a diverging loss, a bad model file."""
