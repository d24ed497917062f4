"""The flat ``AugmentConfig`` of older versions (34 fields such as ``time_shift_p``, ``mixup_domain``) and its
translation to and from the stage lists of today's config.

:func:`migrate_flat_augment` turns a flat mapping (an older run's ``config.yaml``) into the lists, in the order
the old builders applied the transforms, so training draws the same random numbers from it: waveform
``background_noise`` without paths first (training mixed the data set's background/ clips in before the rest),
then ``time_shift``, ``pitch_shift``, ``background_noise`` with paths, ``pink_noise``, ``gaussian_snr``,
``gaussian_noise``, ``gain``; in each batch stage ``mixup`` then ``cutmix`` (by their ``*_domain``); then
``freq_mask`` and ``time_mask`` in the spectrogram stage. A transform whose ``*_p`` is 0 was off and gets no
entry, but its values are still checked, as the old config checked them.

:func:`flat_form` goes back: the flat fields of a config the old layout can express (built-in transforms only,
each once, in that order, each with a ``p`` above 0), or None. The old key names of ``key=value`` overrides
(``augment.gain_p=0.5``) and the feature cache of BirdNET heads (keys written from the flat fields) use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import ParameterError
from .spec import TransformSpec, resolve_spec

__all__ = ["FLAT_DEFAULTS", "flat_form", "flat_repr", "is_flat", "is_on", "migrate_flat_augment", "stage_rank"]

# The flat AugmentConfig's fields, in its order, at its defaults.
FLAT_DEFAULTS: dict[str, Any] = {
    "time_shift_p": 0.0, "time_shift": (-0.5, 0.5), "time_shift_unit": "fraction", "time_shift_rollover": True,
    "pitch_shift_p": 0.0, "pitch_shift_semitones": (-2.0, 2.0),
    "background_noise_p": 0.5, "background_noise_paths": (), "background_noise_snr_db": (3.0, 30.0), "background_noise_cache": False,
    "pink_noise_p": 0.0, "pink_noise_snr_db": (10.0, 40.0),
    "gaussian_snr_p": 0.0, "gaussian_snr_db": (10.0, 40.0),
    "gaussian_noise_p": 0.0, "gaussian_noise_amplitude": (0.001, 0.015),
    "gain_p": 0.0, "gain_db": (-6.0, 6.0),
    "mixup_p": 0.0, "mixup_alpha": 0.4, "mixup_labels": "union", "mixup_domain": "waveform",
    "cutmix_p": 0.0, "cutmix_alpha": 1.0, "cutmix_labels": "weighted", "cutmix_domain": "spectrogram", "cutmix_frequency": True,
    "freq_mask_p": 0.0, "freq_mask_num_masks": 2, "freq_mask_max_width": 8,
    "time_mask_p": 0.0, "time_mask_num_masks": 2, "time_mask_max_width": 20,
    "mask_fill": 0.0,
}  # fmt: skip
DOMAINS = ("waveform", "spectrogram")


class _Flat(NamedTuple):
    name: str
    keys: dict[str, str]  # parameter -> flat key; "p" included


def _flat(name: str, prefix: str, **params: str) -> _Flat:
    return _Flat(name, {"p": f"{prefix}_p", **params})


_TIME_SHIFT = _flat("time_shift", "time_shift", shift="time_shift", unit="time_shift_unit", rollover="time_shift_rollover")
_PITCH_SHIFT = _flat("pitch_shift", "pitch_shift", semitones="pitch_shift_semitones")
_NOISE = _flat("background_noise", "background_noise", snr_db="background_noise_snr_db", paths="background_noise_paths", cache="background_noise_cache")
_REST = (
    _flat("pink_noise", "pink_noise", snr_db="pink_noise_snr_db"),
    _flat("gaussian_snr", "gaussian_snr", snr_db="gaussian_snr_db"),
    _flat("gaussian_noise", "gaussian_noise", amplitude="gaussian_noise_amplitude"),
    _flat("gain", "gain", gain_db="gain_db"),
)
_MIXUP = _flat("mixup", "mixup", alpha="mixup_alpha", labels="mixup_labels")
_CUTMIX = _flat("cutmix", "cutmix", alpha="cutmix_alpha", labels="cutmix_labels", cut_frequency="cutmix_frequency")
_MASKS = (
    _flat("freq_mask", "freq_mask", num_masks="freq_mask_num_masks", max_width="freq_mask_max_width", fill="mask_fill"),
    _flat("time_mask", "time_mask", num_masks="time_mask_num_masks", max_width="time_mask_max_width", fill="mask_fill"),
)
_ALL = (_TIME_SHIFT, _PITCH_SHIFT, _NOISE, *_REST, _MIXUP, _CUTMIX, *_MASKS)
_STAGE_OF = {**{f.name: "waveform" for f in (_TIME_SHIFT, _PITCH_SHIFT, _NOISE, *_REST)}, **{f.name: "spectrogram" for f in _MASKS}}

# Where the old builders applied each built-in transform within its stage (see the module docstring).
_ORDER = {
    "waveform": ("background_noise:dataset", "time_shift", "pitch_shift", "background_noise", "pink_noise", "gaussian_snr", "gaussian_noise", "gain"),
    "batch": ("mixup", "cutmix"),
    "spectrogram": ("mixup", "cutmix", "freq_mask", "time_mask"),
}


def _order_key(entry: Mapping[str, Any]) -> str:
    name = entry.get("name")
    return f"{name}:dataset" if name == "background_noise" and not entry.get("paths") else str(name)


def stage_rank(stage: str, entry: Mapping[str, Any]) -> float:
    """Position of a built-in transform in its stage in the old layout (others: infinity, after all of them)."""
    order = _ORDER.get(stage, ())
    key = _order_key(entry)
    return float(order.index(key)) if key in order else float("inf")


def is_flat(data: Mapping[str, Any]) -> bool:
    """``data`` has keys of the flat layout."""
    return any(key in FLAT_DEFAULTS for key in data)


def is_on(probability: Any) -> bool:
    """A probability read from YAML (maybe as text) is not 0; a bad value counts as on (the check reports it)."""
    try:
        return float(probability) != 0
    except (TypeError, ValueError):
        return True


def migrate_flat_augment(data: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The stage lists (plain, as in YAML) of a flat augment mapping; missing keys take the old defaults.

    Every transform's values are checked, those of switched-off transforms too, and errors name the flat key
    (``AugmentConfig.gain_db: Gain: min_gain_db (6.0) > max_gain_db (-6.0)``).

    Raises:
        ParameterError: an unknown key, a bad domain or a bad value.
    """
    unknown = [key for key in data if key not in FLAT_DEFAULTS]
    if unknown:
        raise ParameterError(f"AugmentConfig: unknown key(s) {', '.join(map(str, unknown))} in the flat layout of older versions; "
                             f"known: waveform, batch, spectrogram, or the flat {', '.join(FLAT_DEFAULTS)}")  # fmt: skip
    flat = {**FLAT_DEFAULTS, **data}
    for key in ("mixup_domain", "cutmix_domain"):
        if flat[key] not in DOMAINS:
            raise ParameterError(f"AugmentConfig.{key} must be one of {', '.join(map(repr, DOMAINS))}, got {flat[key]!r}")
    stages: dict[str, list[dict[str, Any]]] = {"waveform": [], "batch": [], "spectrogram": []}
    for item in _ALL:
        stage = _STAGE_OF.get(item.name) or ("batch" if flat[f"{item.name}_domain"] == "waveform" else "spectrogram")
        entry = {"name": item.name, **{param: flat[key] for param, key in item.keys.items()}}
        resolve_spec(TransformSpec.from_dict(entry), stage, owner="AugmentConfig", keys=item.keys)  # checked even when off
        if is_on(entry["p"]):
            stages[stage].append(entry)
    for stage, entries in stages.items():
        entries.sort(key=lambda entry, s=stage: stage_rank(s, entry))  # stable: the old order within equal ranks
    return stages


