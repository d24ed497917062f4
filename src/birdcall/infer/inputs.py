"""The inputs of a run: audio files found under what the user names, their shards, and the checks on their names.

Inputs are discovered (:func:`discover_inputs`: absolute paths, sorted, duplicates removed) and shard ``I/N`` takes
every N-th of them starting at the I-th (:func:`select_shard`): deterministic, balanced in file count, and the same
on every machine given the same inputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS
from ..errors import ParameterError
from ..types import Pathlike

__all__ = ["check_names", "check_row_ids", "discover_inputs", "parse_shard", "select_shard"]


def discover_inputs(inputs: Iterable[Pathlike]) -> list[Path]:
    """The audio files named by ``inputs``: files as given, folders searched recursively by extension.

    Returns:
        Absolute, normalised paths (symlinks are not resolved, so names stay the user's), sorted, each file
        once (two names of the same file count once).

    Raises:
        ParameterError: a path that does not exist, or no file at all.
    """
    found: dict[str, Path] = {}
    inputs = [Path(p) for p in inputs]
    for item in inputs:
        if not item.exists():
            raise ParameterError(f"{item}: no such file or folder")
        if item.is_dir():
            candidates = (p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        else:
            candidates = iter([item])
        for path in candidates:
            absolute = Path(os.path.normpath(os.path.abspath(path)))
            found.setdefault(str(absolute), absolute)
    unique: dict[str, Path] = {}
    for key in sorted(found):
        unique.setdefault(os.path.realpath(key), found[key])
    if not unique:
        raise ParameterError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {', '.join(map(str, inputs)) or 'the inputs'}")
    return sorted(unique.values(), key=str)


def parse_shard(shard: tuple[int, int] | str | None) -> tuple[int, int]:
    """``(I, N)`` from ``(I, N)``, ``"I/N"`` or None (``(0, 1)``: everything).

    Raises:
        ParameterError: not ``0 <= I < N``.
    """
    if shard is None:
        return 0, 1
    if isinstance(shard, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not match:
            raise ParameterError(f"shard must look like I/N (e.g. 0/4), got {shard!r}")
        shard = (int(match.group(1)), int(match.group(2)))
    try:
        index, count = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise ParameterError(f"shard must be (I, N) or 'I/N', got {shard!r}") from None
    if not 0 <= index < count:
        raise ParameterError(f"shard I/N needs 0 <= I < N, got {index}/{count}")
    return index, count


def select_shard(paths: Sequence[Path], shard: tuple[int, int] | str | None) -> list[Path]:
    """Shard ``I/N`` of ``paths``: every N-th path of the sorted list starting at the I-th."""
    index, count = parse_shard(shard)
    return sorted(paths, key=str)[index::count]



def check_names(files: Sequence[Path]) -> None:
    """Refuse file names that are not valid UTF-8 (undecodable bytes): no manifest, Parquet or CSV can hold them."""
    for file in files:
        try:
            str(file).encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(file).decode("utf-8", "backslashreplace")
            raise ParameterError(f"{shown}: the file name is not valid UTF-8, so the output tables cannot name it; rename the file") from None


def check_row_ids(files: Sequence[Pathlike]) -> None:
    """Refuse inputs whose BirdCLEF row ids (``<stem>_<end second>``) would repeat: two files with one stem."""
    by_stem: dict[str, list[str]] = {}
    for file in files:
        by_stem.setdefault(Path(file).stem, []).append(str(file))
    clashes = sorted((stem, group) for stem, group in by_stem.items() if len(group) > 1)
    if clashes:
        stem, group = clashes[0]
        more = f" (and {len(clashes) - 1} more shared stem(s))" if len(clashes) > 1 else ""
        raise ParameterError(
            f"inputs share the file name {stem!r}: {', '.join(group)}{more}; their submission row_ids "
            "(<stem>_<end second>) would repeat: rename the files, or write them to separate submissions"
        )
