"""The one error type of the serving path: an HTTP status and a message that names what was wrong."""
from __future__ import annotations

from mapred.errors import ModelError


class InferError(ModelError):
    """A request the engine refuses: ``status`` is the HTTP code (400 bad tensor, 404 unknown, 503 busy)."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
