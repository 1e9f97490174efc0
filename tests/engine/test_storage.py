"""What the server keeps on disk, when the disk says no: full disks, read-only folders, damaged store rows,
lying npz headers, bad --json paths, private file modes, and what is cleaned up when.

Full disks are real where the tests run as root (a 256 KB tmpfs is mounted), else a patched writer raises
the same OSError; each case ends in a one-line message (no server path), never a traceback.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_store import BASE, fake_result

from benchmarks import hostile_files as hf
from tl_engine.cli import output
from tl_engine.data import uploads
from tl_engine.data.user import load_path
from tl_engine.errors import DataError, StorageError, StoreError, UserError
from tl_engine.jobs import model_folders
from tl_engine.store import check_writable
from tl_engine.store.results import ResultStore, _store_error, default_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real, nearly empty 256 KB disk (tmpfs); skipped where mounting is not allowed (not root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path) -> None:
    """Write until the disk is full (ENOSPC), keeping what fits."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


def zip_of_classes(names=("cats", "dogs"), n: int = 6, side: int = 40) -> bytes:
    """A zip of PNGs, one folder per class name, each class a different brightness plus noise."""
    from PIL import Image

    rng, buf = np.random.default_rng(0), io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c, name in enumerate(names):
            for i in range(n):
                px = (rng.integers(0, 60, (side, side)) + 90 * c).clip(0, 255).astype(np.uint8)
                out = io.BytesIO()
                Image.fromarray(px).save(out, "PNG")
                zf.writestr(f"{name}/{i}.png", out.getvalue())
    return buf.getvalue()


# ---- npz with negative dimensions ---------------------------------------------------------------------------

def negative_npz(path: Path) -> Path:
    y = np.arange(4) % 2
    return hf.write_npz(path, {"train_labels": y, "test_images": np.zeros((4, 8, 8), np.uint8), "test_labels": y},
                        big={"train_images": ((-3, 8, 8), "u1", 0)})


def test_npz_header_with_negative_dimensions_is_a_clear_data_error(tmp_path):
    with pytest.raises(DataError, match=r"train_images declares a negative size \(-3, 8, 8\)"):
        load_path(negative_npz(tmp_path / "neg.npz"))


@pytest.mark.slow
def test_npz_with_negative_dimensions_in_the_cli_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tl_engine", "race", "--dataset", str(negative_npz(tmp_path / "n.npz")),
                        "--epochs", "1"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "negative size" in r.stderr


# ---- uploads: full disk, read-only folder, modes, age, orphans ----------------------------------------------

def test_a_full_disk_while_keeping_an_upload_is_a_storage_error_and_leaves_nothing(monkeypatch, tmp_path):
    calls = []

    def full(path, write):
        calls.append(path.name)
        if path.suffix == ".json":  # the data was written, its name cannot be: nothing half-kept may stay
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, write)

    real = uploads._write_atomic
    monkeypatch.setattr(uploads, "_write_atomic", full)
    with pytest.raises(StorageError, match=r"could not be kept on this server \(the disk is full\).*free disk space"):
        uploads.save_upload("photos.zip", zip_of_classes())
    assert [c.rsplit(".", 1)[1] for c in calls] == ["npz", "json"]
    assert not any(uploads.uploads_dir().iterdir())  # no .npz without its .json, no temp file


def test_a_read_only_uploads_folder_is_a_storage_error_without_a_path(monkeypatch):
    folder = uploads.uploads_dir()
    os.chmod(folder, 0o755)  # as an older version left it: the next use makes it private again...

    def read_only(path, mode):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(uploads.os, "chmod", read_only)  # ...which a read-only disk refuses
    with pytest.raises(StorageError) as e:
        uploads.save_upload("photos.zip", zip_of_classes())
    assert "the disk is read-only" in str(e.value) and str(folder) not in str(e.value)


def test_a_really_full_disk_is_a_storage_error(tiny_disk, monkeypatch):
    monkeypatch.setenv("TL_RACE_DATA", str(tiny_disk / "data"))
    uploads.uploads_dir()
    fill(tiny_disk)
    with pytest.raises(StorageError, match="the disk is full"):
        uploads.save_upload("photos.zip", zip_of_classes())
    assert not [p for p in uploads.uploads_dir().iterdir()]


