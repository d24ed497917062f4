"""Stand-in for ``tflite_runtime`` backed by ``ai_edge_litert`` (see ../pyproject.toml)."""
