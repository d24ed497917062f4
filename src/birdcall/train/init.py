"""Starting weights for a training run (``TrainConfig.init_from``): a birdcall model file or a backbone's weights.

`init_weights` takes a freshly built model (:func:`birdcall.models.create_model`, the ``cnn``, ``sed`` and
``crnn`` families) and one of two kinds of file:

- a **birdcall model file** (:func:`birdcall.models.save_model`: safetensors with the ``birdcall`` header) of the
  same architecture. With the same species in the same order every tensor loads; otherwise the head keeps the
  model's fresh initialisation, except the rows of the species both share, which are copied. Settings that
  change no tensor (``fmax``, ``pool``...) load with a warning; ones that do (``n_mels``, ``channels``,
  ``rnn_hidden``...) and another ``sample_rate`` are refused.
- a **weights file of the timm backbone** (e.g. ImageNet weights downloaded beforehand): a safetensors file
  without the birdcall header, or a torch state dict (``.pth``, ``.bin``, ``.pt``) read with
  ``torch.load(..., weights_only=True)``. Its tensors go into ``model.backbone``; timm's classifier is left out
  and the first convolution is adapted to the model's input channels (timm's ``adapt_input_conv``). An audio
  transformer (``vit_*``) also gets an image ViT's positional embedding resampled to its mel x time patch grid
  (:meth:`birdcall.models.vit.AudioViT.adapt_pretrained`): DeiT/ViT ImageNet weights start it as AST starts.

Nothing is downloaded and nothing is unpickled beyond torch's weights-only loader. The model changes only once
the whole file has been checked: after an error it is as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from .._compat import import_timm
from ..config import from_dict
from ..data.labels import LabelSet
from ..errors import CheckpointError, ParameterError
from ..features import FeatureConfig
from ..models.cnn import BirdCNN, ModelConfig, WaveformModel
from ..models.io import read_model_info
from ..models.sed import FrameModel
from ..models.zoo import BIRDNET_FAMILIES
from ..types import Pathlike

__all__ = ["InitReport", "init_weights"]

BIRDCALL = "birdcall"
WEIGHTS = "weights"
_WRAPPER_KEYS = ("state_dict", "model")  # training checkpoints that wrap the state dict
_TIMM_CLASSIFIERS = ("classifier", "fc", "head")  # when the backbone's pretrained_cfg does not name its classifier
_NOT_WEIGHTS = ("num_classes", "drop_rate", "drop_path_rate")  # ModelConfig fields that describe no tensor's values
_COUNTER = "num_batches_tracked"  # BatchNorm step counters: neither weights nor evidence of a match


@dataclass(frozen=True)
class InitReport:
    """What `init_weights` did, for the training log (`line`).

    Attributes:
        path: the file the weights came from.
        source: ``"birdcall"`` (a birdcall model file) or ``"weights"`` (weights of the timm backbone).
        loaded: tensors copied whole into the model (a head with only some rows copied does not count).
        skipped: ``(tensor name, reason)`` of every tensor of the file not copied whole: timm's classifier,
            tensors the model does not have or has in another shape, and, from a birdcall file, the head when
            the species differ and the front end when the features differ (the model keeps its own).
        head: ``"loaded"``, ``"reinitialised"`` (the model's fresh initialisation) or ``"partial: k of n
            species"`` (the rows of the ``k`` species the file also has are copied; the others stay fresh).
        adapted: tensors fitted to the model's shape, one note each: the first convolution adapted to the
            model's input channels (``adapt_input_conv``, e.g. ``conv_stem.weight 3->1``) and an audio
            transformer's resampled positional embedding or patch kernel (``pos_embed 14x14->8x19 ...``).
        warnings: settings that differ from the file's without changing a tensor, each one line.
    """

    path: str
    source: str
    loaded: int
    skipped: tuple[tuple[str, str], ...] = ()
    head: str = "reinitialised"
    adapted: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def line(self) -> str:
        """One-line summary, e.g. ``init_from x.safetensors (birdcall model): 96 tensors loaded, head partial: 3 of 5 species``."""
        kind = "birdcall model" if self.source == BIRDCALL else "backbone weights"
        parts = [f"init_from {self.path} ({kind}): {self.loaded} tensors loaded"]
        if self.skipped:
            by_reason: dict[str, list[str]] = {}
            for name, reason in self.skipped:
                by_reason.setdefault(reason, []).append(name)
            groups = [f"{names[0]} ({reason})" if len(names) == 1 else f"{len(names)} {reason}" for reason, names in by_reason.items()]
            more = f", +{len(groups) - 3} more" if len(groups) > 3 else ""
            parts.append(f"{len(self.skipped)} skipped ({', '.join(groups[:3])}{more})")
        if self.adapted:
            parts.append(f"adapted: {', '.join(self.adapted)}")
        parts.append(f"head {self.head}")
        text = ", ".join(parts) + "".join(f"; warning: {w}" for w in self.warnings)
        return " ".join(text.split())


def init_weights(model: nn.Module, path: Pathlike, *, labels: LabelSet) -> InitReport:
    """Load starting weights from ``path`` into the freshly created ``model``, in place.

    Args:
        model: a ``cnn``, ``sed`` or ``crnn`` model from :func:`birdcall.models.create_model`, as initialised.
        path: a birdcall model file, or a weights file of the model's timm backbone (see the module docstring).
        labels: the species of ``model``'s outputs, in order; a birdcall file's head rows follow its species.

    Returns:
        An :class:`InitReport`; ``report.line()`` is the summary for the training log.

    Raises:
        ParameterError: a BirdNET-family model (``init_from is not supported for birdnet_probe``), a model that
            is not a birdcall waveform model, or not as many labels as the model has outputs.
        CheckpointError: one line naming the file: missing, a directory, unreadable or corrupt; a birdcall model
            of another architecture, or whose tensors or ``sample_rate`` do not fit the model; weights of which
            fewer than half of the backbone's tensors fit (``does not look like weights of <backbone>``).
    """
    family = getattr(getattr(model, "config", None), "arch", None)
    if family in BIRDNET_FAMILIES:
        raise ParameterError(f"init_from is not supported for {family} (got {path})")
    if not isinstance(model, WaveformModel):
        raise ParameterError(f"init_weights: expected a cnn, sed or crnn model from create_model, got {type(model).__name__}")
    if len(labels) != model.num_classes:
        raise ParameterError(f"init_weights: {len(labels)} labels for a model with {model.num_classes} outputs")
    p = Path(path)
    if p.is_dir():
        raise CheckpointError(p, "is a directory, not a weights file")
    if not p.is_file():
        raise CheckpointError(p, "file not found")
    tensors = _read_file(p)
    if tensors is None:  # a birdcall model file: its tensors are read once its header is checked against the model
        return _init_from_model_file(model, p, labels)
    return _init_from_backbone_weights(model, p, tensors)


# ---------------------------------------------------------------------------------------------------------- files


def _one_line(err: BaseException, limit: int = 200) -> str:
    return " ".join(str(err).split())[:limit]


def _read_file(p: Path) -> dict[str, torch.Tensor] | None:
    """None for a birdcall model file; else the tensors of a plain weights file, unwrapped, ``module.`` removed."""
    try:
        with safe_open(str(p), framework="pt", device="cpu") as handle:
            if BIRDCALL in (handle.metadata() or {}):
                return None
            names = handle.keys()  # the handle itself is not iterable
            return _state_dict(p, {name: handle.get_tensor(name) for name in names})
    except (SafetensorError, OSError, ValueError) as err:
        if p.suffix == ".safetensors":
            raise CheckpointError(p, f"not a readable safetensors file ({_one_line(err)})") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several unrelated types for bad or unsafe files
        # torch's own message suggests weights_only=False, which would run the file's code: never that
        cause = "torch's weights-only loader refused it" if "weights_only" in str(err) else _one_line(err)
        raise CheckpointError(p, f"not a weights file: neither safetensors nor a torch state dict of tensors ({type(err).__name__}: {cause})") from None
    return _state_dict(p, obj)


def _state_dict(p: Path, obj: Any) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, looking inside a ``state_dict``/``model`` wrapper, without a ``module.`` prefix."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(p, f"holds a {type(obj).__name__}, not a state dict")
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    tensors = {name.removeprefix("module."): value for name, value in obj.items() if isinstance(name, str) and isinstance(value, torch.Tensor)}
    if not tensors:
        raise CheckpointError(p, "holds no tensors")
    return tensors


# ------------------------------------------------------------------------------------------- birdcall model files


def _head_prefix(model: WaveformModel) -> str:
    """State-dict prefix of the classification head, the module ``reset_classifier`` replaces (rows = species)."""
    if isinstance(model, FrameModel):
        return "head."
    if isinstance(model, BirdCNN):
        return "classifier."
    raise ParameterError(f"init_weights: no known classification head on a {type(model).__name__}")


def _differences(old, new, *, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """``{field: "<old> in the file, <new> in the model"}`` of two config dataclasses of one type."""
    out = {}
    for f in dataclasses.fields(new):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if f.name not in ignore and a != b:
            out[f.name] = f"{a!r} in the file, {b!r} in the model"
    return out


def _describe(diff: dict[str, str]) -> str:
    return "; ".join(f"{name} {change}" for name, change in diff.items())


def _init_from_model_file(model: WaveformModel, p: Path, labels: LabelSet) -> InitReport:
    info = read_model_info(p)  # a validated header (CheckpointError naming the file otherwise)
    old_config = from_dict(ModelConfig, info["model"])
    old_features = from_dict(FeatureConfig, info["features"])
    old_labels = LabelSet.from_dict(info["labels"])
    config = model.config
    if (old_config.arch, old_config.backbone) != (config.arch, config.backbone):
        raise CheckpointError(
            p, f"architecture {old_config.arch}/{old_config.backbone} does not match the model's {config.arch}/{config.backbone}"
        )
    feature_diff = _differences(old_features, model.feature_config)
    model_diff = _differences(old_config, config, ignore=_NOT_WEIGHTS)
    if "sample_rate" in feature_diff:
        raise CheckpointError(p, f"features of another sample rate do not fit this model ({_describe(feature_diff)})")

    head = _head_prefix(model)
    same_species = old_labels.codes == labels.codes
    state = model.state_dict()
    try:
        with safe_open(str(p), framework="pt", device="cpu") as handle:
            names = handle.keys()
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in names}
            _check_shapes(p, state, shapes, head=head if not same_species else None, rows=len(old_labels), diff={**feature_diff, **model_diff})
            wanted = [name for name in state if not (feature_diff and name.startswith("frontend.")) and (same_species or not name.startswith(head))]
            update = {name: handle.get_tensor(name) for name in wanted}
            head_rows = {} if same_species else {name: handle.get_tensor(name) for name in state if name.startswith(head)}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(p, f"cannot read the weights ({_one_line(err)})") from None

    skipped: list[tuple[str, str]] = []
    if feature_diff:
        skipped += [(name, "front end: the model's features differ") for name in state if name.startswith("frontend.")]
    loaded = len(update)
    if same_species:
        head_state = "loaded"
    else:
        shared = [(labels.index(code), old_labels.index(code)) for code in labels.codes if code in old_labels]
        if shared:
            new_rows, old_rows = (list(rows) for rows in zip(*shared))
            for name, tensor in head_rows.items():
                fresh = state[name].detach().clone()
                fresh[new_rows] = tensor[old_rows].to(fresh)
                update[name] = fresh
            head_state = f"partial: {len(shared)} of {len(labels)} species"
            reason = f"head: rows of {len(shared)} shared species copied"
        else:
            head_state, reason = "reinitialised", "head: other species"
        skipped += [(name, reason) for name in head_rows]
    model.load_state_dict({**state, **update}, strict=True)

    warnings = []
    if feature_diff:
        warnings.append(f"features differ ({_describe(feature_diff)}); the front end follows the model's")
    if model_diff:
        warnings.append(f"model settings differ ({_describe(model_diff)}); the model follows its own")
    return InitReport(path=str(p), source=BIRDCALL, loaded=loaded, skipped=tuple(skipped), head=head_state, warnings=tuple(warnings))


def _check_shapes(p: Path, state: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]], *, head: str | None, rows: int, diff: dict[str, str]) -> None:
    """Raise unless the file has exactly the model's tensors, each of the model's shape; with ``head`` given (other
    species), the head's tensors may have ``rows`` rows instead."""
    missing = [name for name in state if name not in shapes]
    unexpected = [name for name in shapes if name not in state]
    if missing or unexpected:
        listed = ", ".join([f"missing {name}" for name in missing[:2]] + [f"unexpected {name}" for name in unexpected[:2]])
        raise CheckpointError(p, f"tensors do not match the model ({len(missing)} missing, {len(unexpected)} unexpected: {listed})")
    mismatched = []
    for name, tensor in state.items():
        want = tuple(tensor.shape)
        if head is not None and name.startswith(head):
            want = (rows, *want[1:])
        if shapes[name] != want:
            mismatched.append(f"{name} is {shapes[name]} in the file, {want} in the model")
    if mismatched:
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        settings = f"; settings that differ: {_describe(diff)}" if diff else ""
        raise CheckpointError(p, f"does not fit the model: {mismatched[0]}{more}{settings}")


# -------------------------------------------------------------------------------------------- backbone weights


def _names(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(v for v in value or () if isinstance(v, str))


def _adapt_input_conv():
    import_timm()  # the torchvision workaround first
    try:
        from timm.models._manipulate import adapt_input_conv
    except ImportError:  # timm < 0.9
        from timm.models.helpers import adapt_input_conv
    return adapt_input_conv


def _init_from_backbone_weights(model: WaveformModel, p: Path, tensors: Mapping[str, torch.Tensor]) -> InitReport:
    backbone = model.backbone
    target = backbone.state_dict()
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    classifiers = _names(cfg.get("classifier")) or _TIMM_CLASSIFIERS
    first_convs = {f"{name}.weight" for name in _names(cfg.get("first_conv"))}
    if not first_convs:
        first_convs = {next((name for name, t in target.items() if t.ndim == 4 and name.endswith(".weight")), "")}
    update: dict[str, torch.Tensor] = {}
    skipped: list[tuple[str, str]] = []
    adapted: list[str] = []
    adapt_pretrained = getattr(backbone, "adapt_pretrained", None)  # a backbone's own fitting (AudioViT: positions, patch)
    if callable(adapt_pretrained):
        tensors, notes = adapt_pretrained(tensors)
        adapted.extend(notes)
    for name, tensor in tensors.items():
        if name not in target:
            timm_head = any(name == c or name.startswith(c + ".") for c in classifiers)
            skipped.append((name, "timm classifier" if timm_head else f"not in {model.config.backbone}"))
            continue
        want = target[name].shape
        if tensor.shape == want:
            update[name] = tensor
            continue
        if name in first_convs and tensor.ndim == 4 and tensor.shape[0] == want[0] and tensor.shape[2:] == want[2:]:
            try:
                conv = _adapt_input_conv()(want[1], tensor)  # from 3 channels (RGB)
            except (NotImplementedError, ValueError, AssertionError) as err:
                skipped.append((name, f"cannot adapt {tensor.shape[1]} to {want[1]} input channels ({_one_line(err, 80)})"))
                continue
            if conv.shape == want:
                update[name] = conv
                adapted.append(f"{name} {tensor.shape[1]}->{want[1]}")
                continue
        skipped.append((name, f"shape {tuple(tensor.shape)} in the file, {tuple(want)} in the model"))
    counted = [name for name in target if not name.endswith(_COUNTER)]
    matched = sum(name in update for name in counted)
    if 2 * matched < len(counted):
        raise CheckpointError(p, f"does not look like weights of {model.config.backbone}: matched {matched} of {len(counted)} tensors")
    backbone.load_state_dict({**target, **update}, strict=True)
    return InitReport(path=str(p), source=WEIGHTS, loaded=len(update), skipped=tuple(skipped), head="reinitialised", adapted=tuple(adapted))