def test_uploads_are_private_and_racing_one_refreshes_its_age(tmp_path):
    up = uploads.save_upload("photos.zip", zip_of_classes())
    folder = uploads.uploads_dir()
    assert folder.stat().st_mode & 0o777 == 0o700
    files = sorted(folder.iterdir())
    assert [p.suffix for p in files] == [".json", ".npz"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    week_ago = time.time() - 8 * 86400
    for p in files:
        os.utime(p, (week_ago, week_ago))
    uploads.load(up.name)  # what a race does: refreshes the age
    assert uploads.cleanup(folder) == 0 and all(p.exists() for p in files)
    for p in files:
        os.utime(p, (week_ago, week_ago))
    assert uploads.cleanup(folder) == 1 and not any(p.exists() for p in files)  # unused for 8 days: deleted


def test_orphan_halves_of_uploads_are_deleted_after_an_hour():
    folder = uploads.uploads_dir()
    old, new = folder / "0123456789abcdef.json", folder / "fedcba9876543210.json"
    lone_npz = folder / "00000000000000aa.npz"
    for p in (old, new, lone_npz):
        p.write_text("{}")
    two_hours = time.time() - 7200
    os.utime(old, (two_hours, two_hours))
    os.utime(lone_npz, (two_hours, two_hours))
    uploads.cleanup(folder)
    assert not old.exists() and not lone_npz.exists() and new.exists()  # new: maybe being written right now


# ---- the results store: unreadable rows, disk full vs damage, modes -------------------------------------------

def test_unreadable_rows_are_skipped_and_counted(tmp_path):
    store = ResultStore(tmp_path / "data" / "results.sqlite")
    store.put(fake_result(BASE))
    with sqlite3.connect(store.path) as con:
        con.execute("INSERT INTO races VALUES ('bad-json', 'race', '{not json', '2026-01-01T00:00:00+00:00')")
        con.execute("INSERT INTO races VALUES ('empty', 'race', '{}', '2026-01-02T00:00:00+00:00')")
        con.execute("UPDATE races SET result = '[]' WHERE id = ?", (store.all()[0].extras["id"],))
    races, bad = store.all_counted()
    assert (len(races), bad) == (0, 3)
    assert store.get(BASE) is None  # the exact row is unreadable: not a crash, simply not reused
    store.put(fake_result(BASE))
    races, bad = store.all_counted()
    assert (len(races), bad) == (1, 2) and store.get(BASE) is not None


def test_store_file_is_private_and_an_old_world_readable_one_is_tightened(tmp_path):
    store = ResultStore(tmp_path / "new" / "results.sqlite")
    store.put(fake_result(BASE))
    assert store.path.stat().st_mode & 0o777 == 0o600 and store.path.parent.stat().st_mode & 0o777 == 0o700
    assert all(Path(f"{store.path}{s}").stat().st_mode & 0o777 == 0o600 for s in ("-wal", "-shm")
               if Path(f"{store.path}{s}").exists())
    os.chmod(store.path, 0o644)
    assert store.get(BASE) is not None and store.path.stat().st_mode & 0o777 == 0o600


def test_store_errors_tell_a_full_disk_from_damage_and_name_no_path(tmp_path):
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"
    damaged = sqlite3.DatabaseError("file is not a database")
    damaged.sqlite_errorname = "SQLITE_NOTADB"
    messages = {k: str(_store_error(e)) for k, e in {
        "full": full, "enospc": OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x")),
        "erofs": OSError(errno.EROFS, "Read-only file system", str(tmp_path)), "damaged": damaged}.items()}
    for k in ("full", "enospc"):
        assert "disk is full" in messages[k] and "Delete" not in messages[k] and "fine" in messages[k]
    assert "read-only" in messages["erofs"] and "Delete" not in messages["erofs"]
    assert "damaged" in messages["damaged"] and "Delete the file" in messages["damaged"]
    assert not any(str(tmp_path) in m for m in messages.values())


def test_a_really_full_disk_is_not_called_damage(tiny_disk):
    store = ResultStore(tiny_disk / "results.sqlite")
    store.put(fake_result(BASE))
    fill(tiny_disk)
    with pytest.raises(StoreError) as e:
        for seed in range(1, 200):  # until the WAL needs a page the disk does not have
            store.put(fake_result(BASE.__class__(**{**BASE.to_dict(), "seed": seed})))
    assert "disk is full" in str(e.value) and "Delete" not in str(e.value) and str(tiny_disk) not in str(e.value)
    (tiny_disk / "filler").unlink()
    assert store.get(BASE) is not None  # the stored races are fine, as the message said


# ---- --json: checked before the work, kept after a late failure ----------------------------------------------

def test_json_path_checks_before_any_work(tmp_path):
    with pytest.raises(UserError, match="is a folder"):
        check_writable(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        check_writable(tmp_path / "missing" / "out.json")
    unwritable = Path("/proc") if os.geteuid() == 0 else tmp_path / "ro"  # root writes anywhere but /proc
    if unwritable != Path("/proc"):
        unwritable.mkdir()
        os.chmod(unwritable, 0o500)
    with pytest.raises(UserError, match="cannot be written|not writable"):
        check_writable(unwritable / "out.json")
    check_writable(tmp_path / "out.json")
    assert not list(tmp_path.glob(".out.json*"))  # the probe left nothing


def test_a_late_write_failure_keeps_the_result_next_to_the_store(monkeypatch, tmp_path, capsys):
    real = output.write_json_atomic

    def fails_for(target: Path):
        def write(path, obj):
            if Path(path) == target:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real(path, obj)
        return write

    target = tmp_path / "out.json"
    monkeypatch.setattr(output, "write_json_atomic", fails_for(target))
    assert output.write_result(str(target), {"a": 1}, 0) == 1
    err = capsys.readouterr().err
    kept = list(default_path().parent.glob("out-*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == {"a": 1}
    assert "the disk is full" in err and str(kept[0]) in err

    monkeypatch.setattr(output, "write_json_atomic", lambda path, obj: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    assert output.write_result(str(target), {"b": 2}, 0) == 1
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1]) == {"b": 2} and "standard output" in out.err


@pytest.mark.slow
def test_a_race_whose_json_lands_on_a_full_disk_is_kept(tiny_disk, tmp_path):
    fill(tiny_disk)
    env = {**os.environ, "TL_RACE_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "tl_engine", "race", "--train-size", "20", "--val-size", "20",
                        "--test-size", "20", "--epochs", "1", "--resolution", "32", "--json",
                        str(tiny_disk / "race.json")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "the disk is full" in r.stderr
    kept = list((tmp_path / "data").glob("race-*.json"))
    assert len(kept) == 1 and str(kept[0]) in r.stderr
    assert len(json.loads(kept[0].read_text())["epochs"]) == 3


# ---- kept networks of a server that is gone ------------------------------------------------------------------

def test_model_folders_of_dead_servers_are_removed_and_our_own_at_exit(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    gone, live = tmp_path / f"tl-race-models-{dead}-abc", tmp_path / f"tl-race-models-{os.getpid()}-def"
    unnamed_old, unnamed_new = tmp_path / "tl-race-models-xyz", tmp_path / "tl-race-models-uvw"
    for d in (gone, live, unnamed_old, unnamed_new):
        (d / "job").mkdir(parents=True)
    two_days = time.time() - 2 * 86400
    os.utime(unnamed_old, (two_days, two_days))
    assert model_folders.remove_stale(tmp_path) == 2
    assert not gone.exists() and not unnamed_old.exists() and live.exists() and unnamed_new.exists()

    code = ("import os, tempfile; from tl_engine.jobs.model_folders import ModelFolders; m = ModelFolders(); "
            "p = m.target('job1'); os.makedirs(p); print(p)")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    made = Path(r.stdout.strip())
    assert r.returncode == 0 and made.parent.parent == tmp_path and not made.parent.exists()  # gone at exit


# ---- names printed by the CLI ----------------------------------------------------------------------------------

def test_the_cli_prints_hostile_names_without_their_control_characters(tmp_path, capsys):
    from tl_engine.cli.main import main
    from tl_engine.cli.output import terminal

    assert terminal("cat\x1b[31mred\nnext\u202eevil ünï") == "cat\\x1b[31mred\\nnext\\u202eevil ünï"
    folder = tmp_path / "data\x1b]0;owned\x07"
    (folder / "only\x1b[2Jone").mkdir(parents=True)
    assert main(["race", "--dataset", str(folder), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "\x1b" not in err and "\x07" not in err and "\\x1b]0;owned\\x07" in err
