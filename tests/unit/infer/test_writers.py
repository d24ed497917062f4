from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from birdcall.audio import write_audio
from birdcall.errors import ParameterError
from birdcall.infer import (
    empty_detections,
    to_audacity,
    to_raven,
    to_submission,
    write_audacity,
    write_detections_csv,
    write_detections_parquet,
    write_raven,
    write_submission,
)


def test_submission_row_ids_and_columns(tmp_path):
    index = pd.MultiIndex.from_tuples(
        [("/x/site_A.ogg", 0.0, 5.0), ("/x/site_A.ogg", 5.0, 10.0), ("/y/B.flac", 0.0, 5.0)], names=["file", "start_time", "end_time"]
    )
    scores = pd.DataFrame(np.array([[0.1, 0.9], [0.2, 0.8], [0.5, 0.25]]), index=index, columns=["sp1", "sp2"])
    sub = to_submission(scores)
    assert sub.columns.tolist() == ["row_id", "sp1", "sp2"]
    assert sub["row_id"].tolist() == ["site_A_5", "site_A_10", "B_5"]
    path = write_submission(scores, tmp_path / "submission.csv")
    back = pd.read_csv(path)
    np.testing.assert_allclose(back[["sp1", "sp2"]].to_numpy(), scores.to_numpy(), rtol=1e-6)


# ------------------------------------------------------------------------------------------------ detections

A, B = "/rec/a.wav", "/rec/b.wav"
CSV_HEADER = "file,start_time,end_time,code,scientific_name,common_name,confidence\n"
RAVEN_HEADER = (
    "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tCommon Name\tSpecies Code\tConfidence"
)


def table(rows):
    """Detection table from ``(file, start, end, code, scientific, common, confidence)`` tuples."""
    columns = ["file", "start_time", "end_time", "code", "scientific_name", "common_name", "confidence"]
    dtypes = {"start_time": "float64", "end_time": "float64", "confidence": "float32"}
    return pd.DataFrame(rows, columns=columns).astype({c: dtypes.get(c, "str") for c in columns})


@pytest.fixture
def detections():
    return table(
        [
            (A, 0.0, 5.0, "fricoe", "Fringilla coelebs", "Common Chaffinch", 0.625),
            (A, 0.0, 5.0, "turmer", "Turdus merula", "Eurasian Blackbird", 0.375),
            (B, 0.0, 5.0, "turmer", "Turdus merula", "Eurasian Blackbird", 0.875),
            (B, 5.0, 10.0, "erirub", "Erithacus rubecula", "European Robin", 0.75),
        ]
    )


def test_csv_round_trip(tmp_path, detections):
    path = write_detections_csv(detections, tmp_path / "out" / "detections.csv")
    assert path == tmp_path / "out" / "detections.csv"
    text = path.read_text()
    assert text.startswith(CSV_HEADER)
    assert text.splitlines()[1] == "/rec/a.wav,0.0,5.0,fricoe,Fringilla coelebs,Common Chaffinch,0.625"
    back = pd.read_csv(path, dtype={"confidence": np.float32})
    pd.testing.assert_frame_equal(back, detections)


