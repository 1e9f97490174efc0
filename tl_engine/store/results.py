"""The results store: every finished race, keyed by its full RunConfig, in one SQLite file.

Why SQLite: several processes (the app, a CLI sweep, a second browser tab) may write at once, and a
process may be killed at any moment. WAL mode plus one transaction per finished run means a reader
sees either the whole run or nothing, and two writers wait for each other (busy timeout) instead of
corrupting the file. A run that was stopped or killed is never written, so everything in the store
is a finished run. Deleting the file is safe: it is recreated, empty, on the next use.

Reuse across strategies: a strategy's random streams depend on the seed alone (not on who races beside it)
and the data split depends only on (dataset, sizes, seed), so a strategy's epochs depend only on the config
fields it uses. Every stored run is therefore also indexed per strategy (:func:`strategy_key`), and
:meth:`ResultStore.get` can answer a scratch-only config from any stored race that ran scratch with the same
settings.

A damaged file, a full disk or a read-only folder is a :class:`~tl_engine.errors.StoreError` (a message that
names no server path and tells the three apart: deleting the file is advice for damage only), and callers run
without reuse. One unreadable row (written by something else, or cut short) is skipped and counted, never the
end of the page: :meth:`ResultStore.all_counted`. The file is private to the server's user (0600, in a folder
made 0700): upload ids in it open other people's uploads.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path

from ..config import NUM_STAGES, RACER_KNOBS, RaceResult, RunConfig
from ..errors import StoreError
from ..models import STRATEGIES
from .files import file_stamp, is_disk_full, os_reason

REPO = Path(__file__).resolve().parents[2]
DATA_ENV = "TL_RACE_DATA"  # folder that holds results.sqlite (default: data/ in the repo, git-ignored)
FILE_NAME = "results.sqlite"
BUSY_SECONDS = 30.0  # a writer waits this long for another writer's transaction before giving up
FULL_BYTES = 2**20  # an I/O error with less than this free on the store's disk is a full disk
KEY_VERSION = 3  # bump if what a config means changes, so old results stop matching (3: paired streams)

SCHEMA = """
CREATE TABLE IF NOT EXISTS races (
    id TEXT PRIMARY KEY,        -- sha256 of the canonical config JSON
    kind TEXT NOT NULL,         -- who ran it: race | freeze | size | domain
    result TEXT NOT NULL,       -- the RaceResult JSON
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_races (
    key TEXT NOT NULL,          -- strategy_key(config, strategy)
    strategy TEXT NOT NULL,
    race_id TEXT NOT NULL REFERENCES races(id) ON DELETE CASCADE,
    PRIMARY KEY (key, race_id)
);
"""


def default_path() -> Path:
    """``$TL_RACE_DATA/results.sqlite``, else ``data/results.sqlite`` in the repository."""
    return Path(os.environ.get(DATA_ENV) or REPO / "data") / FILE_NAME


def canonical_dict(cfg: RunConfig) -> dict:
    """The config as plain JSON types, numbers normalised by field type (1 and 1.0 are the same lr)."""
    casts = {"float": float, "int": int, "bool": bool, "str": str}
    d = cfg.to_dict()
    for f in fields(RunConfig):
        cast = casts.get(str(f.type))
        if cast is not None:
            d[f.name] = cast(d[f.name])
    d["strategies"] = [str(s) for s in d["strategies"]]
    return d


def _digest(d: dict) -> str:
    text = json.dumps({"v": KEY_VERSION, **d}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def config_id(cfg: RunConfig) -> str:
    """The store key of a race: sha256 of the config as canonical JSON (sorted keys), less the racers' knobs
    that none of its racers reads (so a race of the first three racers keeps the id it had before they existed)."""
    unread = set(RACER_KNOBS).intersection(*(ignored_fields(s) for s in cfg.strategies))
    return _digest({k: v for k, v in canonical_dict(cfg).items() if k not in unread})


def ignored_fields(strategy: str) -> set[str]:
    """Config fields that cannot change ``strategy``'s epochs (read off the strategy table)."""
    spec = STRATEGIES[strategy]
    frozen = {spec.frozen_stages(k) for k in range(NUM_STAGES + 1)}
    out = {"strategies"}  # a strategy's random streams depend on the seed alone: its neighbours don't matter
    if len(frozen) == 1 and not spec.adapters:
        out.add("frozen_stages")  # the slider k does not move this strategy (LoRA's adapters sit on k..6)
    if spec.pretrained or spec.body == "none":
        out.add("lr_scratch")
        if frozen == {NUM_STAGES} and not spec.adapters:
            out.add("lr_body")  # the whole body is frozen: only the head's learning rate is used
    else:
        out |= {"lr_head", "lr_body"}  # from scratch, every layer uses lr_scratch
    knobs = {"head_epochs": spec.head_first, "gradual_ratio": spec.head_first, "lora_rank": spec.adapters,
             "early_stage": spec.body == "cut"}
    return out | {k for k, used in knobs.items() if not used}


def strategy_key(cfg: RunConfig, strategy: str) -> str:
    """Key of one strategy's result: the config without the fields that strategy ignores."""
    d = canonical_dict(cfg)
    return _digest({"strategy": strategy, **{k: v for k, v in d.items() if k not in ignored_fields(strategy)}})


class ResultStore:
    """Finished races on disk. Cheap to create: it opens a connection per call (thread- and fork-safe)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self._create()
            con = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)  # we BEGIN explicitly
        except (OSError, sqlite3.Error) as e:
            raise _store_error(e, self.path.parent) from e
        try:
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
            _wal(con)
            con.execute("PRAGMA foreign_keys = ON")
            con.executescript(SCHEMA)
            yield con
        except (OSError, sqlite3.DatabaseError) as e:
            raise _store_error(e, self.path.parent) from e
        finally:
            con.close()

    def _create(self) -> None:
        """The folder (0700 when made here) and an empty file (0600), before SQLite makes it world-readable."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            # The database was deleted: its leftover WAL must not be replayed into the new, empty file.
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # SQLite copies its mode to -wal/-shm
        elif self.path.stat().st_mode & 0o077 and os.access(self.path, os.W_OK):
            os.chmod(self.path, 0o600)  # made by an older version: upload ids inside are nobody else's

    def put(self, result: RaceResult, kind: str = "race") -> str:
        """Store a finished race in one transaction; returns its id.

        Raises:
            ValueError: the race did not finish (stopped or partial results are never stored).
        """
        cfg = result.config
        if not result.completed or len(result.epochs) != cfg.total_epochs:
            raise ValueError(f"only finished races are stored: got {len(result.epochs)} of {cfg.total_epochs} epochs")
        run_id = config_id(cfg)
        row = (run_id, kind, json.dumps(result.to_dict()), datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock upgrading a read later
            try:
                con.execute("DELETE FROM races WHERE id = ?", (run_id,))  # cascades to strategy_races
                con.execute("INSERT INTO races VALUES (?, ?, ?, ?)", row)
                con.executemany("INSERT INTO strategy_races VALUES (?, ?, ?)",
                                [(strategy_key(cfg, s), s, run_id) for s in cfg.strategies])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return run_id

    def get(self, cfg: RunConfig) -> RaceResult | None:
        """The stored race for ``cfg``, or one assembled from stored strategies, or None.

        The result's ``extras`` say where it came from: ``id``, ``kind``, ``created_at``; an assembled one
        has ``kind == "assembled"`` and ``from_ids`` (the races it was taken from).
        """
        with self._db() as con:
            row = con.execute("SELECT * FROM races WHERE id = ?", (config_id(cfg),)).fetchone()
            if row is not None and (exact := _record(row)) is not None:
                return exact
            sources = {}
            for s in cfg.strategies:
                hits = con.execute("SELECT r.* FROM strategy_races k JOIN races r ON r.id = k.race_id "
                                   "WHERE k.key = ? ORDER BY r.created_at DESC", (strategy_key(cfg, s),))
                hit = next((rec for rec in map(_record, hits) if rec is not None), None)  # newest readable
                if hit is None:
                    return None
                sources[s] = hit
        return _assemble(cfg, sources)

    def all(self, kind: str | None = None) -> list[RaceResult]:
        """Every readable stored race (optionally only those a given sweep kind or "race" produced), oldest first."""
        return self.all_counted(kind)[0]

    def all_counted(self, kind: str | None = None) -> tuple[list[RaceResult], int]:
        """:meth:`all`, and how many stored rows could not be read (skipped)."""
        with self._db() as con:
            if kind is None:
                rows = con.execute("SELECT * FROM races ORDER BY created_at, id").fetchall()
            else:
                rows = con.execute("SELECT * FROM races WHERE kind = ? ORDER BY created_at, id", (kind,)).fetchall()
        records = [_record(r) for r in rows]
        good = [r for r in records if r is not None]
        return good, len(records) - len(good)

    def stamp(self) -> tuple:
        """Changes whenever a race is written (the database and its WAL file), so a page can keep :meth:`all`
        in a cache instead of parsing every stored race on every run."""
        return file_stamp(self.path, Path(f"{self.path}-wal"))

    def integrity_ok(self) -> bool:
        """SQLite's own consistency check of the file."""
        with self._db() as con:
            return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _wal(con: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes creating the store at once may both ask; SQLite then answers "locked" at
    once instead of waiting (its busy handler is not used for this), so wait here (seen once in CI)."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            con.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _record(row: tuple) -> RaceResult | None:
    """The race of one row, or None when the row cannot be read (bad JSON, ``{}``, fields of another version)."""
    run_id, kind, result, created = row
    try:
        return RaceResult.from_dict(json.loads(result), id=run_id, kind=kind, created_at=created)
    except Exception:  # noqa: BLE001 (a row written by something else: skipped and counted, never a crash)
        return None


def _free_bytes(folder: Path | None) -> int | None:
    try:
        st = os.statvfs(folder) if folder is not None else None
    except OSError:
        return None
    return None if st is None else st.f_bavail * st.f_frsize


def _store_error(e: Exception, folder: Path | None = None) -> StoreError:
    """Why the store failed, told apart (full disk, read-only or locked, damaged), with no server path.

    SQLite often reports a full disk as a plain I/O error (SQLITE_IOERR_WRITE on a full tmpfs, seen here), so an
    I/O error on a disk with less than :data:`FULL_BYTES` free counts as a full disk.
    """
    name = getattr(e, "sqlite_errorname", "")
    what = "The results store (results.sqlite in $TL_RACE_DATA)"
    free = _free_bytes(folder) if name.startswith("SQLITE_IOERR") else None
    if is_disk_full(e) or name == "SQLITE_FULL" or (free is not None and free < FULL_BYTES):
        return StoreError(f"{what} cannot be written: the disk is full. The stored races are fine; new ones are "
                          "not kept until space is freed on the server.")
    if isinstance(e, OSError) or name in ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"):
        why = os_reason(e) if isinstance(e, OSError) else "it or its folder is read-only or not writable"
        return StoreError(f"{what} cannot be opened or written ({why}); results are not reused or kept this time.")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(e):
        return StoreError(f"{what} stayed locked by another process for {BUSY_SECONDS:.0f} s; results are not "
                          "reused this time.")
    if name.startswith("SQLITE_IOERR"):
        return StoreError(f"{what} could not be read or written (a disk error: {e}); results are not reused this "
                          "time.")
    return StoreError(f"{what} is damaged ({e}); results are not reused. Delete the file to start a new, empty "
                      "store.")


def _assemble(cfg: RunConfig, sources: dict[str, RaceResult]) -> RaceResult:
    """One race's result made of each strategy's epochs from other stored races, in race order."""
    order = {s: i for i, s in enumerate(cfg.strategies)}
    epochs = [e for s, rec in sources.items() for e in rec.epochs if e.strategy == s]
    epochs.sort(key=lambda e: (e.epoch, order[e.strategy]))  # round-robin, as the race yields them
    details = {s: {k: v for k, v in rec.summary[s].to_dict().items()
                   if k in ("confusion_matrix", "per_class_acc", "delta_theta", "test_pred", "test_conf",
                           "imagenet_agreement", "imagenet_agreement_noise", "imagenet_agreement_own_stats")}
               for s, rec in sources.items()}
    first = next(iter(sources.values()))
    devices = sorted({rec.device for rec in sources.values()})
    out = RaceResult.build(cfg, "+".join(devices), None, epochs, first.skipped_images, first.classes, details)
    return replace(out, extras={"id": config_id(cfg), "kind": "assembled",
                                "created_at": max(rec.extras["created_at"] for rec in sources.values()),
                                "from_ids": sorted({rec.extras["id"] for rec in sources.values()})})
