"""Build once, share on disk: what a process builds slowly (a trained classifier, the encoder's quantised graph)
is written to the cache directory under a file lock, so workers starting together build it once and later
processes load it. A cache that cannot be used only costs the build."""
from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def load_or_build(path: Path, load: Callable[[Path], T | None], build: Callable[[], tuple[T, bytes]], *,
                  what: str) -> T:
    """`load(path)` when the file is there and readable (None: build again), else `build()`, whose bytes are
    written atomically to `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second worker waits for the first one's build, then loads it
            found = load(path) if path.exists() else None
            if found is not None:
                return found
            value, data = build()
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(data)
            partial.replace(path)
            return value
    except OSError as exc:
        log.warning("%s cache %s unusable (%s): building in memory", what, path.parent, exc)
        return build()[0]
