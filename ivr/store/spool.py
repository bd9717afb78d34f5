"""A local append-only spool for the writes that must not be lost while Redis is down (a fault transfer's state,
context records, call-back requests, events): one JSON line per write, fsynced, replayed in order when Redis
answers again. One file per process (no interleaving between workers); files left by a process that died are
claimed by rename and replayed by the next one that looks. Concurrent appends share fsyncs (group commit): at 100
fault webhooks at once, each waiting for its own three flushes in turn queued them behind the disk."""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the file and the counters
        self._flushing = threading.Lock()  # one fsync at a time; taken before `_lock`, never inside it
        self._file: TextIO | None = None
        self._file_pid = 0
        self._written = self._flushed = 0  # appends written to the file / known to be on disk
        self._dirty = self.on_disk()  # what a process that died left is replayed on this one's first read

    @property
    def path(self) -> Path:
        return self.directory / f"spool-{os.getpid()}.jsonl"  # per process: a forked worker writes its own

    def append(self, kind: str, payload: dict) -> None:
        """Returns once the line is on disk."""
        self.append_all([(kind, payload)])

    def append_all(self, writes: list[tuple[str, dict]]) -> None:
        """Returns once the lines are on disk (one webhook's writes: one fsync, shared with other webhooks')."""
        if not writes:
            return
        lines = "".join(json.dumps({"kind": kind, "payload": payload}, ensure_ascii=False) + "\n"
                        for kind, payload in writes)
        with self._lock:
            if self._file is None or self._file_pid != os.getpid():  # none yet, or opened before a fork
                self._file, self._file_pid = open(self.path, "a", encoding="utf-8"), os.getpid()
            self._file.write(lines)
            self._file.flush()
            self._written += 1
            ticket = self._written
            self._dirty = True
        self._flush(ticket)
        # INFO: during an outage every webhook spools a few writes; the breaker and the webhook's own line say so
        log.info("Redis unavailable: %s spooled to %s (replayed when Redis answers)",
                 ", ".join(kind for kind, _ in writes), self.path)

    def _flush(self, ticket: int) -> None:
        """fsync unless a flush that began after line `ticket` was written already covered it."""
        with self._flushing:
            if self._flushed >= ticket:
                return
            with self._lock:
                covered, spool = self._written, self._file
            if spool is not None:  # None: a replay closed (and flushed) the file meanwhile
                os.fsync(spool.fileno())
            self._flushed = max(self._flushed, covered)

    def _close(self) -> None:
        """Before the file is claimed for replay (called holding both locks)."""
        if self._file is not None and self._file_pid == os.getpid():
            os.fsync(self._file.fileno())
            self._file.close()
        self._file = None
        self._flushed = self._written

    def pending(self) -> bool:
        """Whether this process has anything to replay: a flag, so a webhook's read costs no directory listing."""
        return self._dirty

    def on_disk(self) -> bool:
        return any(name.startswith(("spool-", "replaying-")) and name.endswith(".jsonl")
                   for name in os.listdir(self.directory))

    def replay(self, apply: Callable[[str, dict], None]) -> int:
        """Apply every spooled write in order (this process's file and any a dead process left); a write that fails
        stops the replay and keeps the rest for the next try. Returns how many were applied."""
        applied = 0
        with self._flushing, self._lock:
            self._close()
            for path in self.directory.glob("replaying-*.jsonl"):  # a replay a dead process did not finish
                owner = int(path.name.split("-")[1])
                if owner != os.getpid() and not _alive(owner):
                    path.rename(path.with_name(path.name.replace(f"replaying-{owner}-", f"replaying-{os.getpid()}-")))
            for path in sorted(self.directory.glob("spool-*.jsonl")):
                claimed = path.with_name(path.name.replace("spool-", f"replaying-{os.getpid()}-", 1))
                try:
                    path.rename(claimed)  # atomic: one process replays a file
                except FileNotFoundError:
                    continue
            for claimed in sorted(self.directory.glob(f"replaying-{os.getpid()}-*.jsonl")):
                lines = claimed.read_text(encoding="utf-8").splitlines()
                for index, line in enumerate(lines):
                    try:
                        record = json.loads(line)
                    except ValueError:
                        log.error("spool %s: unreadable line %d skipped", claimed, index + 1)
                        continue
                    try:
                        apply(record["kind"], record["payload"])
                    except Exception:
                        rest = "\n".join(lines[index:]) + "\n"
                        claimed.write_text(rest, encoding="utf-8")
                        log.warning("spool replay paused at %s line %d (Redis still unavailable)", claimed, index + 1)
                        return applied
                    applied += 1
                claimed.unlink()
            self._dirty = self.on_disk()  # another worker may have spooled meanwhile
        if applied:
            log.warning("spool replayed: %d writes made while Redis was unavailable", applied)
        return applied


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
