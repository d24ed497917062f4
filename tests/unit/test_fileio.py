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
