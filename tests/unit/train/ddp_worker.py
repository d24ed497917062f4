"""Run by torchrun in tests/unit/train/test_ddp.py: each rank trains, then writes its final weights."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from birdcall.data import read_clip_table
from birdcall.features import FeatureConfig
from birdcall.train import TrainConfig, fit

data_dir, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
config = TrainConfig(
    model="test_cnn", features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0),
    epochs=2, batch_size=2, optim={"lr": 3e-3}, threads=1, data={"val_fraction": 0.3},
)
result = fit(read_clip_table(data_dir), config, run_dir, show_progress=False)
rank = torch.distributed.get_rank()
save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(run_dir.parent / f"rank{rank}.safetensors"))
torch.distributed.destroy_process_group()
