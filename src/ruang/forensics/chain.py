"""Hash chains of JSON-line records: how a record is hashed, linked and checked.

Every record carries `prev` (the `hash` of the record before it in the same chain, or
`GENESIS` for the first record a chain ever wrote) and `seq` (0, 1, 2, … along the chain), and
`hash` = SHA-256 (hex) of the record's canonical JSON without `hash`: keys sorted, no
whitespace, ASCII only (`json.dumps(r, sort_keys=True, separators=(",", ":"))`). A line in a
chain file is that canonical JSON with `hash` included, so anyone can re-hash it with any
JSON library that sorts keys and prints floats the shortest way that reads back.

A chain is one (node, worker) pair. Files are rotated away oldest first to bound the disk: the
first surviving record's `prev` is then the chain's only anchor — the report quotes it and the
head (last hash), so a published report names exactly which records it rests on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64  # `prev` of a chain's very first record


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, ASCII."""
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode("ascii")


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the record without its `hash` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def seal(record: dict[str, Any], prev: str) -> str:
    """Link `record` after `prev`, set its `hash`, and return its line (no newline)."""
    record.pop("hash", None)
    record["prev"] = prev
    record["hash"] = hashlib.sha256(canonical(record)).hexdigest()
    return canonical(record).decode("ascii")


@dataclass
class ChainInfo:
    """What the verifier learnt of one chain."""

    node: str
    worker: int
    records: int = 0
    first_seq: int = -1
    last_seq: int = -1
    anchor: str = ""  # `prev` of the first record read (GENESIS if nothing was rotated away)
    head: str = ""  # `hash` of the last record read
    first_t: int = 0
    last_t: int = 0
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, for reports."""
        return {
            "node": self.node,
            "worker": self.worker,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "anchor": self.anchor,
            "head": self.head,
            "first_t": self.first_t,
            "last_t": self.last_t,
            "files": self.files,
            "rotated_away": self.anchor != GENESIS,
        }


@dataclass
class Checked:
    """Records read from chain files, in chain order, and what is wrong with them."""

    records: list[dict[str, Any]]
    chains: list[ChainInfo]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when every chain verified."""
        return not self.problems


def chain_files(directory: Path) -> list[Path]:
    """Every chain file under `directory` (recursively), sorted by name."""
    return sorted(directory.rglob("*.jsonl"), key=lambda p: (p.name, str(p)))


def read_and_verify(paths: Iterable[Path]) -> Checked:
    """Read chain files (any order, several chains mixed) and check every link.

    Within a chain, files are taken in name order (their names start with the chain and the
    time of their first record) and lines in file order. Problems found: a line that is not
    JSON, a record whose hash does not match its content (edited), a `prev` that is not the
    previous record's hash (deleted, inserted or reordered records), a `seq` that does not
    step by one, a time that goes backwards. A torn last line of a chain's newest file (a crash
    in mid-write) is reported too, as it is indistinguishable from a truncation.
    """
    by_chain: dict[tuple[str, int], list[tuple[Path, int, dict[str, Any]]]] = {}
    problems: list[str] = []
    for path in sorted(paths, key=lambda p: (p.name, str(p))):
        try:
            lines = path.read_bytes().splitlines()
        except OSError as e:
            problems.append(f"{path}: cannot read ({e})")
            continue
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = (str(record["node"]), int(record["worker"]))
            except (ValueError, KeyError, TypeError):
                problems.append(f"{path.name}:{number}: not a chain record ({line[:60]!r})")
                continue
            by_chain.setdefault(key, []).append((path, number, record))
    records: list[dict[str, Any]] = []
    chains: list[ChainInfo] = []
    for (node, worker), items in sorted(by_chain.items()):
        info = ChainInfo(node, worker)
        prev_hash: str | None = None
        prev_seq = -1
        prev_t = -(2**62)
        for path, number, record in items:
            where = f"{path.name}:{number}"
            if path.name not in info.files:
                info.files.append(path.name)
            stated = record.get("hash")
            if stated != record_hash(record):
                problems.append(
                    f"{where}: record seq {record.get('seq')} was altered (hash mismatch)"
                )
            seq = int(record.get("seq", -1))
            t = int(record.get("t", 0))
            if prev_hash is None:
                info.anchor = str(record.get("prev", ""))
                info.first_seq, info.first_t = seq, t
                if info.anchor == GENESIS and seq != 0:
                    problems.append(f"{where}: genesis record has seq {seq}, not 0")
            else:
                if record.get("prev") != prev_hash:
                    problems.append(
                        f"{where}: seq {seq} does not follow seq {prev_seq} (prev hash differs: "
                        "a record was removed, inserted or moved)"
                    )
                if seq != prev_seq + 1:
                    problems.append(f"{where}: seq jumps from {prev_seq} to {seq}")
                if t < prev_t:
                    problems.append(f"{where}: time goes back from {prev_t} to {t}")
            prev_hash, prev_seq, prev_t = str(stated), seq, t
            info.records += 1
            records.append(record)
        info.head, info.last_seq, info.last_t = prev_hash or "", prev_seq, prev_t
        chains.append(info)
    return Checked(records, chains, problems)


def verify(paths: Iterable[Path]) -> tuple[bool, list[str]]:
    """Check chain files; `(True, [])` when every record is intact and linked."""
    checked = read_and_verify(paths)
    return checked.ok, checked.problems
