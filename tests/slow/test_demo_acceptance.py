"""The full demo (default DemoConfig, seed 0) must reach cmAP >= 0.90 on its synthetic soundscapes.

About 4 minutes on 2 CPU cores (10 on a slow day), so it sits in the slow tier that `make test` runs. Its wall time is
not asserted: machines here differ by 2x from day to day (a 600-s bound failed on 2026-11-29 at 607 s with the same
code); the demo's timings are recorded in benchmarks/RESULTS.md instead.
"""

import pytest

from birdcall.workflows import DemoConfig, run_demo


@pytest.mark.slow
def test_default_demo_reaches_cmap_090(tmp_path):
    result = run_demo(tmp_path, DemoConfig(), show_progress=False, log=lambda m: None)
    assert result.scores["cmap"] >= 0.90, result.scores
    assert result.scores["padded_cmap"] >= result.scores["cmap"]
    assert result.seconds["train"] > 0 and set(result.seconds) >= {"train"}
