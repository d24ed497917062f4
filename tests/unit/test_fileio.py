import pandas as pd
import pytest

from birdcall.fileio import atomic_path, atomic_to_csv, atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_old_content(tmp_path):
    target = tmp_path / "a.csv"
    atomic_to_csv(pd.DataFrame({"x": [1]}), target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert pd.read_csv(target)["x"].tolist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_outputs_get_the_mode_a_plain_open_gives(tmp_path):
    import os
    import stat

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = atomic_write_text(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE(os.stat(target).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)  # not mkstemp's 0600


def test_temporaries_are_named_recognisably(tmp_path):
    from birdcall.fileio import TEMP_SUFFIX

    with atomic_path(tmp_path / "table.csv") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".table.csv.") and tmp.name.endswith(TEMP_SUFFIX)
        assert TEMP_SUFFIX == ".birdcall.tmp"
        tmp.write_text("x")


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    import os
    import stat

    target = tmp_path / "new" / "a.txt"
    real = os.fsync
    calls = []

    def fsync(fd):
        st = os.fstat(fd)
        calls.append((stat.S_ISDIR(st.st_mode), st.st_ino, target.exists()))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic_write_text(target, "one")
    folder, parent = (target.parent.stat().st_ino, tmp_path.stat().st_ino)
    assert calls[-1] == (True, folder, True)  # the folder holding the file, after the rename
    assert (True, parent, False) in calls  # the new folder's own entry, in its parent
    assert sum(not is_dir for is_dir, _, _ in calls) == 1  # and the data, once
    calls.clear()
    atomic_write_text(target, "two")  # the folder exists now: the file and its folder
    assert [(is_dir, ino) for is_dir, ino, _ in calls] == [(False, target.stat().st_ino), (True, folder)]


def test_remove_stale_temporaries_removes_only_the_temporaries_of_atomic_writes(tmp_path):
    from birdcall.fileio import remove_stale_temporaries

    with atomic_path(tmp_path / "a.csv") as tmp:
        left = tmp  # the name of a real temporary: re-created below, as a kill would have left it
    ours = [left, tmp_path / ".b.parquet.0123456789ab.birdcall.tmp"]
    theirs = [tmp_path / ".a.csv.0123456789ab.tmp", tmp_path / "a.birdcall.tmp", tmp_path / "x.csv", tmp_path / ".a.csv.birdcall.tmp",
              tmp_path / ".a.csv.0123456789AB.birdcall.tmp", tmp_path / ".a.csv.k2j4h5g6.birdcall.tmp"]
    for path in ours + theirs:
        path.write_text("x")
    folder = tmp_path / ".d.0123456789ab.birdcall.tmp"
    folder.mkdir()  # a folder is never removed
    assert remove_stale_temporaries(tmp_path, name="b.parquet") == [ours[1]]
    assert remove_stale_temporaries(tmp_path) == [ours[0]]
    assert all(p.exists() for p in theirs) and folder.is_dir()
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_hash_files_is_the_sha256_of_the_files_in_order_then_extra(tmp_path):
    import hashlib

    from birdcall.fileio import hash_files

    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(bytes(range(256)) * 8193)  # over two 1 MiB blocks
    b.write_bytes(b"tail")
    assert hash_files([a, b], extra=b"|x") == hashlib.sha256(a.read_bytes() + b.read_bytes() + b"|x").hexdigest()
    assert hash_files([b, a]) != hash_files([a, b])
