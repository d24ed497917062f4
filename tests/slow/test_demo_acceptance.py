"""The full demo (default DemoConfig, seed 0) must reach cmAP >= 0.90 on its synthetic soundscapes.

About 4 minutes on 2 CPU cores, so it sits in the slow tier (`make test-all`).
"""

import pytest

from birdcall.demo import DemoConfig, run_demo


@pytest.mark.slow
def test_default_demo_reaches_cmap_090(tmp_path):
    result = run_demo(tmp_path, DemoConfig(), show_progress=False, log=lambda m: None)
    assert result.scores["cmap"] >= 0.90, result.scores
    assert result.scores["padded_cmap"] >= result.scores["cmap"]
    assert result.seconds["train"] < 600  # "a few minutes at most" on 2 cores, with a wide margin for noise
