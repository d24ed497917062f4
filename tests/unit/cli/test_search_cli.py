"""`birdcall search` through the typer app with a tiny torch embedder: a window of an embedded file, used as the
query, finds itself first (and the --html page shows it and the others); a query through another model is refused in one line."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.audio import write_audio
from birdcall.cli import app
from birdcall.data.labels import LabelSet
from birdcall.features import FeatureConfig
from birdcall.testing.signals import tone

runner = CliRunner()
RATE = 32_000


def tiny(path, seed):
    import torch

    from birdcall.models import create_model, save_model

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = create_model("test_cnn", num_classes=2, features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0))
    return save_model(model, path, labels=LabelSet(("a", "b")))


@pytest.mark.integration
def test_a_window_finds_itself_and_another_embedder_is_refused(tmp_path):
    import numpy as np

    model, other = tiny(tmp_path / "m.safetensors", 0), tiny(tmp_path / "o.safetensors", 1)
    folder = tmp_path / "audio"
    folder.mkdir()
    parts = [tone(frequency_hz=f, duration=1.0, sample_rate=RATE, amplitude=0.3) for f in (400.0, 1200.0, 2500.0, 5000.0)]
    write_audio(folder / "long.wav", np.concatenate(parts), RATE)
    query = write_audio(tmp_path / "query.wav", parts[2], RATE)
    result = runner.invoke(app, ["embed", "--quiet", "--model", str(model), "--out", str(tmp_path / "emb.parquet"), str(folder)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["search", str(query), "--index", str(tmp_path / "emb.parquet"), "--model", str(model), "--top", "3",
                                 "--out", str(tmp_path / "hits.csv"), "--html", str(tmp_path / "hits.html")])  # fmt: skip
    assert result.exit_code == 0, result.output
    hits = pd.read_csv(tmp_path / "hits.csv")
    page = (tmp_path / "hits.html").read_text(encoding="utf-8")
    assert page.count('<li class="card hit"') == 3 and page.index('id="query"') < page.index('id="hit-1"') < page.index('id="hit-3"')
    assert page.count("data:audio/wav;base64,") == 4 and page.count("data:image/png;base64,") == 4
    assert hits["start_time"].iloc[0] == 2.0 and hits["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    result = runner.invoke(app, ["search", str(query), "--index", str(tmp_path / "emb.parquet"), "--model", str(other)])
    assert result.exit_code == 2 and "embedded by another embedder than the query (different" in result.output
