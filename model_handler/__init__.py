"""MMS custom service for batched ONNX image classification (MXNet or onnxruntime)."""
