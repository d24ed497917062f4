"""Decode producers: the background decoding thread (order, read-ahead bound, errors, closing, idle reports).
Worker processes are tested end to end in test_run.py."""

import threading

import pytest

from birdcall.infer import producers
from birdcall.infer.producers import IDLE


def test_prefetched_reports_when_the_consumer_would_wait():
    gate = threading.Event()

    def slow_events():
        assert gate.wait(10)  # nothing is produced until the consumer has seen it wait
        yield ("block", 0)

    seen = []
    for event in producers.prefetched(slow_events(), idle=IDLE):
        seen.append(event)
        gate.set()
    assert seen[0] == IDLE and ("block", 0) in seen
    events = (e for e in [("block", 0), ("block", 1)])
    assert list(producers.prefetched(events)) == [("block", 0), ("block", 1)]  # idle=None: never


def test_prefetched_keeps_order_and_reads_at_most_depth_ahead():
    produced = []
    gate = threading.Event()

    def events():
        for i in range(10):
            produced.append(i)
            yield ("block", i)

    stream_ = producers.prefetched(events(), depth=2)
    assert next(stream_) == ("block", 0)
    gate.wait(0.3)  # let the thread run ahead as far as it may
    # one taken + 2 in the queue + 1 produced and waiting to be put: never the whole stream
    assert len(produced) <= 4
    assert list(stream_) == [("block", i) for i in range(1, 10)]


def test_prefetched_reraises_the_producers_error_after_its_events():
    def events():
        yield ("start", 0)
        raise RuntimeError("decoder blew up")

    stream_ = producers.prefetched(events())
    assert next(stream_) == ("start", 0)
    with pytest.raises(RuntimeError, match="decoder blew up"):
        next(stream_)


def test_closing_prefetched_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def events():
        try:
            for i in range(1000):
                yield ("block", i)
        finally:
            closed.set()

    before = {t.name for t in threading.enumerate()}
    stream_ = producers.prefetched(events(), depth=1)
    assert next(stream_) == ("block", 0)
    stream_.close()
    assert closed.is_set()
    assert not any(t.name == "birdcall-decode" and t.is_alive() for t in threading.enumerate() if t.name not in before)


def test_a_file_gives_start_blocks_then_done_and_a_bad_file_start_then_failed(tmp_path):
    import numpy as np

    from birdcall.audio import write_audio
    from birdcall.infer.long_recording import WindowSpec
    from birdcall.infer.producers import Block, Done, Failed, Start, iter_file_events

    rate = 8000
    good = write_audio(tmp_path / "a.wav", np.full(int(2.5 * rate), 0.25, dtype=np.float32), rate, subtype="FLOAT")
    events = list(iter_file_events(3, good, WindowSpec(rate, 1.0), max_windows=2))
    assert [type(e) for e in events] == [Start, Block, Block, Done] and all(e.index == 3 for e in events)
    assert [e.block.starts.tolist() for e in events[1:3]] == [[0, rate], [2 * rate]] and events[-1].duration == 2.5
    bad = tmp_path / "b.wav"
    bad.write_text("not audio")
    start, failed = iter_file_events(4, bad, WindowSpec(rate, 1.0), max_windows=2)
    assert start == Start(4) and isinstance(failed, Failed) and failed.index == 4 and "not an audio file" in failed.reason
