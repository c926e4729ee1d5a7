"""Splitting a sweep between runs: claims (concurrent runs on one directory) and shards (``--shard i/N``).

**Shards.** ``--shard i/N`` keeps the cells whose key hashes to ``i - 1`` modulo ``N`` (SHA-256 of the
key as canonical JSON, so every machine and Python version splits alike): N runs, e.g. a SLURM job
array, each compute a disjoint 1/N of the cells, and ``codecbench merge`` joins their directories.

**Claims.** Two runs on one results directory never compute the same cell, and a crash blocks nothing.

Before a cell is computed, its run claims it: a file ``claims/<sha256 of the cell key>.claim`` in the
results directory, created atomically (written aside, then hard-linked into place: ``link`` fails if the
name exists, on local file systems and NFS alike) and holding the run id, host, pid, the process's start
time and the cell. The claim is removed once the cell's row is stored. A claim is *stale*, and is taken
over, when its process is gone: on the same host, when no process has that pid and start time (a reused
pid does not keep a claim alive); on another host, when the claim has not been refreshed for
``LEASE_S`` seconds (a live run refreshes its claims every ``HEARTBEAT_S`` s). Take-overs happen under
an exclusive ``flock`` of ``claims/.lock``, so two runs never take over the same stale claim.

After claiming a cell, a run reads the rows appended to the store since it planned
(:meth:`codecbench.store.ResultsStore.rows_after`): a cell stored meanwhile by another run is not
computed again. A cell claimed by another live run is left to it (checked once more at the end).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codecbench.errors import UsageError
from codecbench.store import ResultsStore, cell_key

CLAIMS_DIR = "claims"
#: Seconds without refresh after which a claim of another host is stale.
LEASE_S = 120.0
#: Seconds between refreshes of a run's claims.
HEARTBEAT_S = 20.0


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[1].split()[19].decode()


def _alive_here(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` (started at ``started``, when known) still runs on this host."""
    if os.path.isdir("/proc"):
        return _process_start(pid) is not None and started in (None, _process_start(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def key_digest(key: tuple) -> str:
    """SHA-256 (hex) of a cell key as canonical JSON: the same on every machine."""
    return hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()


def claim_name(key: tuple) -> str:
    """File name of a cell's claim."""
    return key_digest(key)[:32] + ".claim"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``: the cells whose key digest is ``index - 1`` modulo ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/N"`` with 1 ≤ i ≤ N; UsageError naming ``--shard`` otherwise."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise UsageError(f"--shard {text!r}: expected i/N, e.g. 1/4") from None
        if not 1 <= index <= count:
            raise UsageError(f"--shard {text!r}: i must be between 1 and N")
        return cls(index, count)

    def picks(self, key: tuple) -> bool:
        return int(key_digest(key), 16) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class CellClaims:
    """The claims of one run in one results directory; a thread keeps them fresh until :meth:`close`."""

    def __init__(self, root: str | Path, run_id: str) -> None:
        self.folder = Path(root) / CLAIMS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host = socket.gethostname()
        self.owner = {"run_id": run_id, "host": self.host, "pid": os.getpid(),
                      "process_start": _process_start(os.getpid())}
        self.held: set[Path] = set()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._refresh, daemon=True)
        self._heartbeat.start()
        self._sweep()

    def _sweep(self) -> None:
        """Remove the stale claims (and half-made ones) that crashed runs left behind."""
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for path in self.folder.iterdir():
                if path.name.startswith(".") and path.name != ".lock":
                    try:
                        if time.time() - path.stat().st_mtime > LEASE_S:
                            path.unlink(missing_ok=True)
                    except FileNotFoundError:
                        pass
                elif path.suffix == ".claim":
                    holder = self.holder(path)
                    if holder is not None and self.is_stale(holder):
                        path.unlink(missing_ok=True)

    def holder(self, path: Path) -> dict[str, Any] | None:
        """The owner recorded in a claim file, with its age (s) as ``age_s``; None if there is no claim."""
        try:
            data = json.loads(path.read_bytes())
            data["age_s"] = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # unreadable: treat as an anonymous claim of another host
            return {"host": None, "age_s": time.time() - path.stat().st_mtime}
        return data

    def is_stale(self, holder: dict[str, Any]) -> bool:
        if holder.get("host") == self.host and isinstance(holder.get("pid"), int):
            return not _alive_here(holder["pid"], holder.get("process_start"))
        return holder["age_s"] > LEASE_S

    def acquire(self, key: tuple, cell: str = "") -> dict[str, Any] | None:
        """Claim a cell: None when this run now holds it, else the live holder's record."""
        path = self.folder / claim_name(key)
        staged = self.folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
        staged.write_text(json.dumps(dict(self.owner, cell=cell, claimed_at=time.time())))
        try:
            for _ in range(2):
                try:
                    os.link(staged, path)
                    self.held.add(path)
                    return None
                except FileExistsError:
                    pass
                with open(self.folder / ".lock", "a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    holder = self.holder(path)
                    if holder is not None and not self.is_stale(holder):
                        return holder
                    path.unlink(missing_ok=True)  # stale: taken over under the lock
            return self.holder(path) or {"host": None}
        finally:
            staged.unlink(missing_ok=True)

    def release(self, key: tuple) -> None:
        path = self.folder / claim_name(key)
        if path in self.held:
            self.held.discard(path)
            path.unlink(missing_ok=True)

    def _refresh(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            for path in list(self.held):
                try:
                    os.utime(path)
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        """Release every claim still held (cells not finished) and stop refreshing."""
        self._stop.set()
        for path in list(self.held):
            path.unlink(missing_ok=True)
        self.held.clear()


class ClaimedCells:
    """The cells of a run that it claims, lazily, as an executor asks for them; see the module docstring.

    ``stored_lines`` is the number of the store's lines the run planned from. Every finished cell must be
    reported (:meth:`finished`) once its row is stored, so that its claim is released.
    """

    def __init__(self, store: ResultsStore, claims: CellClaims, cells: Iterable, stored_lines: int) -> None:
        self.store = store
        self.claims = claims
        self.cells = list(cells)
        self.lines = stored_lines
        self.stored_meanwhile = 0  # cells found stored by another run after this one planned
        self.left_to_others: list[str] = []  # cells another live run was computing at the end
        self._new_keys: set[tuple] = set()

    def _stored_since_planning(self, key: tuple) -> bool:
        rows, self.lines = self.store.rows_after(self.lines)
        self._new_keys.update(cell_key(row) for row in rows)
        return key in self._new_keys

    def _take(self, cell) -> tuple[bool, dict[str, Any] | None]:
        """(whether to compute ``cell`` now, the live holder of its claim if another run has it)."""
        key = cell.key()
        holder = self.claims.acquire(key, cell.describe())
        if holder is not None:
            return False, holder
        if self._stored_since_planning(key):
            self.claims.release(key)
            self.stored_meanwhile += 1
            return False, None
        return True, None

    def __iter__(self) -> Iterator:
        busy = []
        for cell in self.cells:
            take, holder = self._take(cell)
            if take:
                yield cell
            elif holder is not None:
                busy.append(cell)
        for cell in busy:  # once more: the other run may have finished or died meanwhile
            take, holder = self._take(cell)
            if take:
                yield cell
            elif holder is not None:
                self.left_to_others.append(f"{cell.describe()} (run {holder.get('run_id')}, pid {holder.get('pid')} "
                                           f"on {holder.get('host')})")

    def finished(self, key: tuple) -> None:
        self.claims.release(key)

    def warnings(self) -> list[str]:
        out = []
        if self.stored_meanwhile:
            out.append(f"{self.stored_meanwhile} cell(s) were stored meanwhile by another run on this results "
                       "directory and not computed again")
        if self.left_to_others:
            out.append(f"{len(self.left_to_others)} cell(s) are being computed by another run and were left to it, "
                       f"e.g. {self.left_to_others[0]}; run again later to check they are stored")
        return out
