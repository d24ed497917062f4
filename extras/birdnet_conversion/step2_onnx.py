import numpy as np, torch, onnx, onnxruntime as ort, time
torch.set_num_threads(1)
from frontend import BirdNETFrontend
xs=np.load("inputs.npy")[:,0]; R=np.load("ref_nodelegate.npz"); refL=R["logits"][:,0]; refE=R["emb"][:,0]; refC=R["concat"][:,0]
refX=np.load("ref_xnnpack_logits.npy")[:,0]
def rep(name,a,b):
    d=np.abs(a-b); print(f"{name}: max abs {d.max():.3g}, max rel {(d/(np.abs(b)+1e-6)).max():.3g}, max abs/|ref|max {d.max()/np.abs(b).max():.3g}", flush=True)
so=ort.SessionOptions(); so.intra_op_num_threads=1; so.inter_op_num_threads=1
bb=ort.InferenceSession("backbone.onnx", so, providers=["CPUExecutionProvider"])
print([ (i.name,i.shape) for i in bb.get_inputs()], [(o.name,o.shape) for o in bb.get_outputs()])
# (a) backbone only, fed with LiteRT's own spectrogram tensor
L=[];E=[]
for c in refC:
    l,e=bb.run(None,{"model/concatenate/concat":c[None]}); L.append(l[0]); E.append(e[0])
rep("ORT backbone(LiteRT concat) logits", np.array(L), refL); rep("ORT backbone(LiteRT concat) emb", np.array(E), refE)
# (b) export torch frontend (DFT-as-matmul) to ONNX and merge with backbone -> full model
fe=BirdNETFrontend("dft").eval()
torch.onnx.export(fe, torch.from_numpy(xs[:1]), "frontend.onnx", opset_version=17, input_names=["INPUT"], output_names=["spec"], dynamo=False)
fm=onnx.load("frontend.onnx"); bm=onnx.load("backbone.onnx")
print("frontend ops:", sorted(set(n.op_type for n in fm.graph.node)))
fm.ir_version=bm.ir_version
fm=onnx.compose.add_prefix(fm,"fe_")
full=onnx.compose.merge_models(fm,bm,io_map=[("fe_spec","model/concatenate/concat")])
onnx.checker.check_model(full); onnx.save(full,"birdnet_full.onnx")
print("full inputs/outputs:",[i.name for i in full.graph.input],[o.name for o in full.graph.output])
fs=ort.InferenceSession("birdnet_full.onnx", so, providers=["CPUExecutionProvider"])
L=[];E=[]
for x in xs:
    l,e=fs.run(None,{"fe_INPUT":x[None]}); L.append(l[0]); E.append(e[0])
L=np.array(L);E=np.array(E); np.savez("ort_full_out.npz",logits=L,emb=E)
rep("ORT full(frontend+backbone) logits vs LiteRT(no delegate)", L, refL); rep("ORT full emb vs LiteRT", E, refE)
rep("ORT full logits vs LiteRT(XNNPACK default)", L, refX)
rep("[noise floor] LiteRT XNNPACK vs no-delegate logits", refX, refL)
print("top1 agree:", (L.argmax(1)==refL.argmax(1)).all(), " sigmoid max abs diff: %.3g"%np.abs(1/(1+np.exp(-L))-1/(1+np.exp(-refL))).max())
ts=[]
for r in range(20):
    x=xs[r%5][None]; t=time.perf_counter(); fs.run(None,{"fe_INPUT":x}); ts.append(time.perf_counter()-t)
print("ORT full median ms/3s-segment (1 thread): %.1f"%(1000*np.median(ts)))
ts=[]
for r in range(20):
    c=refC[r%5][None]; t=time.perf_counter(); bb.run(None,{"model/concatenate/concat":c}); ts.append(time.perf_counter()-t)
print("ORT backbone-only median ms: %.1f"%(1000*np.median(ts)))
