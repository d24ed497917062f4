"""Multi-label losses over logits: binary cross-entropy, sigmoid focal loss and their weighted sum.

Every loss takes ``logits`` and ``targets`` of the same shape ``(B, C)`` (targets in ``[0, 1]``; soft targets
such as BirdCLEF secondary labels are fine) and returns a scalar: the **mean over all ``B * C`` elements**
of the element-wise loss. Two optional steps come first, in this order:

1. **Label smoothing** ``eps`` moves every target towards 1/2, the uninformative value of a binary label:
   ``t -> t * (1 - eps) + eps / 2``. Each of the ``C`` outputs is its own two-class problem, so this is
   exactly ``torch.nn.CrossEntropyLoss(label_smoothing=eps)`` applied to each binary problem (``1 -> 1 - eps/2``,
   ``0 -> eps/2``). It is not the softmax form ``eps / C``.
2. **Class weights** ``w`` of shape ``(C,)`` multiply the element-wise loss of column ``c`` by ``w[c]``
   (positives and negatives alike, like the ``weight`` argument of ``torch.nn.BCEWithLogitsLoss``). The mean
   still divides by ``B * C`` rather than by the weight sum; :func:`class_weights` normalises weights to mean 1,
   so the loss keeps its scale.

All element-wise terms are computed from log-sigmoids, so they stay finite (with finite gradients) for logits
of any magnitude, e.g. ±100, where ``sigmoid`` is exactly 0 or 1 in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_fields
from ..errors import ParameterError

__all__ = [
    "LOSSES",
    "BCEFocalLoss",
    "BinaryCrossEntropyLoss",
    "LossConfig",
    "MultiLabelLoss",
    "SigmoidFocalLoss",
    "build_loss",
    "class_weights",
    "distillation_loss",
    "loss_from_config",
    "sigmoid_focal_loss",
    "smooth_targets",
]

LOSSES = ("bce", "focal", "bce+focal")


@dataclass(frozen=True)
class LossConfig:
    """The training loss: ``TrainConfig.loss`` (``loss.loss=focal`` on the command line).

    Attributes:
        loss: ``"bce"``, ``"focal"`` or ``"bce+focal"``.
        label_smoothing: Binary label smoothing ``eps`` in ``[0, 1)``.
        focal_gamma: Focusing exponent of the focal term (0 gives plain BCE).
        focal_alpha: Weight of positives in the focal term, in ``[0, 1]``; None disables it.
        bce_weight: Weight of the BCE term of ``"bce+focal"``.
        focal_weight: Weight of the focal term of ``"bce+focal"``.
        class_weight_power: Per-class weights ``1 / frequency**power`` from the training targets
            (:func:`class_weights`); 0 gives equal weights, i.e. disables them.
    """

    loss: str = "bce"
    label_smoothing: float = 0.0
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    bce_weight: float = 1.0
    focal_weight: float = 1.0
    class_weight_power: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self)  # types and finite numbers
        _check_name(self.loss)
        _check_common(self.label_smoothing, self.focal_gamma, self.focal_alpha, self.bce_weight, self.focal_weight)
        if self.class_weight_power < 0:
            raise ParameterError(f"LossConfig: class_weight_power must be >= 0, got {self.class_weight_power}")


def smooth_targets(targets: torch.Tensor, eps: float) -> torch.Tensor:
    """Binary label smoothing: ``targets * (1 - eps) + eps / 2``.

    Args:
        targets: Targets in ``[0, 1]``, any shape.
        eps: Smoothing in ``[0, 1)``; 0 returns ``targets`` unchanged.

    Returns:
        Smoothed targets, same shape and dtype.
    """
    if eps == 0:
        return targets
    return targets * (1.0 - eps) + eps / 2.0


def _focal_elementwise(logits: torch.Tensor, targets: torch.Tensor, gamma: float, alpha: float | None) -> torch.Tensor:
    """``BCE * (1 - p_t)**gamma [* alpha_t]`` element-wise, with ``1 - p_t`` taken in log space.

    ``1 - p_t = t * sigmoid(-x) + (1 - t) * sigmoid(x)``; its log is a logaddexp of log-sigmoids, so the
    modulating factor ``exp(gamma * log(1 - p_t))`` has a finite gradient even where ``1 - p_t`` underflows
    to 0 (a plain ``pow`` with ``gamma < 1`` would give ``inf * 0 = nan`` there).
    """
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if gamma != 0:
        with torch.no_grad():  # targets carry no gradient; log(0) = -inf is handled by logaddexp
            log_t, log_1mt = torch.log(targets), torch.log1p(-targets)
        log_one_minus_pt = torch.logaddexp(log_t + F.logsigmoid(-logits), log_1mt + F.logsigmoid(logits))
        ce = ce * torch.exp(gamma * log_one_minus_pt)
    if alpha is not None:
        ce = ce * (alpha * targets + (1.0 - alpha) * (1.0 - targets))
    return ce


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ParameterError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, gamma: float = 2.0, alpha: float | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), the formula of ``torchvision.ops.sigmoid_focal_loss``.

    ``loss = BCE(x, t) * (1 - p_t)**gamma``, with ``p = sigmoid(x)`` and ``p_t = p*t + (1-p)*(1-t)``, times
    ``alpha_t = alpha*t + (1-alpha)*(1-t)`` when ``alpha`` is given. Unlike torchvision, ``alpha`` defaults
    to None (no class balancing), and the computation is stable for logits of any magnitude.

    Args:
        logits: Raw scores, any shape.
        targets: Targets in ``[0, 1]``, same shape as ``logits``.
        gamma: Focusing exponent ``>= 0``; 0 gives BCE (times ``alpha_t``).
        alpha: Weight of positives in ``[0, 1]``, or None.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or the element-wise loss with the shape of ``logits`` for ``reduction="none"``.

    Raises:
        ParameterError: Shapes differ, or ``gamma``/``alpha``/``reduction`` are out of range.
    """
    _check_shapes(logits, targets)
    _check_common(0.0, gamma, alpha, 1.0, 1.0)
    return _reduce(_focal_elementwise(logits, targets.to(logits.dtype), gamma, alpha), reduction)


