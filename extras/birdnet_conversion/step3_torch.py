import numpy as np, torch, onnx, time, collections
torch.set_num_threads(1); torch.set_num_interop_threads(1)
from onnx2torch import convert
from frontend import BirdNETFrontend, BirdNETTorch
xs=np.load("inputs.npy")[:,0]; R=np.load("ref_nodelegate.npz"); refL=R["logits"][:,0]; refE=R["emb"][:,0]; refC=R["concat"][:,0]
def rep(name,a,b):
    d=np.abs(a-b); print(f"{name}: max abs {d.max():.3g}, max rel {(d/(np.abs(b)+1e-6)).max():.3g}, max abs/|ref|max {d.max()/np.abs(b).max():.3g}", flush=True)
bm=onnx.load("backbone_explicitpad.onnx")
print("backbone ONNX ops:", dict(collections.Counter(n.op_type for n in bm.graph.node)))
try:
    tb=convert(bm).eval()
except Exception as e:
    import traceback; traceback.print_exc(); raise
print("torch module types:", dict(collections.Counter(type(m).__name__ for m in tb.modules())))
with torch.no_grad():
    L=[];E=[]
    for c in refC:
        l,e=tb(torch.from_numpy(c[None])); L.append(l[0].numpy()); E.append(e[0].numpy())
rep("torch backbone(LiteRT concat) logits", np.array(L), refL); rep("torch backbone(LiteRT concat) emb", np.array(E), refE)
for mode in ["fft","dft"]:
    m=BirdNETTorch(tb,mode).eval()
    with torch.no_grad():
        L,E=m(torch.from_numpy(xs)); L=L.numpy(); E=E.numpy()
    rep(f"torch full ({mode} frontend, batch=5) logits", L, refL); rep(f"torch full ({mode}) emb", E, refE)
    print("top1 agree:", (L.argmax(1)==refL.argmax(1)).all())
m=BirdNETTorch(tb,"fft")
torch.save(m, "birdnet_torch_full.pt")
# gradient check (fine-tuning feasibility)
m.train(); x=torch.from_numpy(xs[:2]).requires_grad_(False)
l,e=m(x); l.sum().backward()
ng=sum(p.grad is not None and p.grad.abs().sum().item()>0 for p in m.parameters()); npar=sum(1 for _ in m.parameters())
print(f"backward OK: {ng}/{npar} parameter tensors got nonzero grads; total params {sum(p.numel() for p in m.parameters())/1e6:.2f}M")
m.eval()
for mode in ["fft","dft"]:
    mm=BirdNETTorch(tb,mode).eval(); ts=[]
    with torch.no_grad():
        for r in range(20):
            x=torch.from_numpy(xs[r%5][None]); t=time.perf_counter(); mm(x); ts.append(time.perf_counter()-t)
    print(f"torch full ({mode} frontend) median ms/3s-segment (1 thread): %.1f"%(1000*np.median(ts)))
with torch.no_grad():
    ts=[]
    for r in range(20):
        c=torch.from_numpy(refC[r%5][None]); t=time.perf_counter(); tb(c); ts.append(time.perf_counter()-t)
print("torch backbone-only median ms: %.1f"%(1000*np.median(ts)))
