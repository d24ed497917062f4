"""Re-implementation of BirdNET V2.4's built-in spectrogram front end (MEL_SPEC1/MEL_SPEC2 layers),
derived from the TFLite graph ops 0-92. Constants come from frontend_consts.npz (dumped from the .tflite by dump_consts.py).
NOTE: the TFLite graph CASTs the complex STFT to float32, i.e. it keeps only the REAL part (verified: cast==real exactly)."""
import numpy as np, torch, torch.nn as nn

C = np.load("./frontend_consts.npz")
BRANCHES = [  # frame_length, frame_step, window, mel matrix (96, nbins), pow exponent
    (2048, 278, C["129"], C["166"], float(C["165"])),
    (1024, 280, C["126"], C["168"], float(C["167"])),
]

def frontend_numpy(x):  # x: (B, 144000) -> (B, 96, 511, 2) NHWC, == tensor model/concatenate/concat
    x = x.astype(np.float64)
    x = x - x.min(1, keepdims=True); x = x / (x.max(1, keepdims=True) + 1e-6); x = (x - 0.5) * 2.0
    outs = []
    for L, S, win, mel, p in BRANCHES:
        n = (x.shape[1] - L) // S + 1
        idx = np.arange(n)[:, None] * S + np.arange(L)[None, :]
        fr = x[:, idx] * win.astype(np.float64)
        re = np.fft.rfft(fr, n=L, axis=-1).real
        m = re @ mel.T.astype(np.float64)
        m = (m * m) ** p
        outs.append(np.transpose(m[:, :, ::-1], (0, 2, 1)))
    return np.stack(outs, -1).astype(np.float32)

class BirdNETFrontend(nn.Module):
    """(B,144000) float32 -> (B,96,511,2) (NHWC, same as TFLite 'model/concatenate/concat').
    mode='fft': torch.fft.rfft(...).real (fast, differentiable); mode='dft': real DFT as matmul with
    window*cos matrix (exports to plain ONNX Gather/MatMul ops)."""
    def __init__(self, mode="fft", n_samples=144000):
        super().__init__()
        self.mode = mode
        self.pows = []
        for i, (L, S, win, mel, p) in enumerate(BRANCHES):
            n = (n_samples - L) // S + 1
            idx = torch.arange(n)[:, None] * S + torch.arange(L)[None, :]
            self.register_buffer(f"idx{i}", idx.reshape(-1), persistent=False)
            self.register_buffer(f"win{i}", torch.tensor(win, dtype=torch.float32))
            k = np.arange(L // 2 + 1); t = np.arange(L)
            cosm = (win.astype(np.float64)[:, None] * np.cos(2 * np.pi * np.outer(t, k) / L)).astype(np.float32)
            self.register_buffer(f"cos{i}", torch.tensor(cosm))                  # (L, L/2+1)
            self.register_buffer(f"melT{i}", torch.tensor(mel.T.copy(), dtype=torch.float32))  # (nbins, 96)
            self.pows.append(p)
            setattr(self, f"shape{i}", (n, L))
    def forward(self, x):
        mn = x.min(dim=1, keepdim=True).values
        x = x - mn
        x = x / (x.max(dim=1, keepdim=True).values + 1e-6)
        x = (x - 0.5) * 2.0
        outs = []
        for i in range(2):
            n, L = getattr(self, f"shape{i}")
            fr = torch.index_select(x, 1, getattr(self, f"idx{i}")).reshape(x.shape[0], n, L)
            if self.mode == "fft":
                re = torch.fft.rfft(fr * getattr(self, f"win{i}"), n=L, dim=-1).real
            else:
                re = fr @ getattr(self, f"cos{i}")
            m = re @ getattr(self, f"melT{i}")
            m = torch.pow(m * m, self.pows[i])
            outs.append(torch.flip(m, dims=[2]).transpose(1, 2))
        return torch.stack(outs, dim=-1)

class BirdNETTorch(nn.Module):
    """Full model: frontend + onnx2torch-converted backbone (returns logits (B,6522), embedding (B,1024))."""
    def __init__(self, backbone, mode="fft"):
        super().__init__(); self.frontend = BirdNETFrontend(mode); self.backbone = backbone
    def forward(self, x):
        logits, emb = self.backbone(self.frontend(x)); return logits, emb