def flat_form(stages: Mapping[str, tuple[TransformSpec, ...]]) -> dict[str, Any] | None:
    """The flat fields (all of them, normalised as the flat config held them) of resolved stage lists, or None
    when the flat layout cannot express them. A transform without an entry is off (``p`` 0) at the other defaults."""
    flat = {key: 0.0 if key.endswith("_p") else value for key, value in FLAT_DEFAULTS.items()}
    by_name = {item.name: item for item in _ALL}
    seen = set()
    for stage, specs in stages.items():
        for spec in specs:
            item = by_name.get(spec.name)
            if item is None or spec.name in seen:
                return None
            seen.add(spec.name)
            for param, key in item.keys.items():
                flat[key] = spec.params[param]
            if spec.name in (_MIXUP.name, _CUTMIX.name):
                flat[f"{spec.name}_domain"] = "waveform" if stage == "batch" else "spectrogram"
    try:
        again = migrate_flat_augment(flat)
        same = all(tuple(resolve_spec(TransformSpec.from_dict(e), stage, owner="AugmentConfig") for e in again[stage]) == tuple(specs)
                   for stage, specs in stages.items())  # fmt: skip
    except ParameterError:
        return None
    return flat if same else None


def flat_repr(flat: Mapping[str, Any]) -> str:
    """``repr`` of the flat ``AugmentConfig`` with these fields (as the dataclass wrote it)."""
    return "AugmentConfig(" + ", ".join(f"{key}={flat[key]!r}" for key in FLAT_DEFAULTS) + ")"
