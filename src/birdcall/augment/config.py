"""`AugmentConfig`: the augmentation recipe of a training run, three ordered lists of registered transforms, and
the builders of its stages.

In YAML (``TrainConfig.augment``)::

    augment:
      waveform:                  # per clip, numpy rng, in list order
        - {name: background_noise, p: 0.5, snr_db: [3, 30]}
        - {name: time_shift, p: 0.5, shift: [-0.5, 0.5], unit: fraction}
      batch:                     # per batch of waveforms (B, N), torch generator
        - {name: mixup, p: 0.5, alpha: 0.4, labels: union}
      spectrogram:               # per batch of features (B, C, F, T), torch generator
        - {name: cutmix, p: 0.5}
        - {name: freq_mask, p: 0.3, num_masks: 2, max_width: 8}

Each entry names a registered augmentation (:mod:`birdcall.augment.builtins` lists birdcall's; register your own
with :func:`~birdcall.augment.register_augmentation`) and gives some of its parameters; the others take their
defaults, and the config holds every parameter once built (so a saved ``config.yaml`` lists them all). An
entry with ``p: 0`` is off: checked, not applied. A mixer's domain is its list: ``mixup`` in ``batch`` mixes
waveforms, in ``spectrogram`` features. ``background_noise`` without ``paths`` mixes in the training data set's
background/ clips; :func:`build_waveform_augment` leaves it out unless given them.

The default is the measured recipe's: background noise from the data set at ``p`` 0.5, nothing else. The flat
layout of older versions (``time_shift_p: 0.5``...) still loads (:mod:`birdcall.augment.legacy`), and ``key=value``
overrides take both spellings (:meth:`AugmentConfig.apply_override`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import check_fields, from_dict
from ..errors import ParameterError
from ..types import Pathlike
from . import builtins as _builtins  # noqa: F401 - registers birdcall's augmentations
from .base import BaseTransform
from .compose import Compose
from .legacy import FLAT_DEFAULTS, flat_form, is_flat, is_on, migrate_flat_augment, stage_rank
from .spec import STAGES, TransformSpec, create_augmentation, resolve_spec

__all__ = ["AugmentConfig", "build_batch_augment", "build_spectrogram_augment", "build_waveform_augment"]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation recipe: per stage, the registered transforms in the order they apply (see the module docstring).

    Attributes:
        waveform: per clip, in the data set (numpy ``rng``).
        batch: per batch of waveforms ``(B, N)``, after sum-mix (torch ``generator``): mixers.
        spectrogram: per batch of features ``(B, C, F, T)`` (torch ``generator``): mixers, masks.
    """

    waveform: tuple[TransformSpec, ...] = (TransformSpec("background_noise", p=0.5, snr_db=(3.0, 30.0)),)
    batch: tuple[TransformSpec, ...] = ()
    spectrogram: tuple[TransformSpec, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self)  # a list of {name: ..., params} mappings per stage
        for stage in STAGES:  # every entry checked and completed, p = 0 too: a bad value fails now, naming its key
            specs = getattr(self, stage)
            object.__setattr__(self, stage, tuple(resolve_spec(s, stage, owner=f"AugmentConfig.{stage}[{i}]") for i, s in enumerate(specs)))

    def to_flat(self) -> dict[str, Any] | None:
        """The fields of the flat config of older versions that express this one, or None when that layout cannot
        (:func:`birdcall.augment.legacy.flat_form`)."""
        return flat_form({stage: getattr(self, stage) for stage in STAGES})

    @classmethod
    def migrate_dict(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """Hook of :func:`birdcall.config.from_dict`: a flat mapping of older versions becomes the stage lists.

        Raises:
            ParameterError: flat keys mixed with stage lists, or a bad flat value.
        """
        if not is_flat(data):
            return dict(data)
        lists = [key for key in data if key in STAGES]
        if lists:
            raise ParameterError(f"AugmentConfig: the stage lists ({', '.join(lists)}) and the flat keys of older versions "
                                 f"({', '.join(k for k in data if k in FLAT_DEFAULTS)}) cannot be mixed; write the lists")  # fmt: skip
        return migrate_flat_augment(data)

    @classmethod
    def apply_override(cls, data: Mapping[str, Any], key: str, value: Any, index: int | None = None) -> dict[str, Any]:
        """Hook of :func:`birdcall.config.apply_overrides` for ``augment.<key>=value``; returns the new plain form.

        ``key`` is one of:

        * ``<stage>.<name>.<param>`` (``waveform.gain.p``): that entry's parameter. An absent entry is added with
          its defaults, where the old flat layout applied it (others at the end); so ``p=0`` switches one off.
        * ``<stage>.<i>.<param>``: the ``i``-th entry's parameter (for a name listed twice).
        * ``<stage>.<name>`` with a mapping of parameters (the entry replaced) or ``null`` (removed).
        * ``<stage>`` with a whole list.
        * a flat key of older versions (``gain_p``, ``mixup_domain``): set as the old config did, when the lists
          are ones the flat layout can express (built-in transforms, each once, in that order).

        ``index`` sets one end of a ``(min, max)`` pair (the old ``noise_max_snr_db`` names).

        Raises:
            ParameterError: an unknown key, or a flat key for lists the flat layout cannot express.
        """
        data = cls.migrate_dict(data)
        parts = key.split(".")
        if len(parts) == 1 and parts[0] in FLAT_DEFAULTS:
            return _set_flat(cls, data, key, value, index)
        if parts[0] not in STAGES or len(parts) > 3:
            raise ParameterError(f"unknown key; augment takes {', '.join(STAGES)}: <stage>.<name>.<parameter> (augment.waveform.gain.p=0.5), "
                                 "<stage>.<name> with a mapping or null, <stage> with a list, or a flat key of older versions (augment.gain_p=0.5)")  # fmt: skip
        stage = parts[0]
        if len(parts) == 1:
            return {**data, stage: [] if value is None else value}
        entries = [dict(e) if isinstance(e, Mapping) else e for e in data.get(stage, _default_plain(stage))]
        at = _find(stage, entries, parts[1])
        if len(parts) == 2:
            if value is not None and not isinstance(value, Mapping):
                raise ParameterError(f"{stage}.{parts[1]} takes a mapping of parameters or null, got {value!r}")
            name = entries[at]["name"] if at is not None else parts[1]
            entry = None if value is None else {"name": name, **value}
        else:
            entry = dict(entries[at]) if at is not None else {"name": parts[1]}
            entry[parts[2]] = value if index is None else _one_end(stage, entry, parts[2], value, index)
        if at is not None:
            entries.pop(at)
        if entry is not None:
            entries.insert(at if at is not None else _rank_position(stage, entries, entry), entry)
        return {**data, stage: entries}


def _default_plain(stage: str) -> list[dict[str, Any]]:
    return [spec.to_dict() for spec in getattr(AugmentConfig, stage)]


def _find(stage: str, entries: list, selector: str) -> int | None:
    """Position of the entry ``selector`` (a name, or an index) in ``entries``; None: no entry of that name."""
    if selector.isdigit():
        if int(selector) >= len(entries):
            raise ParameterError(f"{stage}.{selector}: no such entry; {stage} holds {len(entries)}")
        return int(selector)
    found = [i for i, e in enumerate(entries) if isinstance(e, Mapping) and e.get("name") == selector]
    if len(found) > 1:
        raise ParameterError(f"{stage}.{selector}: {selector} is listed {len(found)} times; name it by position ({stage}.{found[0]}.<param>)")
    return found[0] if found else None


def _rank_position(stage: str, entries: list, entry: Mapping[str, Any]) -> int:
    """Where a new entry goes: before the first entry the old flat layout applied after it."""
    rank = stage_rank(stage, entry)
    return next((i for i, e in enumerate(entries) if isinstance(e, Mapping) and stage_rank(stage, e) > rank), len(entries))


def _one_end(stage: str, entry: dict, param: str, value: Any, index: int) -> list:
    """``entry``'s ``(min, max)`` pair ``param`` (its default when not given) with end ``index`` set to ``value``."""
    if param not in entry:
        entry = resolve_spec(TransformSpec.from_dict(entry), stage, owner=f"{stage}.{entry['name']}").to_dict()
    pair = entry.get(param)
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise ParameterError(f"{stage}.{entry['name']}.{param} is not a (min, max) pair, got {pair!r}")
    return [value if i == index else v for i, v in enumerate(pair)]


def _set_flat(cls, data: dict, key: str, value: Any, index: int | None) -> dict[str, Any]:
    flat = from_dict(cls, data).to_flat()
    if flat is None:
        raise ParameterError(f"{key} is a flat key of older versions, which these lists (user transforms, an order or values the flat layout "
                             "lacks) have no flat form for; set the entry instead, e.g. augment.waveform.gain.p=0.5")  # fmt: skip
    flat[key] = value if index is None else [value if i == index else v for i, v in enumerate(flat[key])]
    return migrate_flat_augment(flat)


def with_dataset_noise(augment: Any, *, p: Any, snr_db: list) -> Any:
    """``TrainConfig.augment`` of an old flat TrainConfig, with its background noise from the data set (``noise_p``,
    ``noise_min/max_snr_db``) as a ``background_noise`` entry without paths, first in the waveform stage.

    Raises:
        ParameterError: both the data set's noise and the augment block's own ``background_noise`` on.
    """
    if not isinstance(augment, Mapping):
        return augment  # the config's check reports it
    if not any(key in STAGES for key in augment):  # the flat augment of that version: its own noise off unless set
        augment = {"background_noise_p": 0.0, **augment}
    data = AugmentConfig.migrate_dict(augment)
    keys = {"p": "noise_p", "snr_db": "noise_min_snr_db/noise_max_snr_db"}  # checked even when off, as before
    resolve_spec(TransformSpec("background_noise", p=p, snr_db=snr_db), "waveform", owner="TrainConfig", keys=keys)
    waveform = list(data.get("waveform", _default_plain("waveform")))
    own = [e for e in waveform if isinstance(e, Mapping) and e.get("name") == "background_noise" and is_on(e.get("p", 0.5))]
    if own and is_on(p):
        raise ParameterError(
            "TrainConfig: noise_p and augment.background_noise_p are both on: background noise now comes from one place "
            "(an augment.waveform entry background_noise; no paths: the data set's background/ clips); set one of them to 0"
        )
    if is_on(p):
        cache = augment.get("background_noise_cache", False) if is_flat(augment) else False  # as the flat block held it
        waveform.insert(0, {"name": "background_noise", "p": p, "snr_db": snr_db, "cache": cache})
    return {**data, "waveform": waveform}


def _as_config(config: AugmentConfig | Mapping[str, Any]) -> AugmentConfig:
    if isinstance(config, AugmentConfig):
        return config
    if isinstance(config, Mapping):
        return from_dict(AugmentConfig, dict(config))
    raise ParameterError(f"expected an AugmentConfig or a mapping, got {type(config).__name__}")


def _transforms(config: AugmentConfig, stage: str) -> list[tuple[TransformSpec, str]]:
    """The entries of ``stage`` that are on, each with the name errors give it."""
    return [(spec, f"augment.{stage}[{i}] ({spec.name})") for i, spec in enumerate(getattr(config, stage)) if spec["p"] > 0]


def _uses_data_set(spec: TransformSpec) -> bool:
    return spec.name == "background_noise" and not spec["paths"]


def build_waveform_augment(config: AugmentConfig | Mapping[str, Any], *, background: Sequence[Pathlike] | None = None) -> Compose:
    """Per-clip pipeline: call as ``augment(samples, sample_rate=..., rng=np.random.Generator)``.

    Args:
        background: the training data set's background/ clips, for ``background_noise`` entries without paths
            (cached in memory). Given (a training run's, maybe empty), the pipeline is nested as training has always
            nested it, ``Compose([<entries up to the first such noise>, Compose(<the rest>)])``, so that training
            draws the same random numbers as before. None: such entries are left out.

    Raises:
        ParameterError: an invalid config, or background noise paths with no audio.
    """
    config = _as_config(config)
    transforms: list[BaseTransform] = []
    split = 0
    for spec, owner in _transforms(config, "waveform"):
        if not _uses_data_set(spec):
            transforms.append(create_augmentation(spec, owner=owner))
        elif background:
            transforms.append(create_augmentation(spec, owner=owner, paths=tuple(background), cache=True))
            split = split or len(transforms)
    if background is None:
        return Compose(transforms)
    return Compose([*transforms[:split], Compose(transforms[split:])])


def build_batch_augment(config: AugmentConfig | Mapping[str, Any]) -> Compose:
    """Waveform-batch stage: call as ``waveforms, targets = augment(waveforms, targets, generator=torch.Generator)``."""
    return Compose([create_augmentation(spec, owner=owner) for spec, owner in _transforms(_as_config(config), "batch")])


def build_spectrogram_augment(config: AugmentConfig | Mapping[str, Any]) -> Compose:
    """Spectrogram-batch stage on ``(B, C, F, T)``: call as ``features, targets = augment(features, targets, generator=...)``."""
    return Compose([create_augmentation(spec, owner=owner) for spec, owner in _transforms(_as_config(config), "spectrogram")])
