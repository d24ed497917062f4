"""The package root's public API: lazy names that resolve to their subpackages' objects, without torch on import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import birdcall


def test_import_birdcall_imports_no_subpackage_and_no_torch():
    code = "import sys, birdcall; print(sorted(m for m in sys.modules if m.startswith(('birdcall', 'torch', 'numpy', 'pandas'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "['birdcall', 'birdcall._lazy']"


@pytest.mark.parametrize("name", sorted(birdcall._LAZY))
def test_each_root_name_is_the_object_of_its_module(name):
    module_name, _, attribute = birdcall._LAZY[name].partition(":")
    expected = getattr(importlib.import_module(f"birdcall.{module_name}"), attribute or name)
    assert getattr(birdcall, name) is expected
    assert name in birdcall.__all__ and name in dir(birdcall)


def test_root_names_are_the_documented_ones():
    assert birdcall.load_audio is importlib.import_module("birdcall.audio.io").load
    assert birdcall.run_inference.__module__.startswith("birdcall.infer")
    assert isinstance(birdcall.__version__, str)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        birdcall.nothing_here  # noqa: B018


def test_the_old_demo_module_warns_and_gives_the_workflow():
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n    import birdcall.demo\nexcept DeprecationWarning as w:\n    print('warned:', w)\n"
        "warnings.simplefilter('ignore'); import birdcall.demo as old, birdcall.workflows as new\n"
        "print(old.run_demo is new.run_demo and old.DemoConfig is new.DemoConfig)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "warned: birdcall.demo moved to birdcall.workflows" in result.stdout
    assert result.stdout.strip().endswith("True")
