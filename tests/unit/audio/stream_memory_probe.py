"""Subprocess helper for ``test_io.py``: stream one file and report memory use as one JSON line on stdout.

Run as ``python stream_memory_probe.py <path> <chunk_duration>``. A fresh interpreter keeps pytest and the
test that wrote the file out of the figures. "start" is taken after the imports and the first chunk, when
the decoder, the resampler and one chunk buffer exist; "end" after the whole file has been streamed.

Peak RSS: on Linux the kernel's high-water mark (VmHWM) is reset at "start" through
``/proc/self/clear_refs``, so transients from importing (pandas, torch, ...) do not raise the baseline and
hide growth. Where that is not possible, ``ru_maxrss`` (never reset) is used instead.
"""

from __future__ import annotations

import json
import math
import resource
import sys


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS to the current RSS
        return _hwm_mib() is not None
    except OSError:
        return False


def _hwm_mib() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(path: str, chunk_duration: float) -> None:
    import numpy as np
    import psutil

    from birdcall.audio import stream

    process = psutil.Process()
    after_imports = process.memory_info().rss / 2**20
    chunks = stream(path, chunk_duration=chunk_duration)
    first = next(chunks)
    lengths, rms, dtypes = [], [], set()

    def record(chunk: np.ndarray) -> None:
        lengths.append(len(chunk))
        rms.append(math.sqrt(float(np.dot(chunk, chunk)) / len(chunk)))  # no temporary array
        dtypes.add(str(chunk.dtype))

    record(first)
    del first  # like a consumer that is done with each chunk
    reset = _reset_peak()
    peak = _hwm_mib if reset else _maxrss_mib
    start_peak, start_rss = peak(), process.memory_info().rss / 2**20
    for chunk in chunks:
        record(chunk)
    end_peak, end_rss = peak(), process.memory_info().rss / 2**20
    print(
        json.dumps(
            {
                "peak_source": "VmHWM (reset at start)" if reset else "ru_maxrss",
                "after_imports_rss_mib": after_imports,
                "start_peak_mib": start_peak,
                "end_peak_mib": end_peak,
                "start_rss_mib": start_rss,
                "end_rss_mib": end_rss,
                "lengths": lengths,
                "min_rms": min(rms),
                "max_rms": max(rms),
                "dtypes": sorted(dtypes),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