def test_parquet_round_trip_keeps_dtypes(tmp_path, detections):
    path = write_detections_parquet(detections, tmp_path / "detections.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, detections)  # exact values and dtypes (str, float64, float32)
    schema = pq.read_schema(path)
    assert [(f.name, f.type) for f in schema] == [
        ("file", pa.string()),
        ("start_time", pa.float64()),
        ("end_time", pa.float64()),
        ("code", pa.string()),
        ("scientific_name", pa.string()),
        ("common_name", pa.string()),
        ("confidence", pa.float32()),
    ]


def test_raven_single_file_table(tmp_path, detections):
    one = detections[detections["file"] == B]
    path = write_raven(one, tmp_path / "b.selections.txt", high_freq=14000)
    assert path.read_text() == (
        RAVEN_HEADER + "\n"
        "1\tSpectrogram 1\t1\t0.0\t5.0\t0.0\t14000.0\tEurasian Blackbird\tturmer\t0.8750\n"
        "2\tSpectrogram 1\t1\t5.0\t10.0\t0.0\t14000.0\tEuropean Robin\terirub\t0.7500\n"
    )


def test_raven_frame_columns_and_frequencies(detections):
    raven = to_raven(detections[detections["file"] == A], low_freq=150.0)
    assert raven.columns.tolist() == RAVEN_HEADER.split("\t")
    assert raven["Selection"].tolist() == [1, 2]
    assert raven["View"].tolist() == ["Spectrogram 1"] * 2
    assert raven["Channel"].tolist() == [1, 1]
    assert raven["Low Freq (Hz)"].tolist() == [150.0, 150.0]
    assert raven["High Freq (Hz)"].tolist() == [15000.0, 15000.0]  # no high_freq given: the default
    assert raven["Confidence"].tolist() == [0.625, 0.375]


def test_raven_combined_table_counts_time_over_the_file_sequence(tmp_path, detections):
    path = write_raven(detections, tmp_path / "combined.txt", durations={A: 7.5, B: 10.0})
    lines = path.read_text().splitlines()
    assert lines == [
        RAVEN_HEADER + "\tBegin Path\tFile Offset (s)",
        "1\tSpectrogram 1\t1\t0.0\t5.0\t0.0\t15000.0\tCommon Chaffinch\tfricoe\t0.6250\t/rec/a.wav\t0.0",
        "2\tSpectrogram 1\t1\t0.0\t5.0\t0.0\t15000.0\tEurasian Blackbird\tturmer\t0.3750\t/rec/a.wav\t0.0",
        "3\tSpectrogram 1\t1\t7.5\t12.5\t0.0\t15000.0\tEurasian Blackbird\tturmer\t0.8750\t/rec/b.wav\t0.0",
        "4\tSpectrogram 1\t1\t12.5\t17.5\t0.0\t15000.0\tEuropean Robin\terirub\t0.7500\t/rec/b.wav\t5.0",
    ]


def test_raven_sequence_follows_durations_and_counts_silent_files(detections):
    raven = to_raven(detections, durations={B: 0.1, "/rec/silent.wav": 0.2, A: 60.0})
    assert raven["Begin Path"].tolist() == [B, B, A, A]  # b first, as in durations
    assert raven["Selection"].tolist() == [1, 2, 3, 4]
    assert raven["Begin Time (s)"].tolist() == [0.0, 5.0, 0.3, 0.3]  # 0.1 + 0.2 (rounded, not 0.30000000000000004)
    assert raven["End Time (s)"].tolist() == [5.0, 10.0, 5.3, 5.3]
    assert raven["File Offset (s)"].tolist() == [0.0, 5.0, 0.0, 0.0]


def test_raven_combined_reads_durations_from_the_audio_headers(tmp_path, detections):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    write_audio(a, np.zeros(24_000, dtype=np.float32), 8000)  # 3 s
    write_audio(b, np.zeros(8000, dtype=np.float32), 8000)
    paths = detections.assign(file=detections["file"].map({A: str(a), B: str(b)}).astype("str"))
    raven = to_raven(paths)
    assert raven["Begin Path"].tolist() == [str(a), str(a), str(b), str(b)]
    assert raven["Begin Time (s)"].tolist() == [0.0, 0.0, 3.0, 8.0]


def test_raven_checks_its_arguments(detections):
    with pytest.raises(ParameterError, match="2 files"):
        to_raven(detections, combined=False)
    with pytest.raises(ParameterError, match="lacks file"):
        to_raven(detections, durations={A: 7.5})
    with pytest.raises(ParameterError, match="low_freq"):
        to_raven(detections[detections["file"] == A], low_freq=16000.0)


def test_audacity_lines(tmp_path, detections):
    path = write_audacity(detections[detections["file"] == B], tmp_path / "b.labels.txt")
    assert path.read_bytes() == (
        b"0.000000\t5.000000\tturmer (Eurasian Blackbird) 0.8750\n5.000000\t10.000000\terirub (European Robin) 0.7500\n"
    )


def test_audacity_without_common_names_and_odd_times():
    one = table([("x.wav", 1.0 / 3.0, 10.5, "turmer", "", "", 0.5)])
    assert to_audacity(one) == "0.333333\t10.500000\tturmer 0.5000\n"


def test_audacity_refuses_several_files(detections):
    with pytest.raises(ParameterError, match="2 files"):
        to_audacity(detections)


def test_writers_reject_tables_without_detection_columns(tmp_path, detections):
    with pytest.raises(ParameterError, match="confidence"):
        write_detections_csv(detections.drop(columns="confidence"), tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_empty_tables_write_valid_files(tmp_path):
    empty = empty_detections()
    assert write_detections_csv(empty, tmp_path / "d.csv").read_text() == CSV_HEADER
    assert pd.read_csv(tmp_path / "d.csv").columns.tolist() == CSV_HEADER.strip().split(",")
    back = pd.read_parquet(write_detections_parquet(empty, tmp_path / "d.parquet"))
    pd.testing.assert_frame_equal(back, empty)
    assert pq.read_schema(tmp_path / "d.parquet").field("file").type == pa.string()  # not the null type
    assert write_raven(empty, tmp_path / "r.txt").read_text() == RAVEN_HEADER + "\n"
    assert write_raven(empty, tmp_path / "rc.txt", combined=True).read_text() == RAVEN_HEADER + "\tBegin Path\tFile Offset (s)\n"
    assert write_audacity(empty, tmp_path / "l.txt").read_bytes() == b""


# --------------------------------------------------------------------------------------------------- atomicity


def _tear(path) -> None:
    with open(path, "w") as handle:
        handle.write("partial")
    raise OSError("disk full")


WRITERS = {
    "csv": (write_detections_csv, pd.DataFrame, "to_csv"),
    "parquet": (write_detections_parquet, pd.DataFrame, "to_parquet"),
    "raven": (write_raven, pd.DataFrame, "to_csv"),
    "audacity": (write_audacity, Path, "write_text"),
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_failing_write_keeps_the_previous_file_and_leaves_no_partial_one(tmp_path, monkeypatch, detections, fmt):
    write, owner, method = WRITERS[fmt]
    one = detections[detections["file"] == A]
    target = tmp_path / f"old.{fmt}"
    write(one, target)
    before = target.read_bytes()
    fresh = tmp_path / f"new.{fmt}"

    def broken(self, path, *args, **kwargs):
        _tear(path if owner is pd.DataFrame else self)

    monkeypatch.setattr(owner, method, broken)
    for dest in (target, fresh):
        with pytest.raises(OSError, match="disk full"):
            write(one, dest)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no new file, no temporary left
