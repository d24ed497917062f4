import numpy as np, torch, onnxruntime as ort, time
torch.set_num_threads(1); torch.set_num_interop_threads(1)
xs=np.load("real_inputs.npy"); R=np.load("real_ref.npz")
def rep(name,a,b):
    d=np.abs(a-b); print(f"{name}: max abs {d.max():.3g}, max rel {(d/(np.abs(b)+1e-6)).max():.3g}, max abs/|ref|max {d.max()/np.abs(b).max():.3g}", flush=True)
so=ort.SessionOptions(); so.intra_op_num_threads=1; so.inter_op_num_threads=1
fs=ort.InferenceSession("birdnet_full.onnx", so, providers=["CPUExecutionProvider"])
L=np.array([fs.run(None,{"fe_INPUT":x[None]})[0][0] for x in xs]); E=np.array([fs.run(None,{"fe_INPUT":x[None]})[1][0] for x in xs])
rep("REAL ORT logits",L,R["logits"]); rep("REAL ORT emb",E,R["emb"])
print("top5 same:", all((np.argsort(-a)[:5]==np.argsort(-b)[:5]).all() for a,b in zip(L,R["logits"])))
import frontend, onnx2torch
m=torch.load("birdnet_torch_full.pt", weights_only=False).eval()
with torch.no_grad(): l,e=m(torch.from_numpy(xs))
rep("REAL torch(fft) logits",l.numpy(),R["logits"]); rep("REAL torch(fft) emb",e.numpy(),R["emb"])
ts=[]
for r in range(20):
    x=xs[r%3][None]; t=time.perf_counter(); fs.run(None,{"fe_INPUT":x}); ts.append(time.perf_counter()-t)
print("TIMING ORT full median ms: %.1f"%(1000*np.median(ts)))
with torch.no_grad():
    ts=[]
    for r in range(20):
        x=torch.from_numpy(xs[r%3][None]); t=time.perf_counter(); m(x); ts.append(time.perf_counter()-t)
print("TIMING torch full (fft frontend) median ms: %.1f"%(1000*np.median(ts)))
