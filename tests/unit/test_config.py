from dataclasses import dataclass, field

import pytest

from birdcall.config import (
    apply_overrides,
    from_dict,
    from_yaml,
    parse_override,
    to_dict,
    to_yaml,
)
from birdcall.errors import ParameterError


@dataclass(frozen=True)
class Inner:
    n_mels: int = 128
    channels: tuple[str, ...] = ("logmel",)


@dataclass(frozen=True)
class Outer:
    lr: float = 1e-3
    name: str = "x"
    inner: Inner = field(default_factory=Inner)


def test_yaml_round_trip_restores_nested_dataclass_and_tuples(tmp_path):
    config = Outer(lr=0.5, inner=Inner(n_mels=64, channels=("logmel", "mfcc")))
    to_yaml(config, tmp_path / "c.yaml")
    back = from_yaml(Outer, tmp_path / "c.yaml")
    assert back == config
    assert isinstance(back.inner, Inner) and back.inner.channels == ("logmel", "mfcc")


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ParameterError, match="unknown key.*bogus"):
        from_dict(Outer, {"bogus": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("epochs=5", ("epochs", 5)), ("lr=0.01", ("lr", 0.01)), ("flag=true", ("flag", True)), ("name=abc", ("name", "abc")), ("l=[a, b]", ("l", ["a", "b"]))],
)
def test_parse_override_reads_yaml_values(text, expected):
    assert parse_override(text) == expected


def test_apply_overrides_reaches_nested_and_rejects_unknown():
    config = apply_overrides(Outer(), ["inner.n_mels=32", "lr=0.1"])
    assert config.inner.n_mels == 32 and config.lr == 0.1 and to_dict(config)["name"] == "x"
    with pytest.raises(ParameterError, match="unknown key"):
        apply_overrides(Outer(), ["inner.nope=1"])
    with pytest.raises(ParameterError, match="not of the form"):
        apply_overrides(Outer(), ["lr"])


@dataclass(frozen=True)
class Typed:
    lr: float = 1e-3
    epochs: int = 1
    threads: int | None = None
    name: str = "a"


def test_values_are_coerced_to_field_types_or_rejected():
    config = apply_overrides(Typed(), ["lr=2e-3", "epochs=3", "threads=null"])
    assert config.lr == 0.002 and isinstance(config.lr, float) and config.epochs == 3 and config.threads is None
    assert isinstance(from_dict(Typed, {"lr": 1}).lr, float)
    with pytest.raises(ParameterError, match="Typed.epochs"):
        from_dict(Typed, {"epochs": "many"})
    with pytest.raises(ParameterError, match="Typed.epochs"):
        from_dict(Typed, {"epochs": 2.5})


def test_from_dict_checks_value_types_against_the_annotations():
    # a list only for tuple fields, a mapping only for nested configs, scalars for scalars, finite floats
    with pytest.raises(ParameterError, match=r"Outer\.lr: expected a finite number, got \[1, 2\]"):
        from_dict(Outer, {"lr": [1, 2]})
    with pytest.raises(ParameterError, match=r"Outer\.name: expected a string, got \{'a': 1\}"):
        from_dict(Outer, {"name": {"a": 1}})
    with pytest.raises(ParameterError, match=r"Outer\.inner: expected Inner \(a mapping\), got 5"):
        from_dict(Outer, {"inner": 5})
    with pytest.raises(ParameterError, match=r"Outer\.inner\.n_mels: expected an integer, got \[1\]"):
        from_dict(Outer, {"inner": {"n_mels": [1]}})
    with pytest.raises(ParameterError, match=r"Outer\.lr: must be a finite number, got nan"):
        from_dict(Outer, {"lr": float("nan")})
    with pytest.raises(ParameterError, match=r"Outer\.lr: must be a finite number, got '-inf'"):
        from_dict(Outer, {"lr": "-inf"})
    with pytest.raises(ParameterError, match=r"Outer\.inner\.channels: expected a list of strings, got \[1, 2\]"):
        from_dict(Outer, {"inner": {"channels": [1, 2]}})
    with pytest.raises(ParameterError, match=r"Typed\.epochs: expected an integer, got True"):
        from_dict(Typed, {"epochs": True})
    assert from_dict(Outer, {"inner": {"channels": "mfcc"}}).inner.channels == ("mfcc",)  # one name for a list of names
    assert from_dict(Typed, {"epochs": 3.0}).epochs == 3


def test_check_fields_normalises_direct_construction():
    from birdcall.config import check_fields

    @dataclass(frozen=True)
    class Checked:
        lr: float = 1e-3
        pair: tuple[float, float] = (0.0, 1.0)
        inner: Inner = field(default_factory=Inner)

        def __post_init__(self):
            check_fields(self)

    config = Checked(lr=1, pair=[0, 2], inner={"n_mels": 64})
    assert config == Checked(lr=1.0, pair=(0.0, 2.0), inner=Inner(n_mels=64)) and isinstance(config.lr, float)
    with pytest.raises(ParameterError, match=r"Checked\.pair: expected a list of 2 values"):
        Checked(pair=(1.0,))
    with pytest.raises(ParameterError, match=r"Checked\.lr: must be a finite number, got inf"):
        Checked(lr=float("inf"))


def test_from_yaml_names_the_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("lr: [1, 2]\n")
    with pytest.raises(ParameterError, match=r"recipe\.yaml: Outer\.lr: expected a finite number"):
        from_yaml(Outer, path)