def class_weights(y: np.ndarray | torch.Tensor, *, power: float = 0.5, min_count: float = 1.0) -> torch.Tensor:
    """Per-class loss weights ``1 / count**power``, normalised to mean 1.

    ``count[c]`` is the column sum of ``y`` (so soft targets count fractionally), clipped below at
    ``min_count`` so classes absent from ``y`` get the weight of a class seen ``min_count`` times instead of
    an infinite one. ``power=0.5`` is inverse square-root frequency; ``power=0`` gives all ones.

    Args:
        y: Training targets ``(N, C)`` in ``[0, 1]``.
        power: Exponent ``>= 0``.
        min_count: Lower bound of the counts, ``> 0``.

    Returns:
        Weights ``(C,)``, float32, with mean 1.

    Raises:
        ParameterError: ``y`` is not 2-D, has no columns or negative entries, or ``power``/``min_count`` are out of range.
    """
    counts = y.detach().cpu().double().numpy() if isinstance(y, torch.Tensor) else np.asarray(y, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] == 0:
        raise ParameterError(f"class_weights: y must have shape (N, C) with C >= 1, got {counts.shape}")
    if power < 0 or not min_count > 0:
        raise ParameterError(f"class_weights: need power >= 0 and min_count > 0, got {power}, {min_count}")
    if (counts < 0).any():
        raise ParameterError("class_weights: y must be non-negative")
    weights = np.maximum(counts.sum(axis=0), min_count) ** -power
    return torch.as_tensor(weights / weights.mean(), dtype=torch.float32)


