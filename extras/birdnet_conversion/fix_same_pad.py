"""Replace auto_pad=SAME_UPPER/SAME_LOWER in backbone.onnx by explicit pads (onnx2torch can't handle auto_pad).
Uses fixed input shape (N,96,511,2) -> only valid for 3-s (144000-sample) inputs, which is BirdNET's fixed input."""
import onnx, math, collections
from onnx import helper, shape_inference
m=onnx.load("backbone.onnx")
inp=m.graph.input[0]
dims=inp.type.tensor_type.shape.dim
for d,v in zip(dims,[1,96,511,2]):
    d.ClearField("dim_param"); d.dim_value=v
m=shape_inference.infer_shapes(m)
shapes={vi.name:[d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in list(m.graph.value_info)+list(m.graph.input)}
inits={i.name:i for i in m.graph.initializer}
cnt=collections.Counter()
for n in m.graph.node:
    attrs={a.name:a for a in n.attribute}
    if "auto_pad" not in attrs: continue
    ap=attrs["auto_pad"].s.decode()
    if ap in ("NOTSET","VALID"):
        if ap=="VALID": n.attribute.remove(attrs["auto_pad"]); 
        continue
    x=shapes[n.input[0]]; sp=x[2:]
    if "kernel_shape" in attrs: k=list(attrs["kernel_shape"].ints)
    else: k=list(inits[n.input[1]].dims[2:])
    s=list(attrs["strides"].ints) if "strides" in attrs else [1]*len(sp)
    dl=list(attrs["dilations"].ints) if "dilations" in attrs else [1]*len(sp)
    b=[];e=[]
    for i_,k_,s_,d_ in zip(sp,k,s,dl):
        o=math.ceil(i_/s_); tot=max((o-1)*s_+(k_-1)*d_+1-i_,0)
        lo=tot//2 if ap=="SAME_UPPER" else tot-tot//2
        b.append(lo); e.append(tot-lo)
    n.attribute.remove(attrs["auto_pad"]); n.attribute.append(helper.make_attribute("pads",b+e))
    cnt[(n.op_type, "sym" if b==e else "asym")]+=1
print("replaced:",dict(cnt))
# keep batch dynamic again
m.graph.input[0].type.tensor_type.shape.dim[0].ClearField("dim_value"); m.graph.input[0].type.tensor_type.shape.dim[0].dim_param="N"
del m.graph.value_info[:]
onnx.checker.check_model(m); onnx.save(m,"backbone_explicitpad.onnx")
