"""The training run folder's layout (:mod:`birdcall.layout`): names, the fold/seed parser, members and models."""

from __future__ import annotations

from pathlib import Path

from birdcall.layout import CV_FILES, RUN_FILES, FoldLayout, ModelLayout, RunLayout, fold_number, seed_number


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_paths_are_the_names_training_writes(tmp_path):
    run = RunLayout(tmp_path)
    assert [run.config.name, run.metrics.name, run.last.name, run.best.name, run.oof.name, run.state.name] == list(RUN_FILES)
    assert RUN_FILES == ("config.yaml", "metrics.csv", "last.safetensors", "best.safetensors", "oof.csv", "train_state.pt")
    assert CV_FILES == ("config.yaml", "folds.csv", "summary.csv", "oof.csv")
    assert (run.folds_csv, run.summary) == (tmp_path / "folds.csv", tmp_path / "summary.csv")
    assert run.fold(3) == FoldLayout(tmp_path / "fold3", 3)
    assert run.fold(3).seed(0) == ModelLayout(tmp_path / "fold3")  # model 0 lives in the fold folder
    assert run.fold(3).seed(2).best == tmp_path / "fold3" / "seed2" / "best.safetensors"
    assert RunLayout(str(tmp_path)).root == tmp_path


def test_folds_are_the_fold_folders_sorted_by_number(tmp_path):
    for name in ("fold10", "fold2", "fold0", "fold", "foldx", "fold-1", "fold1x", "Fold3", "fold²"):
        (tmp_path / name).mkdir()
    _touch(tmp_path / "fold1")  # a file, not a fold
    folds = RunLayout(tmp_path).folds()
    assert [(f.number, f.root.name) for f in folds] == [(0, "fold0"), (2, "fold2"), (10, "fold10")]
    assert [fold_number(tmp_path / n) for n in ("fold10", "fold", "foldx", "fold-1", "fold1")] == [10, None, None, None, None]
    assert RunLayout(tmp_path / "missing").folds() == []


def test_members_are_the_fold_folder_then_its_seed_folders_in_seed_order(tmp_path):
    run = RunLayout(tmp_path)
    for name in ("seed10", "seed2", "seed", "seedx"):
        (run.fold(0).root / name).mkdir(parents=True)
    _touch(run.fold(0).root / "seed3")  # a file
    assert [m.root.relative_to(tmp_path).as_posix() for m in run.members(0)] == ["fold0", "fold0/seed2", "fold0/seed10"]
    assert run.fold(0).members() == run.members(0)
    assert seed_number(run.fold(0).root / "seed10") == 10 and seed_number(run.fold(0).root / "seed3") is None
    assert run.members(5) == [ModelLayout(tmp_path / "fold5")]  # a fold not written yet: just its folder


def test_models_are_fold_models_in_fold_order_then_seeds_else_the_single_model(tmp_path):
    run = RunLayout(tmp_path)
    assert run.models() == []
    single = _touch(run.best)
    assert run.models() == [single]
    for path in (run.fold(10).best, run.fold(2).best, run.fold(2).seed(1).best, run.fold(2).seed(11).best, run.fold(2).seed(3).last):
        _touch(path)
    _touch(tmp_path / "foldx" / "best.safetensors")  # not a fold
    _touch(run.fold(4).last)  # a fold without a kept model
    names = [p.relative_to(tmp_path).as_posix() for p in run.models()]
    assert names == ["fold2/best.safetensors", "fold2/seed1/best.safetensors", "fold2/seed11/best.safetensors", "fold10/best.safetensors"]


def test_the_layout_module_sits_below_train_and_infer():
    import ast

    import birdcall.layout

    tree = ast.parse(Path(birdcall.layout.__file__).read_text(encoding="utf-8"))
    imported = {n.module if isinstance(n, ast.ImportFrom) and not n.level else f"birdcall.{n.module}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    birdcall_modules = {m for m in imported if m.split(".")[0] == "birdcall"}
    assert birdcall_modules <= {"birdcall.errors", "birdcall.types", "birdcall.fileio"}


def test_dataset_paths_are_the_birdclef_names(tmp_path):
    from birdcall.layout import DatasetLayout

    data = DatasetLayout(str(tmp_path))
    names = [data.train_audio, data.train_metadata, data.taxonomy, data.events, data.background, data.soundscapes, data.solution,
             data.soundscape_events]  # fmt: skip
    assert [p.relative_to(tmp_path).as_posix() for p in names] == [
        "train_audio", "train_metadata.csv", "taxonomy.csv", "events.csv", "background", "soundscapes", "solution.csv", "soundscape_events.csv",
    ]  # fmt: skip
    assert data.clip("amecro/amecro_0001.ogg") == tmp_path / "train_audio" / "amecro" / "amecro_0001.ogg"
