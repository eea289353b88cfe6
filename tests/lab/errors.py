"""The lab's exceptions and its progress messages (on stderr, stdout is for results)."""

import sys


class LabError(Exception):
    """Something the lab could not do; the message says what to do about it."""


class LabUnavailable(LabError):
    """This machine cannot run the lab: not root, no Docker engine, no debootstrap."""


def say(message: str) -> None:
    """Tell the person waiting what the lab is doing."""
    print(f"lab: {message}", file=sys.stderr, flush=True)
