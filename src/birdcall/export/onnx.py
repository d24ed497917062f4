"""ONNX export of birdcall models with the whole front end in the graph, and the metadata of exported files.

The exported graph takes raw audio and gives probabilities:

- input ``waveform``: ``(batch, num_samples)`` float32 at ``features.sample_rate``, ``num_samples =
  features.clip_samples`` (static); the batch axis is dynamic;
- output ``clipwise``: ``(batch, C)`` probabilities (the sigmoid is in the graph), and for SED/CRNN models also
  ``framewise``: ``(batch, T', C)`` frame probabilities.

The file's ``metadata_props`` make it self-describing: ``birdcall.format`` (`FORMAT`), ``labels``
(``LabelSet.to_dict()``), ``features`` (the `FeatureConfig`) and ``model`` (the `ModelConfig`), each JSON as in
a ``.safetensors`` model file.

The STFT: the front end's ``torch.stft(..., return_complex=True)`` has no ONNX form (the TorchScript exporter
rejects complex tensors, and has no ``fft_rfft``), so the exported copy of the model computes the same power
spectrogram in one of three ONNX-friendly ways (`STFT_METHODS`, ``stft=`` of `export_onnx`):

- ``"fft"`` (the default where it applies: ``hop_length`` divides ``n_fft``, as in every recipe): a two-stage
  (Cooley-Tukey, ``n_fft = N1 * N2``) DFT written as two matrix products. Frames are cut by reshaping the padded
  signal into hops and concatenating ``n_fft / hop_length`` shifted views; stage 1 is one batched MatMul of
  ``N2`` ``(N1, 2 N1)`` matrices holding the Hann window, the ``N1``-point DFT and the twiddle factors; stage 2
  one MatMul by a ``(2 N2, 2 K2)`` matrix, the ``N2``-point DFT restricted to the output bins the mel filter bank
  uses. That is ~0.36 M multiply-adds per frame at ``n_fft=2048`` against 3.7 M for the DFT convolution, and
  neither ONNX Runtime nor OpenVINO has a fast STFT kernel of its own (measured: `benchmarks/RESULTS.md`).
  Written by hand because no exporter offers it; it agrees with ``torch.stft`` to ~1e-6 relative.
- ``"op"`` (opset >= 17): the ONNX ``STFT`` operator (``torch.stft(return_complex=False)``).
- ``"dft"``: a DFT as a strided ``Conv1d`` whose weights are the Hann-windowed cosine and sine rows of the used
  FFT bins (a constant of ``2 * n_used_bins * n_fft`` floats, ~14 MB at ``n_fft=2048``); any opset.

All three agree with torch to ~1e-5 dB.

Whatever the form, the power spectrogram ``(batch, n_frames, n_used_bins)`` is the graph's tensor named
``power_spectrum`` (`POWER_TENSOR`; the file records it under ``birdcall.host_stft`` with the bins it holds).
birdcall's own scorers cut the graph there and feed it from a real FFT on the host (`birdcall.export.host`),
which is several times cheaper than any of the three forms; `export_onnx` checks that path against torch too.

Three more things are written differently in the graph than in torch, with the same values, so that ONNX
Runtime and OpenVINO agree with torch (see `_ExportNormalize` and `_ExportOps`): the per-map standardisation
(exact zeros for digital silence, and a two-pass mean), ``expm1`` (PCEN; no ONNX form) and ``logsumexp`` (OpenVINO
mis-reads ``ReduceLogSumExp`` below opset 18).
The model passed in is never modified: the export works on a CPU float32 copy.

The exporter is torch's TorchScript one (``dynamo=False``), which torch >= 2.9 calls legacy (its deprecation
warning is silenced here); the ``torch.export``-based exporter would need its own handling of the front end.

(Just over 500 lines: the three STFT forms, the graph signature and the parity check of one export.)
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .._validate import check_int
from ..config import to_dict
from ..data.labels import LabelSet
from ..errors import ExportError, ParameterError
from ..features import FeatureConfig
from ..features.mel import LogMel
from ..features.normalize import Normalize
from ..fileio import atomic_path
from ..types import Pathlike
from .metadata import (
    FORMAT,
    FORMAT_KEY,
    HOST_STFT_KEY,
    INPUT_NAME,
    POWER_TENSOR,
    TOLERANCE,
    check_windows,
    max_difference,
    parity_windows,
    parse_metadata,
)

__all__ = [
    "FORMAT",
    "INPUT_NAME",
    "MIN_OPSET",
    "STFT_METHODS",
    "STFT_OPSET",
    "TOLERANCE",
    "check_windows",
    "export_metadata",
    "export_onnx",
    "parse_metadata",
]

MIN_OPSET = 13
STFT_OPSET = 17  # first opset with the ONNX STFT operator
STFT_METHODS = ("auto", "fft", "op", "dft")


def _fft_factors(n_fft: int, bins: slice) -> tuple[int, int] | None:
    """``(N1, N2)`` with ``N1 * N2 == n_fft`` and the fewest multiply-adds for the two-stage DFT; None if prime."""
    best = None
    for n1 in range(2, n_fft // 2 + 1):
        if n_fft % n1:
            continue
        n2 = n_fft // n1
        k2 = -(-bins.stop // n1) - bins.start // n1  # stage-2 outputs needed to cover the used bins
        cost = 2 * n_fft * n1 + 4 * n1 * n2 * k2
        if best is None or cost < best[0]:
            best = (cost, n1, n2)
    return None if best is None else best[1:]


def resolve_stft_method(features: FeatureConfig, opset: int, method: str = "auto") -> str:
    """The STFT form `export_onnx` writes for ``features`` at ``opset`` (see the module docstring).

    Raises:
        ParameterError: unknown method, ``"op"`` below opset 17, or ``"fft"`` where it does not apply.
    """
    if method not in STFT_METHODS:
        raise ParameterError(f"stft must be one of {STFT_METHODS}, got {method!r}")
    fft_ok = features.n_fft % features.hop_length == 0 and _fft_factors(features.n_fft, slice(0, features.n_fft // 2 + 1)) is not None
    if method == "auto":
        return "fft" if fft_ok else ("op" if opset >= STFT_OPSET else "dft")
    if method == "op" and opset < STFT_OPSET:
        raise ParameterError(f"stft='op' needs opset >= {STFT_OPSET} (the ONNX STFT operator), got opset {opset}")
    if method == "fft" and not fft_ok:
        raise ParameterError(
            f"stft='fft' needs hop_length to divide n_fft and a composite n_fft (got n_fft={features.n_fft}, hop_length={features.hop_length})"
        )
    return method


class _ExportLogMel(LogMel):
    """`LogMel` whose STFT the TorchScript ONNX exporter can write (see the module docstring).

    Same config, window and filter bank as ``source``; only `power_frames` differs.
    """

    def __init__(self, source: LogMel, *, method: str):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty-filter warning was already given for source
            super().__init__(source.config, dtype=source.window.dtype)
        self.load_state_dict(source.state_dict())
        self.method = method
        c = self.config
        window = self.window.double().numpy()
        if method == "dft":
            n = np.arange(c.n_fft)
            bins = np.arange(self._bins.start, self._bins.stop)
            angle = 2.0 * np.pi * (np.outer(bins, n) % c.n_fft) / c.n_fft  # exact phase: k * n reduced mod n_fft
            basis = np.concatenate([np.cos(angle) * window, np.sin(angle) * window])[:, None, :]  # (2K, 1, n_fft)
            self.register_buffer("dft_basis", torch.from_numpy(basis).to(self.window.dtype))
        elif method == "fft":
            self._init_fft(window)

    def _init_fft(self, window: np.ndarray) -> None:
        """Constants of the two-stage DFT: sample ``n = N2 * n1 + n2``, bin ``k = k1 + N1 * k2``."""
        n_fft = self.config.n_fft
        n1_size, n2_size = _fft_factors(n_fft, self._bins)
        n1, n2, k1 = np.arange(n1_size), np.arange(n2_size), np.arange(n1_size)
        # stage 1, for each n2: sum over n1 of x * window * exp(-2 pi i (n1 k1 / N1 + n2 k1 / N)); integer phases
        # reduced exactly before the float64 trigonometry
        phase = (np.outer(n1, k1) % n1_size)[None, :, :] * n2_size + (np.outer(n2, k1) % n_fft)[:, None, :]  # (n2, n1, k1), in 1/N turns
        angle = -2.0 * np.pi * phase / n_fft
        w = window.reshape(n1_size, n2_size).T[:, :, None]  # (n2, n1, 1)
        stage1 = np.concatenate([np.cos(angle) * w, np.sin(angle) * w], axis=-1)  # (N2, N1, 2 N1): real | imaginary
        k2_lo, k2_hi = self._bins.start // n1_size, -(-self._bins.stop // n1_size)
        k2 = np.arange(k2_lo, k2_hi)
        angle2 = -2.0 * np.pi * (np.outer(n2, k2) % n2_size) / n2_size  # (n2, k2)
        cos, sin = np.cos(angle2), np.sin(angle2)
        stage2 = np.block([[cos, sin], [-sin, cos]])  # [re | im] over n2 -> [re | im] over k2
        dtype = self.window.dtype
        self.register_buffer("fft_stage1", torch.from_numpy(stage1).to(dtype))
        self.register_buffer("fft_stage2", torch.from_numpy(stage2).to(dtype))
        self._fft_sizes = (n1_size, n2_size, len(k2))
        self._fft_offset = self._bins.start - k2_lo * n1_size

    def _frames(self, waveform: torch.Tensor) -> torch.Tensor:
        """Centred, zero-padded frames ``(batch, n_frames, n_fft)`` from reshaped hops (hop divides n_fft)."""
        c = self.config
        num_samples = waveform.shape[-1]
        n_frames = c.num_frames(num_samples)
        padded = num_samples + c.n_fft
        tail = -padded % c.hop_length
        hops = F.pad(waveform, (c.n_fft // 2, c.n_fft // 2 + tail)).reshape(waveform.shape[0], -1, c.hop_length)
        return torch.cat([hops[:, i : i + n_frames] for i in range(c.n_fft // c.hop_length)], dim=-1)

    def power_frames(self, waveform: torch.Tensor) -> torch.Tensor:
        power = self._stft_power(waveform)
        # kept for `_ProbabilityGraph(with_power=True)`, which exports it as the tensor named POWER_TENSOR
        self.traced_power = power
        return power

    def mel(self, frames: torch.Tensor, power: float | None = None) -> torch.Tensor:
        """`LogMel.mel` as ``(frames @ filters.T).T``: the same products, but the power tensor is read as it is,
        so no exporter pass can merge its transpose (the ``"dft"`` form ends in one) into a new tensor and leave
        the one named `POWER_TENSOR` unread."""
        power = self.config.power if power is None else power
        spec = frames if power == 2 else frames.pow(power / 2)
        return torch.matmul(spec, self.mel_basis[:, self._bins].transpose(0, 1)).transpose(1, 2)

    def _stft_power(self, waveform: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.method == "op":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*return_complex=False.*")
                spec = torch.stft(
                    waveform, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.n_fft, window=self.window, center=True,
                    pad_mode="constant", normalized=False, onesided=True, return_complex=False,
                )  # (batch, n_freq, n_frames, 2)
            parts = spec.transpose(1, 2)[:, :, self._bins]
            return parts[..., 0].square() + parts[..., 1].square()
        if self.method == "fft":
            n1, n2, k2 = self._fft_sizes
            frames = self._frames(waveform)
            batch, n_frames = frames.shape[0], frames.shape[1]
            x = frames.reshape(-1, n1, n2).permute(2, 0, 1)  # (N2, batch * frames, N1)
            y = torch.matmul(x, self.fft_stage1)  # (N2, BT, 2 N1)
            y = y.reshape(n2, -1, 2, n1).permute(1, 3, 2, 0).reshape(-1, n1, 2 * n2)  # (BT, k1, re|im over n2)
            z = torch.matmul(y, self.fft_stage2)  # (BT, k1, re|im over k2)
            power = (z[..., :k2].square() + z[..., k2:].square()).transpose(1, 2).reshape(batch, n_frames, k2 * n1)
            return power[..., self._fft_offset : self._fft_offset + (self._bins.stop - self._bins.start)]
        pad = c.n_fft // 2
        framed = F.conv1d(F.pad(waveform.unsqueeze(1), (pad, pad)), self.dft_basis, stride=c.hop_length).transpose(1, 2)  # (B, T, 2K)
        n_bins = self.dft_basis.shape[0] // 2
        # transposed before the power, so that the power tensor is an Add that OpenVINO keeps (a final Transpose
        # is merged into the next MatMul by its conversion, and the tensor's name is lost)
        return framed[..., :n_bins].square() + framed[..., n_bins:].square()


class _ExportNormalize(Normalize):
    """`Normalize` whose ``"standardize"`` is accurate and runtime-independent in float32 (same values).

    Two things differ from torch's formula, neither changes the result mathematically:

    - The map's maximum is subtracted first, so a constant map (the -100 dB of digital silence) becomes exactly
      zero and standardises to exact zeros, as in torch. Without it OpenVINO (which fuses the standardisation
      into its MVN kernel) was one ulp off -100 in the mean, and the division by ``std + 1e-6`` turned that
      residue into O(1) features (the std floor was then ``+ 1e-6``; it is now ``max(std, 1e-4)``).
    - The mean is taken in two passes (the mean of what is left after subtracting a first mean is subtracted
      too). The runtimes' float32 reductions over ``n_mels * n_frames`` values are less accurate than torch's,
      and more so after the shift: on a half-silent window one pass left ONNX Runtime's features 5e-5 off
      torch's (6e-5 in the probabilities of a trained NIPS4B model); two passes give 1.5e-5, as torch's own
      formula does in ONNX Runtime.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode != "standardize":
            return super().forward(x)
        dims = (-2, -1)
        shifted = x - x.amax(dim=dims, keepdim=True)
        centred = shifted - shifted.mean(dim=dims, keepdim=True)
        centred = centred - centred.mean(dim=dims, keepdim=True)  # the rounding error of the first mean
        return centred / centred.pow(2).mean(dim=dims, keepdim=True).sqrt().clamp_min(self.eps)


