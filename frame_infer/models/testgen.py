"""Deterministic ONNX test models, built offline (model weights cannot be downloaded here).

``ferplus``: the FER+ emotion architecture (input ``Input3``, 1x64x64 grayscale in 0..255,
8 logits), written the way the ONNX model zoo file is: IR version 3, opset 7, every
initializer also listed as a graph input.

``rgb``: a small 3-channel classifier with BatchNorm and another input name and a
non-square size, written as a modern ONNX file (initializers NOT in ``graph.input``),
so the service proves it is not tied to one model.

Weights come from a seeded generator, scaled so that logits stay in a range where
softmax is not saturated: different inputs give visibly different probabilities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_handler.config import FERPLUS_LABELS
from ..errors import InputError
KINDS = ("ferplus", "rgb")


class _GraphBuilder:
    """Accumulates nodes and seeded initializers for one ONNX graph."""

    def __init__(self, seed: int):
        self.rng = np.random.RandomState(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: tuple[int, ...], std: float) -> str:
        array = (self.rng.standard_normal(shape) * std).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv(self, x: str, name: str, c_in: int, c_out: int, gain: float = 1.0) -> str:
        std = gain * np.sqrt(2.0 / (c_in * 9))
        w = self.weight(f"{name}_W", (c_out, c_in, 3, 3), std)
        b = self.weight(f"{name}_B", (c_out,), 0.01)
        self.nodes.append(helper.make_node("Conv", [x, w, b], [name], kernel_shape=[3, 3],
                                           pads=[1, 1, 1, 1], strides=[1, 1], name=name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def relu(self, x: str) -> str:
        return self.op("Relu", [x], f"{x}_relu")

    def pool(self, x: str) -> str:
        return self.op("MaxPool", [x], f"{x}_pool", kernel_shape=[2, 2], strides=[2, 2])

    def dense(self, x: str, name: str, n_in: int, n_out: int, gain: float = 1.0) -> str:
        w = self.weight(f"{name}_W", (n_out, n_in), gain * np.sqrt(2.0 / n_in))
        b = self.weight(f"{name}_B", (n_out,), 0.01)
        return self.op("Gemm", [x, w, b], name, transB=1)


def build_ferplus(seed: int = 0) -> onnx.ModelProto:
    """The FER+ architecture: conv 64,64 / 128,128 / 256x3 / 256x3, 2x2 max-pools, FC 1024,1024,8."""
    g = _GraphBuilder(seed)
    x = "Input3"
    # The input is raw 0..255 grayscale; the first gain brings it to unit scale.
    stages = [(1, [64, 64]), (64, [128, 128]), (128, [256, 256, 256]), (256, [256, 256, 256])]
    for s, (c_in, widths) in enumerate(stages):
        for i, c_out in enumerate(widths):
            gain = 1.0 / 128.0 if (s, i) == (0, 0) else 1.0
            x = g.relu(g.conv(x, f"conv{s + 1}_{i + 1}", c_in, c_out, gain))
            c_in = c_out
        x = g.pool(x)
    x = g.op("Flatten", [x], "flatten", axis=1)
    x = g.relu(g.dense(x, "fc5", 256 * 4 * 4, 1024))
    x = g.relu(g.dense(x, "fc6", 1024, 1024))
    logits = g.dense(x, "fc7", 1024, len(FERPLUS_LABELS), gain=1.0)
    # Like the zoo file: IR 3, opset 7, initializers also declared as graph inputs.
    inputs = [helper.make_tensor_value_info("Input3", TensorProto.FLOAT, ["N", 1, 64, 64])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
               for t in g.initializers]
    graph = helper.make_graph(
        g.nodes, "ferplus_test", inputs,
        [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["N", len(FERPLUS_LABELS)])],
        initializer=g.initializers)
    model = helper.make_model(graph, producer_name="frame-infer-modelgen",
                              opset_imports=[helper.make_opsetid("", 7)])
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


RGB_INPUT = ("image", 3, 48, 40)
RGB_CLASSES = 5


def build_rgb(seed: int = 1) -> onnx.ModelProto:
    """A small modern-format RGB classifier: conv+BN+relu x2, global pool, dense to 5 classes."""
    g = _GraphBuilder(seed)
    name, c, h, w = RGB_INPUT
    x = name
    for i, (c_in, c_out) in enumerate([(c, 16), (16, 32)]):
        x = g.conv(x, f"conv{i + 1}", c_in, c_out)
        bn = f"bn{i + 1}"
        params = [g.const(f"{bn}_scale", 1.0 + 0.1 * g.rng.standard_normal(c_out)),
                  g.const(f"{bn}_bias", 0.1 * g.rng.standard_normal(c_out)),
                  g.const(f"{bn}_mean", 0.1 * g.rng.standard_normal(c_out)),
                  g.const(f"{bn}_var", 0.5 + g.rng.random_sample(c_out))]
        x = g.relu(g.op("BatchNormalization", [x, *params], bn, epsilon=1e-5))
        x = g.pool(x)
    x = g.op("GlobalAveragePool", [x], "gap")
    x = g.op("Flatten", [x], "flatten", axis=1)
    logits = g.dense(x, "fc", 32, RGB_CLASSES, gain=0.5)
    graph = helper.make_graph(
        g.nodes, "rgb_test",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", c, h, w])],
        [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["batch", RGB_CLASSES])],
        initializer=g.initializers)
    model = helper.make_model(graph, producer_name="frame-infer-modelgen",
                              opset_imports=[helper.make_opsetid("", 11)])
    onnx.checker.check_model(model)
    return model


def write_test_model(kind: str, out: Path | str) -> Path:
    """Build the ``kind`` test model and save it to ``out`` (parent folders are created)."""
    builders = {"ferplus": build_ferplus, "rgb": build_rgb}
    if kind not in builders:
        raise InputError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(builders[kind](), str(out))
    return out
