"""The training run folder: which files are birdcall's, when a new run may write there, and the fingerprint that
ties a ``train_state.pt`` to its config and data.

The names are :mod:`birdcall.layout`'s: a run folder (``fit``) holds :data:`~birdcall.layout.RUN_FILES`, a K-fold
folder (``fit_folds``) :data:`~birdcall.layout.CV_FILES` and one run folder per model: ``fold<i>/`` and
``fold<i>/seed<j>/``.

A new run never writes into a folder that holds another run unless asked to (``overwrite``); then only the files
above are removed (and folders they leave empty), never anything else in the folder. A resumed run must match the
state it continues: :func:`run_fingerprint` (the config, and digests of the clip table's files, labels and split)
is saved in ``train_state.pt`` and compared by :func:`check_resume`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..config import to_dict
from ..errors import ParameterError
from ..layout import CV_FILES, RUN_FILES, DatasetLayout, FoldLayout, RunLayout, fold_number, seed_number

__all__ = ["CV_FILES", "RUN_FILES", "check_resume", "clear_run", "cv_run_files", "refuse_existing_run", "run_files", "run_fingerprint"]

def _own_files(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """``names`` present in ``folder``, and the temporary files an interrupted atomic write of them left."""
    if not folder.is_dir():
        return []
    found = [folder / n for n in names if (folder / n).is_file()]
    found += sorted(p for n in names for p in folder.glob(f".{n}.*.tmp") if p.is_file())
    return found


def run_files(run_dir: Path, *, members: bool = False) -> list[Path]:
    """Birdcall's files in a ``fit`` run folder (with ``members``: also in its ``seed<j>/`` folders)."""
    found = _own_files(run_dir, RUN_FILES)
    if members:
        for seed in FoldLayout(run_dir).seeds():
            found += _own_files(seed.root, RUN_FILES)
    return found


def cv_run_files(run_dir: Path) -> list[Path]:
    """Birdcall's files of any run in ``run_dir``: a single run's, a K-fold run's and every fold's."""
    found = _own_files(run_dir, tuple(dict.fromkeys(RUN_FILES + CV_FILES)))
    for fold in RunLayout(run_dir).folds():
        found += run_files(fold.root, members=True)
    return found


def refuse_existing_run(run_dir: Path, files: list[Path], *, what: str = "a training run") -> None:
    """One-line ParameterError naming the folder and some of the files a new run would mix with."""
    if not files:
        return
    names = sorted({p.relative_to(run_dir).as_posix() for p in files})
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    raise ParameterError(
        f"{run_dir}: already holds {what} ({shown}); resume it (--resume / resume=True), choose another folder, "
        "or replace it (--overwrite / overwrite=True)"
    )


def clear_run(files: list[Path]) -> None:
    """Delete ``files`` (from :func:`run_files` / :func:`cv_run_files`) and then the fold/seed folders they leave empty."""
    parents = set()
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        parents.add(path.parent)
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):  # seed<j>/ before fold<i>/
        if seed_number(folder) is not None or fold_number(folder) is not None:
            with contextlib.suppress(OSError):  # not empty: unrelated files stay, and so does their folder
                folder.rmdir()
            if fold_number(folder.parent) is not None:
                with contextlib.suppress(OSError):
                    folder.parent.rmdir()


# ------------------------------------------------------------------------------------------------ fingerprint


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def run_fingerprint(config, table, train_idx: np.ndarray, val_idx: np.ndarray) -> dict:
    """What a resumed run must share with the state it continues: the whole config, and digests of the clip
    table's files (clips in order, background clips), labels (species order, each clip's labels) and split."""
    frame = table.frame
    background = []
    for path in table.background_files:
        try:
            background.append(Path(path).relative_to(DatasetLayout(table.root).background).as_posix())
        except ValueError:
            background.append(Path(path).name)
    return {
        "config": to_dict(config),
        "data": {
            "files": _digest([list(map(str, frame["filename"])), background]),
            "labels": _digest([list(table.labels.codes), [list(v) for v in frame["labels"]], [list(v) for v in frame["secondary"]]]),
            "split": _digest([np.asarray(train_idx, dtype=np.int64).tolist(), np.asarray(val_idx, dtype=np.int64).tolist()]),
        },
    }


def _flatten(data: dict, prefix: str = "") -> dict:
    """Dotted keys of a nested config; a list of named entries (``augment.waveform``) is its list of names and each
    entry's parameters under ``<list>.<name>.``, as ``key=value`` overrides spell them."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif _named_entries(value):
            flat[f"{prefix}{key}"] = [entry["name"] for entry in value]
            for entry in value:
                flat.update(_flatten({k: v for k, v in entry.items() if k != "name"}, f"{prefix}{key}.{entry['name']}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _named_entries(value: Any) -> bool:
    names = [entry.get("name") for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []
    return bool(names) and len(names) == len(value) and len(set(names)) == len(names) and all(isinstance(n, str) for n in names)


def config_differences(saved: dict, current: dict) -> str:
    """``"lr (0.001 -> 0.002), epochs (1 -> 3)"``: the keys whose values differ (dotted for nested configs)."""
    old, new = _flatten(saved), _flatten(current)
    keys = [k for k in dict.fromkeys(list(new) + list(old)) if old.get(k, "<unset>") != new.get(k, "<unset>")]
    shown = ", ".join(f"{k} ({old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r})" for k in keys[:4])
    return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


def _with_defaults(config: dict) -> dict:
    """A saved config with the TrainConfig keys it lacks (added by a later birdcall) at their defaults: a run started
    before an upgrade resumes after it. A saved config that no longer parses is returned as it is (and then differs)."""
    from ..config import from_dict
    from .config import TrainConfig

    try:
        return to_dict(from_dict(TrainConfig, config))
    except Exception:  # noqa: BLE001 - an unknown key or a bad value: the comparison below reports the difference
        return config


def check_resume(state_path: Path, state: dict, fingerprint: dict) -> None:
    """Refuse to resume ``state`` with another config or clip table (one line saying what differs).

    Raises:
        ParameterError: ``RUN/train_state.pt: resume refused: config differs in lr (0.001 -> 0.002)``.
    """
    saved = state.get("fingerprint")
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict) or not isinstance(saved.get("data"), dict):
        raise ParameterError(
            f"{state_path}: resume refused: the state records no config/data fingerprint (written by an older birdcall), "
            "so it cannot be matched to this run; start again with overwrite"
        )
    saved_config = _with_defaults(saved["config"])  # keys added to TrainConfig since that run read as their defaults
    if saved_config != fingerprint["config"]:
        raise ParameterError(f"{state_path}: resume refused: config differs in {config_differences(saved_config, fingerprint['config'])}")
    changed = [part for part in ("files", "labels", "split") if saved["data"].get(part) != fingerprint["data"][part]]
    if changed:
        raise ParameterError(f"{state_path}: resume refused: the clip table differs ({', '.join(changed)}) from the interrupted run's")
    if saved["data"].get("pseudo_labels") != fingerprint["data"].get("pseudo_labels"):
        raise ParameterError(f"{state_path}: resume refused: the pseudo_labels file differs from the interrupted run's (its bytes changed)")
