"""``make bench-peers``: the project's served path against the Python servers a user would
pick instead (LitServe, Ray Serve, BentoML, FastAPI + uvicorn), each with the same ONNX
file and the project's preprocessing (:mod:`benchmarks.peers.core`), one load generator
(:mod:`benchmarks.peers.load`), every answer checked. ``python -m benchmarks.peers``.
"""
