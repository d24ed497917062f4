"""int8 OpenVINO IRs: post-training quantisation of a birdcall IR with NNCF, checked against the float32 IR.

`quantize_openvino` reads a float32 IR written by :func:`birdcall.export.export_openvino`, calibrates NNCF's
int8 quantisation on windows of a data set or an audio folder (`calibration_set`, birdcall's own decoding and
windowing), and writes the int8 IR only if its probabilities stay within a tolerance of the float32 IR's on
held-out windows (and, for a labelled data set, if its cmAP on the data set's clips moves by at most
`CMAP_TOLERANCE`).

The front end stays float: NNCF is told to ignore every node that is not downstream of a 2-D convolution (the
STFT, the power spectrum, the mel filter bank, dB and normalisation all come before the network's first one), so
the ``power_spectrum`` tensor survives and the scorers cut the int8 IR at the host STFT as they cut an f32 one.
The IR carries the f32 IR's metadata plus ``quantization`` (`birdcall.export.metadata.QUANTIZATION_KEY`):
precision, calibration source, digest and window counts, and the measured differences.

``nncf`` is an optional dependency (``pip install 'birdcall[int8]'``); it is imported only here.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import AUDIO_EXTENSIONS, stream
from ..data.labels import LabelSet
from ..errors import ExportError, ParameterError
from ..features.config import FeatureConfig
from ..fileio import hash_files
from ..layout import DatasetLayout
from ..types import Pathlike
from .info import RT_KEYS, RT_SECTION, import_openvino, read_ir

__all__ = ["CMAP_TOLERANCE", "TOLERANCE_INT8", "CalibrationSet", "calibration_set", "import_nncf", "quantize_openvino"]

# Max absolute difference of probabilities accepted between the int8 and the float32 IR on held-out windows.
# int8 rounding moves a logit by a few hundredths (test_cnn: ~1e-2 in probability); 0.05 lets that through and
# refuses a broken calibration (a saturated or mis-scaled quantiser moves probabilities by tenths).
TOLERANCE_INT8 = 0.05
# Max change of cmAP on a labelled calibration data set's clips (issue 21: within 0.01).
CMAP_TOLERANCE = 0.01
HELD_OUT_EVERY = 5  # every 5th window read is held out of calibration and used for the check (20 %)


def import_nncf():
    """The ``nncf`` module, or a `ParameterError` naming the extra that installs it."""
    try:
        import nncf
    except ImportError:
        raise ParameterError("int8 export needs NNCF, which is not installed: pip install 'birdcall[int8]'") from None
    return nncf


@dataclass(frozen=True)
class CalibrationSet:
    """Windows read for calibration and checking.

    Attributes:
        windows: ``(n, clip_samples)`` float32, in reading order.
        clip: ``(n,)`` index of the file each window comes from.
        truth: ``(num_files, num_species)`` 0/1 labels of each file in the model's label order (a labelled data
            set), or None (an audio folder).
        source: the folder or file read.
        digest: sha256 of the files read (in order) and the windowing parameters.
    """

    windows: np.ndarray
    clip: np.ndarray
    truth: np.ndarray | None
    source: str
    digest: str

    @property
    def held_out(self) -> np.ndarray:
        """Boolean mask of the windows kept out of calibration (every `HELD_OUT_EVERY`-th)."""
        return np.arange(len(self.windows)) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def _files_and_truth(source: Path, labels: LabelSet | None) -> tuple[list[Path], np.ndarray | None]:
    layout = DatasetLayout(source)
    if source.is_dir() and layout.train_metadata.is_file():
        from ..data.dataset import read_clip_table

        table = read_clip_table(source, skip_bad=True)
        files = [Path(p) for p in table.frame["path"]]
        if labels is None:
            return files, None
        index = {code: i for i, code in enumerate(labels.codes)}
        truth = np.zeros((len(files), len(labels)), dtype=np.int8)
        for row, codes in enumerate(table.frame["labels"]):
            for code in codes:
                if code in index:
                    truth[row, index[code]] = 1
        return files, truth
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS), None
    if source.is_file() and source.suffix.lower() in AUDIO_EXTENSIONS:
        return [source], None
    raise ParameterError(f"{source}: --calibration must be a data set folder, an audio folder or an audio file")


def calibration_set(source: Pathlike, features: FeatureConfig, *, num_windows: int, labels: LabelSet | None = None) -> CalibrationSet:
    """Read ``num_windows`` calibration windows plus a held-out quarter of that from ``source``.

    The windows are the model's non-overlapping windows (`birdcall.infer.long_recording.iter_windows`, the last
    one zero padded), at most ``ceil(total / num_files)`` from each file, from files spread evenly over the sorted
    list when there are more files than windows.

    Args:
        source: a BirdCLEF-layout data set folder (``train_metadata.csv``: its clips, with their labels), a folder
            of audio files (searched recursively), or one audio file.
        features: the model's front end (sample rate and window length).
        num_windows: calibration windows; `HELD_OUT_EVERY` - 1 of every `HELD_OUT_EVERY` windows read calibrate,
            the others are held out for the check.
        labels: the model's species, to map a data set's labels (None: no labels).

    Raises:
        ParameterError: a bad ``num_windows``, a source that is none of the above, or one without audio.
    """
    from ..infer.long_recording import iter_windows

    if not isinstance(num_windows, int) or num_windows < 1:
        raise ParameterError(f"num_windows must be a positive integer, got {num_windows!r}")
    src = Path(source)
    files, truth = _files_and_truth(src, labels)
    if not files:
        raise ParameterError(f"{src}: no audio files to calibrate on")
    total = math.ceil(num_windows * HELD_OUT_EVERY / (HELD_OUT_EVERY - 1))
    if len(files) > total:
        keep = np.unique(np.linspace(0, len(files) - 1, total).round().astype(int))
        files = [files[i] for i in keep]
        truth = truth[keep] if truth is not None else None
    quota = math.ceil(total / len(files))
    windows, clip = [], []
    for k, path in enumerate(files):
        chunks = stream(path, sample_rate=features.sample_rate)
        for j, (_, window) in enumerate(iter_windows(chunks, clip_samples=features.clip_samples, hop_samples=features.clip_samples)):
            if j == quota or len(windows) == total:
                break
            windows.append(window)
            clip.append(k)
        chunks.close()
        if len(windows) == total:
            break
    if len(windows) < HELD_OUT_EVERY:
        raise ParameterError(f"{src}: only {len(windows)} window(s) of {features.clip_duration:g} s; need at least {HELD_OUT_EVERY}")
    used = files[: clip[-1] + 1]
    extra = json.dumps({"windows": total, "sample_rate": features.sample_rate, "clip_samples": features.clip_samples}).encode()
    return CalibrationSet(np.stack(windows).astype(np.float32), np.asarray(clip), None if truth is None else truth[: len(used)],
                          str(src), hash_files(used, extra=extra))  # fmt: skip


def front_end_nodes(model) -> list[str]:
    """Names of the nodes of an ``openvino.Model`` that are not downstream of a 2-D convolution: the front end
    (STFT, power spectrum, mel, dB, normalisation), which NNCF is told to leave in float.

    Raises:
        ParameterError: the model has no 2-D convolution (int8 export is for the CNN families).
    """
    ops = model.get_ordered_ops()
    starts = [op for op in ops if op.get_type_name() == "Convolution" and op.get_input_partial_shape(0).rank.get_length() == 4]
    if not starts:
        raise ParameterError(f"{model.get_friendly_name()}: int8 export needs a network of 2-D convolutions (a birdcall CNN, SED or CRNN)")
    network, stack = set(), list(starts)
    while stack:
        op = stack.pop()
        if op.get_friendly_name() in network:
            continue
        network.add(op.get_friendly_name())
        stack += [t.get_node() for out in op.outputs() for t in out.get_target_inputs()]
    return [op.get_friendly_name() for op in ops if op.get_friendly_name() not in network]


def _probabilities(ov, model, x: np.ndarray, power=None) -> np.ndarray:
    """``clipwise`` of ``model`` (f32 precision hint) on waveforms ``x``; with ``power`` (a host STFT), the model
    is cut at its power spectrum and fed that."""
    if power is not None:
        from .host import openvino_body

        model, x = openvino_body(ov, model.clone()), power(x)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request, out = compiled.create_infer_request(), compiled.output("clipwise")
    return np.concatenate([np.array(request.infer({0: x[i : i + 16]})[out]) for i in range(0, len(x), 16)])


def _clip_cmap(truth: np.ndarray, clip: np.ndarray, scores: np.ndarray) -> float:
    from ..metrics.scores import cmap

    per_clip = np.stack([scores[clip == k].max(axis=0) for k in range(len(truth))])
    return cmap(truth, per_clip)


def quantize_openvino(
    source: Pathlike,
    path: Pathlike,
    *,
    calibration: Pathlike,
    num_windows: int = 300,
    tolerance: float = TOLERANCE_INT8,
    cmap_tolerance: float = CMAP_TOLERANCE,
) -> Path:
    """Write an int8 IR of a float32 birdcall IR, calibrated on ``calibration`` and checked against the f32 IR.

    Args:
        source: the float32 ``.xml`` written by :func:`birdcall.export.export_openvino`.
        path: the ``.xml`` to write (its ``.bin`` beside it), atomically and only if the check passes.
        calibration: a data set folder, an audio folder or an audio file (`calibration_set`).
        num_windows: calibration windows (a quarter as many more are read and held out for the check).
        tolerance: max absolute difference of probabilities from the f32 IR's on the held-out windows, with the
            whole graph and, when the IR allows it, cut at the host STFT.
        cmap_tolerance: max change of cmAP on the clips of a labelled data set (max over each clip's windows).

    Returns:
        ``Path(path)``.

    Raises:
        ParameterError: NNCF or OpenVINO missing, a bad path or calibration source, an int8 ``source``, or a
            model without 2-D convolutions.
        CheckpointError: ``source`` is not a birdcall IR.
        ExportError: the int8 model differs from the f32 one by more than a tolerance (the message gives the
            measured difference); nothing is written.
    """
    from .host import has_power_tensor, host_power_spectrum
    from .openvino import save_ir_atomically

    ov, nncf = import_openvino(), import_nncf()
    dest = Path(path)
    if dest.suffix != ".xml":
        raise ParameterError(f"{dest}: an OpenVINO IR must be written to a .xml file (its .bin goes beside it)")
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0 and isinstance(cmap_tolerance, (int, float)) and cmap_tolerance >= 0):
        raise ParameterError(f"tolerances must be non-negative numbers, got {tolerance!r} and {cmap_tolerance!r}")
    model, labels, features, info = read_ir(source)
    if "quantization" in info:
        raise ParameterError(f"{source}: already quantised ({info['quantization']['precision']}); quantise its float32 IR")
    ignored = front_end_nodes(model)
    cal = calibration_set(calibration, features, num_windows=num_windows, labels=labels)
    held = cal.held_out
    expected = _probabilities(ov, model, cal.windows)
    data = nncf.Dataset([w[None] for w in cal.windows[~held]])
    level = nncf.nncf_logger.level
    nncf.set_log_level(logging.WARNING)  # NNCF logs a line per node it leaves alone (the front end) at INFO
    try:
        quantized = nncf.quantize(model.clone(), data, subset_size=int((~held).sum()), ignored_scope=nncf.IgnoredScope(names=ignored, validate=False))
    except Exception as err:  # NNCF's errors share no useful base class
        raise ExportError(f"{dest}: NNCF quantisation failed ({type(err).__name__}: {' '.join(str(err).split())[:300]})") from err
    finally:
        nncf.set_log_level(level)
    actual = _probabilities(ov, quantized, cal.windows)
    diffs = {"graph": float(np.abs(actual[held] - expected[held]).max())}
    if "host_stft" in info:
        if not has_power_tensor(quantized):  # the front end is left float, so NNCF keeps the tensor
            raise ExportError(f"{dest}: NNCF's quantisation lost the 'power_spectrum' tensor the scorers cut the IR at")
        host = _probabilities(ov, quantized, cal.windows[held], power=host_power_spectrum(features, info))
        diffs["host"] = float(np.abs(host - expected[held]).max())
    where = max(diffs, key=diffs.get)
    record: dict[str, Any] = {
        "precision": "int8",
        "tool": f"nncf {nncf.__version__}",
        "calibration": {"source": Path(cal.source).name, "digest": cal.digest, "windows": int((~held).sum()), "held_out": int(held.sum())},
        "max_abs_difference": diffs[where],
        "tolerance": float(tolerance),
    }
    if not diffs[where] <= tolerance:
        raise ExportError(f"{dest}: int8 and float32 probabilities differ by {diffs[where]:.3g} on {int(held.sum())} held-out windows "
                          f"({where} STFT; tolerance {tolerance:g}); not written")  # fmt: skip
    if cal.truth is not None and cal.truth.any():
        f32_cmap, int8_cmap = _clip_cmap(cal.truth, cal.clip, expected), _clip_cmap(cal.truth, cal.clip, actual)
        record.update(cmap_f32=f32_cmap, cmap_int8=int8_cmap, cmap_tolerance=float(cmap_tolerance))
        if not abs(int8_cmap - f32_cmap) <= cmap_tolerance:
            raise ExportError(f"{dest}: int8 changes cmAP on {len(cal.truth)} calibration clips by {int8_cmap - f32_cmap:+.4f} "
                              f"({f32_cmap:.4f} -> {int8_cmap:.4f}; tolerance {cmap_tolerance:g}); not written")  # fmt: skip
    info = {**info, "quantization": record}
    for rt_key in RT_KEYS:
        if rt_key in info:
            quantized.set_rt_info(info["format"] if rt_key == "format" else json.dumps(info[rt_key]), [RT_SECTION, rt_key])
    save_ir_atomically(ov, quantized, dest)
    return dest
