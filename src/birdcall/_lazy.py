"""Lazy re-exports for packages whose public names live in modules that import torch.

A package ``__init__`` declares ``{name: submodule}`` and calls :func:`install`: a name is imported from its
submodule on first use, so ``from birdcall.features import FeatureConfig`` does not import torch while
``from birdcall.features import LogMel`` still works. librosa does the same through ``lazy_loader``; this is
its small core, without the extra dependency, plus one fix: a function named like its own submodule
(``birdcall.features.normalize``, the function, in ``normalize.py``) wins over the submodule, which Python
binds on the package whenever any code imports that submodule.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping


def install(package: str, names: Mapping[str, str]) -> None:
    """Make ``names`` (public name -> submodule of ``package`` defining it) lazy attributes of ``package``.

    A submodule written ``"audio:load"`` exports that module's ``load`` under the public name (the package root
    exports `birdcall.audio.load` as ``load_audio``).
    """
    module = sys.modules[package]
    table = dict(names)

    class LazyPackage(types.ModuleType):
        def __getattr__(self, name: str):  # only called for names not bound yet
            submodule = table.get(name)
            if submodule is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            module_name, _, attribute = submodule.partition(":")
            value = getattr(importlib.import_module(f"{package}.{module_name}"), attribute or name)
            self.__dict__[name] = value  # later look-ups are plain attribute reads
            return value

        def __getattribute__(self, name: str):
            value = super().__getattribute__(name)
            if isinstance(value, types.ModuleType) and table.get(name) == name and hasattr(value, name):
                value = getattr(value, name)  # the function, not the submodule of the same name
                self.__dict__[name] = value
            return value

        def __dir__(self) -> list[str]:
            return sorted(set(super().__dir__()) | set(table))

    module.__class__ = LazyPackage
