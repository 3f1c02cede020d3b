"""One chain's files on disk: buffered appends, bounded bytes, resumed after a restart."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import IO, Any

from ruang.forensics.chain import GENESIS, record_hash, seal

log = logging.getLogger(__name__)

FILES_PER_BUDGET = 8  # a file is closed at max_bytes / 8, so deleting one frees at most 1/8
FSYNC_EVERY_S = 10.0  # a crash loses at most this much of the chain (buffered otherwise)


def chain_prefix(node: str, worker: int) -> str:
    """File name prefix of a chain (the node's name made safe for a file name)."""
    return f"{re.sub(r'[^A-Za-z0-9_.]', '_', node)}-w{worker}-"


class ChainWriter:
    """Appends sealed records to `{node}-w{worker}-{YYYYmmddHHMMSS}-{n}.jsonl` files in `directory`.

    A new file starts each UTC hour or when the current one reaches max_bytes / 8; whenever the
    chain's files exceed `max_bytes` in total, the oldest file is deleted (the chain goes on:
    the first surviving record's `prev` becomes its anchor). On start the chain resumes after
    the last intact record found on disk; a torn last line (a crash mid-write) is cut off.
    """

    def __init__(self, directory: Path, node: str, worker: int, max_bytes: int) -> None:
        if max_bytes < 1024:
            raise ValueError(f"max_bytes must be at least 1024, got {max_bytes}")
        self.directory = directory
        self.prefix = chain_prefix(node, worker)
        self.max_bytes = max_bytes
        self.file_limit = max(512, max_bytes // FILES_PER_BUDGET)
        directory.mkdir(parents=True, exist_ok=True)
        self._sizes: dict[Path, int] = {p: p.stat().st_size for p in self._files()}
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._hour = -1
        self._last_fsync = time.monotonic()
        self.seq = 0
        self.head = GENESIS
        self.records_written = 0
        self.bytes_written = 0
        self.files_deleted = 0
        self._resume()

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.prefix}*.jsonl"))

    def _resume(self) -> None:
        for path in reversed(sorted(self._sizes)):
            data = path.read_bytes()
            end = len(data)
            while end > 0:
                start = data.rfind(b"\n", 0, end - 1) + 1
                line = data[start:end].strip()
                try:
                    record: dict[str, Any] = json.loads(line)
                    intact = record.get("hash") == record_hash(record)
                except ValueError:
                    intact = False
                if intact:
                    if end < len(data):  # cut the torn tail so the next line starts clean
                        log.warning("forensics: cut %d torn bytes off %s", len(data) - end, path)
                        with path.open("r+b") as f:
                            f.truncate(end)
                        self._sizes[path] = end
                    self.seq, self.head = int(record["seq"]) + 1, str(record["hash"])
                    return
                if line:
                    log.warning("forensics: ignoring a torn line at the end of %s", path)
                end = start
            # a file without a single intact record: leave it to the verifier to report

    def append(self, records: list[dict[str, Any]]) -> None:
        """Seal each record after the chain's head and write it (buffered)."""
        for record in records:
            record["seq"] = self.seq
            line = (seal(record, self.head) + "\n").encode("ascii")
            hour = int(record["t"]) // 3600
            fh = self._file
            if (
                fh is None
                or hour != self._hour
                or self._sizes[self._path_or_fail()] >= self.file_limit
            ):
                fh = self._open(int(record["t"]))
                self._hour = hour
            fh.write(line)
            assert self._path is not None
            self._sizes[self._path] += len(line)
            self.seq += 1
            self.head = record["hash"]
            self.records_written += 1
            self.bytes_written += len(line)
        if self._file is not None:
            self._file.flush()  # one write(2) a second: readers see the chain up to now
            if time.monotonic() - self._last_fsync >= FSYNC_EVERY_S:
                os.fsync(self._file.fileno())
                self._last_fsync = time.monotonic()
        self._bound()

    def _path_or_fail(self) -> Path:
        assert self._path is not None
        return self._path

    def _open(self, t: int) -> IO[bytes]:
        self.close()
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(t))
        n = 0  # a second file may start within the same second only when the first is full
        path = self.directory / f"{self.prefix}{stamp}-{n:03d}.jsonl"
        while path in self._sizes and self._sizes[path] >= self.file_limit:
            n += 1
            path = self.directory / f"{self.prefix}{stamp}-{n:03d}.jsonl"
        self._file = path.open("ab", buffering=1 << 16)
        self._path = path
        self._sizes.setdefault(path, path.stat().st_size)
        return self._file

    def _bound(self) -> None:
        while sum(self._sizes.values()) > self.max_bytes and len(self._sizes) > 1:
            oldest = min(self._sizes, key=lambda p: p.name)
            if oldest == self._path:
                break
            with contextlib.suppress(FileNotFoundError):
                oldest.unlink()
            del self._sizes[oldest]
            self.files_deleted += 1
        if sum(self._sizes.values()) > self.max_bytes and self._file is not None:
            self.close()  # the current file alone is over budget: the next record starts anew

    @property
    def chain_bytes(self) -> int:
        """Bytes of this chain's files on disk (as written, buffered included)."""
        return sum(self._sizes.values())

    @property
    def files(self) -> int:
        """This chain's files on disk."""
        return len(self._sizes)

    def close(self) -> None:
        """Flush and fsync the current file and close it."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self._path = None
