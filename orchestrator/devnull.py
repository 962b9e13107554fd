"""Pointing an output stream at /dev/null once its reader is gone (``| head`` closed
the pipe), so nothing written later fails again or prints a traceback."""

from __future__ import annotations

import contextlib
import os
from typing import TextIO


def point_at_devnull(stream: TextIO) -> bool:
    """Makes ``stream``'s file descriptor /dev/null (its pending bytes and the
    interpreter's last flush land there too); False when it has no descriptor."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
        return True
    except (OSError, ValueError, AttributeError):
        return False
    finally:
        with contextlib.suppress(OSError):
            os.close(devnull)
