"""birdcall: recognise bird species by sound in long field recordings.

The names a notebook reaches for are available here, each imported from its subpackage on first use, so
``import birdcall`` stays cheap and never imports torch::

    import birdcall
    audio = birdcall.load_audio("dawn.flac")            # birdcall.audio.load
    model = birdcall.load_model("model.safetensors")    # birdcall.models.load_model
    birdcall.run_inference("model.onnx", ["dawn.flac"], "out/")

Everything else lives in the subpackages (`birdcall.audio`, `birdcall.features`, `birdcall.data`,
`birdcall.models`, `birdcall.train`, `birdcall.infer`, `birdcall.export`, `birdcall.metrics`, `birdcall.eval`,
`birdcall.workflows`).
"""

from ._lazy import install

__version__ = "0.1.0"

# public name -> subpackage defining it ("subpackage:name" when the name differs there)
_LAZY = {
    "load_audio": "audio:load",
    "stream_audio": "audio:stream",
    "write_audio": "audio",
    "FeatureConfig": "features",
    "LogMel": "features",
    "log_mel": "features",
    "LabelSet": "data",
    "create_model": "models",
    "load_model": "models",
    "save_model": "models",
    "TrainConfig": "train",
    "fit": "train",
    "evaluate": "train",
    "load_scorer": "infer",
    "predict_file": "infer",
    "predict_files": "infer",
    "run_inference": "infer",
    "write_submission": "infer",
    "export_onnx": "export",
    "export_openvino": "export",
    "read_export_info": "export",
    "padded_cmap": "metrics",
    "score_arrays": "metrics",
    "score_submission": "eval.submission",
    "write_report": "eval",
    "run_demo": "workflows",
}
__all__ = ["__version__", *_LAZY]
install(__name__, _LAZY)
