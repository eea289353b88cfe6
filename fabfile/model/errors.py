"""The errors every layer may raise and the engine turns into a host's row."""

from __future__ import annotations

from .marks import CONFLICT_EXIT


class RemoteError(Exception):
    """A script failed on a host; the message says which and why."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def conflict(self) -> bool:
        """A file changed under us since the facts were gathered: plan again."""
        return self.code == CONFLICT_EXIT


class AddressUnknown(Exception):
    """The registry could not be learnt; the message says why and what to set."""
