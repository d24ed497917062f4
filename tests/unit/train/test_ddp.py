"""Scale-out: the same fit() under torchrun with 2 CPU processes (gloo) keeps the ranks in sync."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_two_process_ddp_ranks_stay_in_sync(tiny_data, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(worker), str(tiny_data), str(tmp_path / "run")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=key)  # DDP all-reduces gradients
    saved = load_file(tmp_path / "run" / "last.safetensors")  # what rank 0 wrote is what both ranks hold
    for key in rank0:
        torch.testing.assert_close(saved[key], rank0[key], rtol=0, atol=0, msg=key)
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2]  # written once, by rank 0
