"""benchmarks/inference_speed.py end to end on a short generated soundscape with a tiny model: every configured
row runs in its own process through run_inference, and the table's rows are the configurations asked for."""

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("inference_speed")


@pytest.mark.integration
def test_configurations_cover_streams_frontends_and_stft_forms(bench):
    rows = bench.configurations(["m"], ["torch", "onnx", "openvino"], ["fft", "dft"], [1, 2], ["host", "graph"])
    assert rows == [("m", "torch", None, None, None), ("m", "onnx", "fft", None, "host"), ("m", "onnx", "fft", None, "graph"),
                    ("m", "openvino", "fft", 1, "host"), ("m", "openvino", "fft", 2, "host"), ("m", "openvino", "fft", 2, "graph"),
                    ("m", "openvino", "dft", 1, "graph")]  # fmt: skip


@pytest.mark.integration
def test_int8_rows_follow_the_openvino_rows(bench):
    rows = bench.configurations(["m"], ["openvino"], ["fft"], [1, 2], ["host"], int8=True)
    assert rows == [("m", "openvino", "fft", 1, "host"), ("m", "openvino", "fft", 2, "host"),
                    ("m", "openvino-int8", "fft", 1, "host"), ("m", "openvino-int8", "fft", 2, "host")]  # fmt: skip


@pytest.mark.integration
def test_benchmark_int8_quantises_on_the_soundscape_and_measures_it(bench, tmp_path):
    pytest.importorskip("nncf")
    out = tmp_path / "speed"
    code = bench.main(["--out", str(out), "--minutes", "0.5", "--models", "test_cnn", "--backends", "openvino", "--streams", "1",
                       "--stft", "fft", "--frontends", "host", "--num-classes", "5", "--threads", "1", "--skip-birdnet",
                       "--skip-memory", "--repeat", "1", "--detections", "0", "--int8"])  # fmt: skip
    assert code == 0
    rows = json.loads((out / "inference_speed.json").read_text())["rows"]
    assert [r["backend"] for r in rows] == ["openvino, host STFT, 1 stream", "openvino int8, host STFT, 1 stream"]
    assert rows[1]["spec"]["backend"] == "openvino" and rows[1]["spec"]["model"].endswith("test_cnn-fft-int8.xml")
    assert float(rows[1]["int8 max diff"]) <= 0.05 and rows[1]["summary"] == "1 files, 6 windows, 0 skipped"


@pytest.mark.integration
def test_benchmark_runs_each_configuration_and_counts_detections(bench, tmp_path, capsys):
    pytest.importorskip("openvino")
    out = tmp_path / "speed"
    code = bench.main(["--out", str(out), "--minutes", "0.25", "--models", "test_cnn", "--backends", "onnx,openvino", "--streams", "1,2",
                       "--stft", "fft,dft", "--frontends", "host,graph", "--num-classes", "5", "--threads", "1", "--skip-birdnet",
                       "--skip-memory", "--repeat", "2", "--detections", "4"])  # fmt: skip
    assert code == 0
    result = json.loads((out / "inference_speed.json").read_text())
    rows = result["rows"]
    assert [r["backend"] for r in rows] == ["onnx, host STFT", "onnx, stft fft", "openvino, host STFT, 1 stream", "openvino, host STFT, 2 streams",
                                            "openvino, stft fft, 2 streams", "openvino, stft dft, 1 stream"]  # fmt: skip
    assert all(r["summary"] == "1 files, 3 windows, 0 skipped" for r in rows)  # 15 s -> three 5-s windows
    assert all(r["detections"] == 4 for r in rows)  # calibrated: 4 of the 15 (window, species) pairs pass 0.1, in every backend
    assert all(r["run_s"] > 0 and r["peak_rss_mb"] > 50 for r in rows)
    assert all(len(r["rounds"]) == 2 and r["run_s"] in r["rounds"] for r in rows)  # two rounds, the row is one of them
    printed = capsys.readouterr().out
    assert "| birdcall test_cnn | openvino, stft dft, 1 stream |" in printed


@pytest.mark.integration
def test_memory_check_reports_median_peaks_of_each_file_over_rounds(bench, tmp_path, capsys):
    out = tmp_path / "speed"
    code = bench.main(["--out", str(out), "--minutes", "0.25", "--long-minutes", "0.5", "--models", "test_cnn", "--backends", "onnx",
                       "--frontends", "host", "--num-classes", "5", "--threads", "1", "--skip-birdnet", "--repeat", "3"])  # fmt: skip
    assert code == 0
    memory = json.loads((out / "inference_speed.json").read_text())["memory"]
    assert memory["backend"] == "onnx, host STFT" and [r["file"] for r in memory["runs"]] == ["0 min", "0 min"]
    assert len(memory["round_ratios"]) == 3
    for run in memory["runs"]:
        peaks = [float(x) for x in run["peak RSS per round (MB)"].split(", ")]
        assert len(peaks) == 3 and round(run["peak RSS (MB)"]) == round(sorted(peaks)[1])  # the median round
    short, long = (r["peak RSS (MB)"] for r in memory["runs"])
    assert memory["ratio"] == pytest.approx(long / short)
    assert memory["verdict"] == ("meets" if memory["ratio"] <= 1.10 else "misses")
    assert (out / "soundscape_long.ogg").is_file() and "median of 3 rounds" in capsys.readouterr().out