def _logsumexp(x: torch.Tensor, dim, keepdim: bool = False) -> torch.Tensor:
    peak = x.amax(dim=dim, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))  # all -inf gives -inf, not NaN
    out = torch.log(torch.exp(x - peak).sum(dim=dim, keepdim=True)) + peak
    return out if keepdim else out.squeeze(dim)


class _ExportOps(TorchFunctionMode):
    """While tracing, write two torch functions with ops every runtime handles the same way.

    - ``expm1(y)`` -> ``exp(y) - 1``: the TorchScript exporter has no ``aten::expm1`` (PCEN uses it). The
      absolute error is ~6e-8 near 0, like the exporter's own ``log1p(x) -> log(1 + x)``; ``y = 0`` (silence)
      stays exact.
    - ``logsumexp`` -> max-shifted ``log(sum(exp))``: the exporter writes ``ReduceLogSumExp`` with an ``axes``
      attribute below opset 18, which OpenVINO's ONNX front end reduces over *all* axes (SED/CRNN heads). A max
      of ``-inf`` is replaced by 0, so an all ``-inf`` slice gives ``-inf``, not NaN: the exporter writes
      ``logsigmoid(z)`` as ``log(sigmoid(z))``, which is ``-inf`` for frame logits below about -88 (torch stays
      finite there; the clip probability is 0 either way).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.expm1, torch.Tensor.expm1):
            return torch.exp(args[0]) - 1.0
        if func in (torch.logsumexp, torch.Tensor.logsumexp):
            return _logsumexp(*args, **kwargs)
        return func(*args, **kwargs)


class _ProbabilityGraph(nn.Module):
    """What gets exported: the model followed by a sigmoid on every output.

    With ``with_power`` (an `_export_copy` only), the front end's power spectrogram is returned last, so that
    the exporter gives that tensor a known name (`POWER_TENSOR`); `export_onnx` then removes it from the
    graph's outputs, and it stays an inner tensor that `birdcall.export.host` can cut the graph at.
    """

    def __init__(self, model: nn.Module, *, with_power: bool = False):
        super().__init__()
        self.model = model
        self.with_power = with_power

    def forward(self, waveform: torch.Tensor):
        output = self.model(waveform)
        if isinstance(output, Mapping):
            probs = (torch.sigmoid(output["clipwise"]), torch.sigmoid(output["framewise"]))
        else:
            probs = (torch.sigmoid(output),)
        if self.with_power:
            return (*probs, self.model.frontend.logmel.traced_power)
        return probs if len(probs) > 1 else probs[0]


def _check_model(model) -> None:
    from ..models import BIRDNET_FAMILIES

    arch = getattr(getattr(model, "config", None), "arch", None)
    if arch == "birdnet_finetune" and hasattr(model, "exportable"):  # all torch (BirdNET's port): exported whole
        return
    if arch in BIRDNET_FAMILIES:
        raise ExportError(
            f"a {model.config.arch} model runs BirdNET's TFLite graph inside and cannot be exported to ONNX/OpenVINO: "
            "use its .safetensors file with predict, analyze and evaluate"
        )
    frontend = getattr(model, "frontend", None)
    if not (
        isinstance(model, nn.Module)
        and hasattr(model, "config")
        and isinstance(getattr(model, "feature_config", None), FeatureConfig)
        and isinstance(getattr(frontend, "logmel", None), LogMel)
    ):
        raise ParameterError(f"expected a birdcall model (from birdcall.models.load_model or create_model), got {type(model).__name__}")


def export_metadata(model, labels: LabelSet) -> dict[str, str]:
    """The metadata an exported file carries: ``{"birdcall.format", "labels", "features", "model"}`` -> JSON text.

    Raises:
        ParameterError: ``model`` is not a birdcall model, or ``labels`` does not match its outputs.
    """
    _check_model(model)
    if not isinstance(labels, LabelSet):
        raise ParameterError(f"labels must be a LabelSet, got {type(labels).__name__}")
    if len(labels) != model.num_classes:
        raise ParameterError(f"{len(labels)} labels for a model with {model.num_classes} outputs")
    return {
        FORMAT_KEY: FORMAT,
        "labels": json.dumps(labels.to_dict()),
        "features": json.dumps(to_dict(model.feature_config)),
        "model": json.dumps(to_dict(model.config)),
    }


def _max_opset() -> int:
    """Highest opset of the TorchScript exporter (a private torch constant; 17 if it moved)."""
    from torch.onnx import _constants

    return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", getattr(_constants, "ONNX_MAX_OPSET", 17)))


def _export_copy(model, opset: int, stft: str = "auto") -> nn.Module:
    """A CPU float32 eval copy of ``model`` with exportable STFT and normalisation (the original is untouched)."""
    net = copy.deepcopy(model).float().cpu().eval()
    net.frontend.logmel = _ExportLogMel(net.frontend.logmel, method=resolve_stft_method(net.feature_config, opset, stft))
    net.frontend.normalize = _ExportNormalize(net.frontend.normalize.mode, net.frontend.normalize.eps)
    return net


def export_onnx(
    model,
    path: Pathlike,
    *,
    labels: LabelSet,
    opset: int = 17,
    stft: str = "auto",
    batch_size_hint: int = 2,
    check: bool = True,
) -> Path:
    """Export a birdcall model to ONNX: waveform in, probabilities out, front end included.

    Args:
        model: a birdcall model (``load_model``/``create_model``); on any device, in any mode. It is not modified.
        path: the ``.onnx`` file to write (atomically: written only if every check passes).
        labels: the species of the model's outputs, stored in the file.
        opset: ONNX opset (13 or more; ``stft="op"`` needs 17).
        stft: how the graph computes the STFT (`STFT_METHODS`, module docstring): ``"auto"`` picks ``"fft"`` (two
            matrix products) when ``hop_length`` divides ``n_fft``, else the ``STFT`` operator from opset 17 and
            the DFT convolution below it.
        batch_size_hint: batch size of the example input used for tracing (the batch axis stays dynamic).
        check: besides ``onnx.checker``, run ONNX Runtime on a few windows (`check_windows`, batch 4) and
            compare its probabilities with torch's.

    Returns:
        ``Path(path)``.

    Raises:
        ParameterError: not a birdcall model, labels that do not match, a bad opset, STFT method, path or batch size.
        ExportError: the exporter or the ONNX checker failed, or ONNX Runtime differs from torch by more than
            `TOLERANCE` on any probability.
    """
    import onnx

    metadata = export_metadata(model, labels)
    dest = Path(path)
    if dest.suffix != ".onnx":
        raise ParameterError(f"{dest}: an ONNX export must be written to a .onnx file")
    max_opset = _max_opset()
    opset = check_int("opset", opset, min=MIN_OPSET, max=max_opset)
    batch_size_hint = check_int("batch_size_hint", batch_size_hint, min=1)
    features: FeatureConfig = model.feature_config
    host = not hasattr(model, "exportable")  # birdnet_finetune: BirdNET's own spectrogram, no host STFT
    if host:
        net = _export_copy(model, opset, stft)
        bins = net.frontend.logmel._bins
        metadata[HOST_STFT_KEY] = json.dumps({"tensor": POWER_TENSOR, "bins": [bins.start, bins.stop]})
    else:
        net = model.exportable()
    graph = _ProbabilityGraph(net, with_power=host)
    example = torch.from_numpy(np.random.default_rng(0).standard_normal((batch_size_hint, features.clip_samples), dtype=np.float32) * 0.1)
    with torch.no_grad():
        outputs = graph(example)
    framewise = len(outputs) == 3 if host else isinstance(outputs, tuple)  # (clipwise, framewise[, power]) or clipwise
    names = ["clipwise", "framewise"] if framewise else ["clipwise"]
    extra_outputs = [POWER_TENSOR] if host else []
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), _ExportOps():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks on static shapes
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)  # strided Slice
            # The RNN warning is about initial states baked for the example batch; ours are zeros built from the
            # input's shape (the check runs batch 4, the tests batches 1 and 5).
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1", category=UserWarning)
            torch.onnx.export(
                graph, (example,), buffer, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[*names, *extra_outputs], dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *names, *extra_outputs]},
                do_constant_folding=True,
            )
        proto = onnx.load_model_from_string(buffer.getvalue())
        if host:
            _unlist_power_output(proto)
        onnx.helper.set_model_props(proto, metadata)
        proto.doc_string = (
            f"birdcall {model.config.arch} model ({model.config.backbone}), {len(labels)} species: {INPUT_NAME} "
            f"(batch, {features.clip_samples}) float32 at {features.sample_rate} Hz -> {', '.join(names)} probabilities"
        )
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:  # the exporter and the checker raise many unrelated types
        raise ExportError(f"{dest}: ONNX export failed ({type(err).__name__}: {' '.join(str(err).split())[:300]})") from err
    data = proto.SerializeToString()
    if check:
        _compare_with_torch(model, proto, data, names, dest)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return dest


def _unlist_power_output(proto) -> None:
    """Remove `POWER_TENSOR` from the graph's outputs; it must remain the tensor the mel filter bank reads.

    The TorchScript exporter names an output tensor after ``output_names``; if it had written the power as a
    copy (an ``Identity`` beside the tensor the rest of the graph reads), cutting there would cut nothing, so
    that is an error.
    """
    graph = proto.graph
    power = [o for o in graph.output if o.name == POWER_TENSOR]
    kept = [o for o in graph.output if o.name != POWER_TENSOR]
    del graph.output[:]
    graph.output.extend(kept)
    graph.value_info.extend(power)  # its type and shape (batch dynamic), which cutting the graph there needs
    if not any(POWER_TENSOR in node.input for node in graph.node):
        raise ExportError(f"the exported graph does not read its {POWER_TENSOR!r} tensor (an exporter change?)")


def _compare_with_torch(model, proto, data: bytes, names: list[str], dest: Path) -> None:
    """Raise `ExportError` unless ONNX Runtime on ``proto`` (serialised: ``data``) matches the unmodified torch model (a CPU eval copy),
    both the whole graph and the graph cut at its power spectrum fed by the host STFT (`birdcall.export.host`)."""
    import onnxruntime as ort

    from .host import host_power_spectrum, onnx_body

    reference = _ProbabilityGraph(copy.deepcopy(model).float().cpu().eval())
    windows = parity_windows(model.feature_config, model.config.arch)
    with torch.no_grad():
        expected = reference(torch.from_numpy(windows))
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    actual = session.run(names, {INPUT_NAME: windows})
    diff, where = max_difference(expected, actual, names)
    if not diff <= TOLERANCE:
        raise ExportError(f"{dest}: ONNX Runtime and torch differ by {diff:.2e} on {where} (tolerance {TOLERANCE:g})")
    _, features, info = parse_metadata({prop.key: prop.value for prop in proto.metadata_props}, path=dest)
    if "host_stft" not in info:  # an export without a host-STFT cut (birdnet_finetune): the whole graph was checked
        return
    body = ort.InferenceSession(onnx_body(proto, names).SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    actual = body.run(names, {POWER_TENSOR: host_power_spectrum(features, info)(windows)})
    diff, where = max_difference(expected, actual, names)
    if not diff <= TOLERANCE:
        raise ExportError(f"{dest}: the graph fed by the host STFT and torch differ by {diff:.2e} on {where} (tolerance {TOLERANCE:g})")
