import numpy as np, torch
torch.set_num_threads(1)
from frontend import frontend_numpy, BirdNETFrontend
xs=np.load("inputs.npy")[:,0]; ref=np.load("ref_nodelegate.npz")["concat"][:,0]
def rep(name,a,b):
    d=np.abs(a-b); print(f"{name}: max abs {d.max():.3g}, max rel {(d/(np.abs(b)+1e-6)).max():.3g}, ref max {np.abs(b).max():.3g}")
rep("numpy(float64) frontend vs LiteRT concat", frontend_numpy(xs), ref)
for mode in ["fft","dft"]:
    fe=BirdNETFrontend(mode).eval()
    with torch.no_grad(): y=fe(torch.from_numpy(xs)).numpy()
    rep(f"torch frontend mode={mode} vs LiteRT concat", y, ref)