class MultiLabelLoss(nn.Module):
    """Base of the losses here: smoothing, class weighting and the mean; subclasses give ``elementwise``."""

    config_type = LossConfig

    def __init__(self, *, label_smoothing: float = 0.0, class_weights: torch.Tensor | np.ndarray | None = None):
        super().__init__()
        _check_common(label_smoothing, 0.0, None, 1.0, 1.0)
        self.label_smoothing = float(label_smoothing)
        weights = None
        if class_weights is not None:
            weights = torch.as_tensor(class_weights, dtype=torch.float32).detach().clone()
            if weights.ndim != 1 or not torch.isfinite(weights).all() or (weights < 0).any():
                raise ParameterError(f"class_weights must be a finite non-negative 1-D tensor (C,), got shape {tuple(weights.shape)}")
        # A non-persistent buffer follows .to(device) but stays out of state_dict (it comes from the data).
        self.register_buffer("class_weights", weights, persistent=False)

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, sample_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Mean loss over all elements.

        Args:
            logits: Raw scores ``(B, C)``.
            targets: Targets in ``[0, 1]``, ``(B, C)``.
            sample_weights: ``(B,)`` non-negative weights of the rows (e.g. pseudo-labelled windows weighted
                against labelled ones); the mean still divides by ``B * C``, so all-ones weights change nothing.

        Returns:
            A scalar tensor; float32 for float16/bfloat16 logits, which are upcast first.

        Raises:
            ParameterError: Shapes differ or do not match the class weights.
        """
        _check_shapes(logits, targets)
        if logits.dtype in (torch.float16, torch.bfloat16):  # e.g. under autocast: compute the loss in float32
            logits = logits.float()
        targets = smooth_targets(targets.to(logits.dtype), self.label_smoothing)
        loss = self.elementwise(logits, targets)
        if self.class_weights is not None:
            if self.class_weights.shape[0] != logits.shape[-1]:
                raise ParameterError(f"{len(self.class_weights)} class weights for {logits.shape[-1]} classes")
            loss = loss * self.class_weights.to(loss.dtype)
        if sample_weights is not None:
            sample_weights = torch.as_tensor(sample_weights, dtype=loss.dtype, device=loss.device)
            if sample_weights.shape != loss.shape[:1]:
                raise ParameterError(f"sample_weights must have shape ({loss.shape[0]},), got {tuple(sample_weights.shape)}")
            loss = loss * sample_weights[:, None]
        return loss.mean()

    def extra_repr(self) -> str:
        weights = "None" if self.class_weights is None else f"({len(self.class_weights)},)"
        return f"label_smoothing={self.label_smoothing}, class_weights={weights}"


class BinaryCrossEntropyLoss(MultiLabelLoss):
    """Binary cross-entropy with logits (``torch.nn.BCEWithLogitsLoss``), plus label smoothing and class weights.

    Args:
        label_smoothing: Binary label smoothing ``eps`` in ``[0, 1)``.
        class_weights: Per-class weights ``(C,)``, or None.
    """

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


class SigmoidFocalLoss(MultiLabelLoss):
    """Sigmoid focal loss (:func:`sigmoid_focal_loss`), plus label smoothing and class weights.

    Args:
        gamma: Focusing exponent ``>= 0``.
        alpha: Weight of positives in ``[0, 1]``, or None.
        label_smoothing: Binary label smoothing ``eps`` in ``[0, 1)``.
        class_weights: Per-class weights ``(C,)``, or None.
    """

    def __init__(self, *, gamma: float = 2.0, alpha: float | None = None, label_smoothing: float = 0.0, class_weights=None):
        _check_common(label_smoothing, gamma, alpha, 1.0, 1.0)
        super().__init__(label_smoothing=label_smoothing, class_weights=class_weights)
        self.gamma, self.alpha = float(gamma), alpha

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return _focal_elementwise(logits, targets, self.gamma, self.alpha)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, {super().extra_repr()}"


class BCEFocalLoss(MultiLabelLoss):
    """``bce_weight * BCE + focal_weight * focal``, element-wise, then the mean.

    Smoothing and class weights apply to both terms (the same as weighting the sum).

    Args:
        bce_weight: Weight of the BCE term, ``>= 0``.
        focal_weight: Weight of the focal term, ``>= 0``; not both 0.
        gamma: Focusing exponent of the focal term.
        alpha: Weight of positives in the focal term, or None.
        label_smoothing: Binary label smoothing ``eps`` in ``[0, 1)``.
        class_weights: Per-class weights ``(C,)``, or None.
    """

    def __init__(
        self,
        *,
        bce_weight: float = 1.0,
        focal_weight: float = 1.0,
        gamma: float = 2.0,
        alpha: float | None = None,
        label_smoothing: float = 0.0,
        class_weights=None,
    ):
        _check_common(label_smoothing, gamma, alpha, bce_weight, focal_weight)
        super().__init__(label_smoothing=label_smoothing, class_weights=class_weights)
        self.bce_weight, self.focal_weight = float(bce_weight), float(focal_weight)
        self.gamma, self.alpha = float(gamma), alpha

    def elementwise(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return self.bce_weight * bce + self.focal_weight * _focal_elementwise(logits, targets, self.gamma, self.alpha)

    def extra_repr(self) -> str:
        return f"bce_weight={self.bce_weight}, focal_weight={self.focal_weight}, gamma={self.gamma}, alpha={self.alpha}, {super().extra_repr()}"


def build_loss(
    name: str,
    *,
    label_smoothing: float = 0.0,
    class_weights: torch.Tensor | np.ndarray | None = None,
    gamma: float = 2.0,
    alpha: float | None = None,
    bce_weight: float = 1.0,
    focal_weight: float = 1.0,
) -> MultiLabelLoss:
    """Build a loss by name.

    ``gamma`` and ``alpha`` are used by ``"focal"`` and ``"bce+focal"``; ``bce_weight`` and ``focal_weight``
    only by ``"bce+focal"``. All of them are validated whatever the name, so a bad value in a config
    fails even while unused.

    Args:
        name: ``"bce"``, ``"focal"`` or ``"bce+focal"``.
        label_smoothing: Binary label smoothing ``eps`` in ``[0, 1)``.
        class_weights: Per-class weights ``(C,)`` (see :func:`class_weights`), or None.
        gamma: Focusing exponent ``>= 0``.
        alpha: Weight of positives in ``[0, 1]``, or None.
        bce_weight: Weight of the BCE term, ``>= 0``.
        focal_weight: Weight of the focal term, ``>= 0``.

    Returns:
        An ``nn.Module`` mapping ``(logits, targets)`` of shape ``(B, C)`` to the scalar mean loss.

    Raises:
        ParameterError: Unknown name or a value out of range.

    Example:
        >>> criterion = build_loss("bce+focal", gamma=2.0, bce_weight=1.0, focal_weight=0.5)
        >>> loss = criterion(torch.zeros(2, 3), torch.ones(2, 3))
    """
    _check_name(name)
    _check_common(label_smoothing, gamma, alpha, bce_weight, focal_weight)
    common = {"label_smoothing": label_smoothing, "class_weights": class_weights}
    if name == "bce":
        return BinaryCrossEntropyLoss(**common)
    if name == "focal":
        return SigmoidFocalLoss(gamma=gamma, alpha=alpha, **common)
    return BCEFocalLoss(bce_weight=bce_weight, focal_weight=focal_weight, gamma=gamma, alpha=alpha, **common)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float = 1.0, kind: str = "bce") -> torch.Tensor:
    """Knowledge distillation for multi-label outputs: each species a binary distribution.

    With ``q = sigmoid(z / T)`` for teacher (``t``) and student (``s``) logits, the element-wise term is the
    cross-entropy ``-(q_t log q_s + (1 - q_t) log(1 - q_s))`` (``kind="bce"``) or that minus the teacher's own
    entropy, the binary KL divergence ``KL(q_t || q_s)`` (``"kl"``: 0 when the student matches; same gradients).
    The mean over all elements is multiplied by ``T**2`` so that gradients keep their scale as ``T`` changes
    (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"). The teacher gets no gradient.

    Raises:
        ParameterError: shapes differ, ``temperature <= 0`` or an unknown ``kind``.
    """
    _check_shapes(student_logits, teacher_logits)
    if not temperature > 0:
        raise ParameterError(f"distillation temperature must be > 0, got {temperature}")
    if kind not in ("bce", "kl"):
        raise ParameterError(f"distillation loss must be 'bce' or 'kl', got {kind!r}")
    zs = student_logits.float() / temperature
    zt = teacher_logits.detach().float() / temperature
    qt = torch.sigmoid(zt)
    loss = -(qt * F.logsigmoid(zs) + (1 - qt) * F.logsigmoid(-zs))
    if kind == "kl":  # minus the teacher's entropy, computed stably from its logits
        loss = loss + (qt * F.logsigmoid(zt) + (1 - qt) * F.logsigmoid(-zt))
    return loss.mean() * temperature**2


def loss_from_config(config: LossConfig, *, targets: np.ndarray | torch.Tensor | None = None) -> MultiLabelLoss:
    """Build the loss of ``config``; ``targets`` (the training targets ``(N, C)``) feed the class weights.

    Args:
        config: The loss config.
        targets: Training targets, needed when ``config.class_weight_power > 0``.

    Returns:
        The loss module.

    Raises:
        ParameterError: ``class_weight_power > 0`` without ``targets``.
    """
    weights = None
    if config.class_weight_power > 0:
        if targets is None:
            raise ParameterError("loss_from_config: class_weight_power > 0 needs the training targets")
        weights = class_weights(targets, power=config.class_weight_power)
    return build_loss(
        config.loss,
        label_smoothing=config.label_smoothing,
        class_weights=weights,
        gamma=config.focal_gamma,
        alpha=config.focal_alpha,
        bce_weight=config.bce_weight,
        focal_weight=config.focal_weight,
    )


def _check_name(name: str) -> None:
    if name not in LOSSES:
        raise ParameterError(f"loss must be one of {LOSSES}, got {name!r}")


def _check_common(label_smoothing: float, gamma: float, alpha: float | None, bce_weight: float, focal_weight: float) -> None:
    if not 0.0 <= label_smoothing < 1.0:
        raise ParameterError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if not gamma >= 0:
        raise ParameterError(f"focal gamma must be >= 0, got {gamma}")
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"focal alpha must be in [0, 1] or None, got {alpha}")
    if not (bce_weight >= 0 and focal_weight >= 0) or bce_weight + focal_weight == 0:
        raise ParameterError(f"bce_weight and focal_weight must be >= 0 and not both 0, got {bce_weight}, {focal_weight}")


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.shape != targets.shape:
        raise ParameterError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must have the same shape")
