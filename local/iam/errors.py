"""The error a refused request ends with, in the called service's words."""

from __future__ import annotations


class ServiceError(Exception):
    """A request AWS refuses: the error `code` and HTTP `status` the service reports, and its message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
