"""A local append-only spool in front of the prediction log: records are written here first, then moved to the store.

Each process appends JSON lines to its own file while holding an exclusive lock on it. A flusher copies new lines
to the store in batches (insert-or-ignore by record id, so a replay never duplicates) and remembers how far it got.
Once a file is flushed to its end it is swapped for a fresh one and deleted, so a record (with its input window)
stays on local disk only until the store holds it.
Files whose owner died (lock free) are replayed by whichever process finds them. The store can be down for as long
as the disk holds out; nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson  # records carry their input windows: the json module's encode and decode held the GIL 5% of the time

log = logging.getLogger("earlywarn.spool")
Writer = Callable[[str, list[dict[str, Any]]], int]


@dataclass
class FlushStats:
    flushed: int = 0
    failures: int = 0
    last_error: str | None = None


class Spool:
    """Durable append + background flush to a store writer `(table, records) -> inserted`."""

    def __init__(self, directory: str | Path, writer: Writer, fsync: bool = False, batch: int = 2000):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writer, self.fsync, self.batch = writer, fsync, batch
        self.stats = FlushStats()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open_new()

    def _open_new(self) -> None:
        self.path = self.dir / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the process lifetime
        fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, table: str, records: list[dict[str, Any]]) -> None:
        """Write records durably before the caller answers; raises OSError if the disk refuses."""
        lines = "".join(
            orjson.dumps({"t": table, "r": r}, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n" for r in records
        )
        with self._lock:
            self._fh.write(lines)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())

    # -- flushing -------------------------------------------------------------------------------------------------
    @staticmethod
    def _offset_path(path: Path) -> Path:
        return path.with_suffix(".offset")

    def _read_offset(self, path: Path) -> int:
        p = self._offset_path(path)
        return int(p.read_text()) if p.exists() else 0

    def _write_offset(self, path: Path, offset: int) -> None:
        tmp = self._offset_path(path).with_suffix(".offset.tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self._offset_path(path))

    def _flush_file(self, path: Path) -> int:
        """Move unflushed complete lines of one file to the store; returns records sent."""
        offset = self._read_offset(path)
        sent = 0
        with open(path, encoding="utf-8") as fh:
            fh.seek(offset)
            while True:
                pending: dict[str, list[dict[str, Any]]] = {}
                n, end = 0, offset
                while n < self.batch:
                    line = fh.readline()
                    if not line.endswith("\n"):  # nothing more, or a line still being written
                        break
                    item = orjson.loads(line)
                    pending.setdefault(item["t"], []).append(item["r"])
                    n += 1
                    end = fh.tell()
                if not n:
                    return sent
                for table, recs in pending.items():
                    self.writer(table, recs)
                offset = end
                self._write_offset(path, offset)
                sent += n
                self.stats.flushed += n
                time.sleep(0)  # small batches and a yield between them keep the request threads responsive

    def flush(self) -> int:
        """Flush this process's file and any orphaned files; returns records sent. Raises if the store is down."""
        with self._flush_lock:
            sent = self._flush_file(self.path)
            for other in sorted(self.dir.glob("spool-*.jsonl")):
                if other == self.path:
                    continue
                sent += self._replay_orphan(other)
            if self.path.stat().st_size > 0:  # all of it is in the store now: no copy stays on disk
                self._rotate()
            return sent

    def _replay_orphan(self, path: Path) -> int:
        try:
            fh = open(path, encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            return 0
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its owner is alive and flushes it
            sent = self._flush_file(path)
            self._offset_path(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            log.info("replayed %d records from an orphaned spool file", sent)
            return sent

    def _rotate(self) -> None:
        with self._lock:
            old_fh, old = self._fh, self.path
            self._open_new()
        try:
            self._flush_file(old)  # lines appended after the flush that led here
            self._offset_path(old).unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        finally:
            old_fh.close()  # if the store went away meanwhile, the file is left unlocked for replay

    def backlog_bytes(self) -> int:
        total = 0
        for p in self.dir.glob("spool-*.jsonl"):
            try:
                total += p.stat().st_size - self._read_offset(p)
            except (FileNotFoundError, ValueError):
                continue
        return total

    def start(self, interval: float = 0.2) -> None:
        """Flush in a background thread every `interval` seconds, backing off while the store is down."""

        def loop() -> None:
            delay = interval
            while not self._stop.wait(delay):
                try:
                    self.flush()
                    delay = interval
                except Exception as err:
                    self.stats.failures += 1
                    self.stats.last_error = type(err).__name__
                    delay = min(delay * 2, 5.0)
                    log.warning("prediction store unavailable (%s); records stay spooled", type(err).__name__)

        self._thread = threading.Thread(target=loop, name="spool-flusher", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the flusher, try a last flush, release the file (left for replay if the store is still down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.flush()
                break
            except Exception:
                time.sleep(0.2)
        self._fh.close()
        if self._read_offset(self.path) >= self.path.stat().st_size:
            self._offset_path(self.path).unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
