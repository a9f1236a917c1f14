"""The Keras -> ONNX converter on a small Keras 2 file written here with h5py: every layer
kind and padding case fer's model uses, checked against the layers evaluated in numpy."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from frame_infer.errors import InputError
from frame_infer.models.keras_onnx import convert, read_keras_h5, tf_same_pads

from ..helpers.keras_reference import run_keras


def layer(kind: str, name: str, inbound: list[str], **config) -> dict:
    config.setdefault("name", name)
    return {"class_name": kind, "name": name, "config": config,
            "inbound_nodes": [[[src, 0, 0, {}] for src in inbound]] if inbound else []}


def conv(name, src, filters, kernel, strides=(1, 1), padding="valid", use_bias=False,
         kind="Conv2D"):
    return layer(kind, name, [src], filters=filters, kernel_size=list(kernel),
                 strides=list(strides), padding=padding, use_bias=use_bias,
                 activation="linear", data_format="channels_last", dilation_rate=[1, 1],
                 **({"depth_multiplier": 1} if kind == "SeparableConv2D" else {}))


def bn(name, src):
    return layer("BatchNormalization", name, [src], axis=-1, epsilon=1e-3, center=True,
                 scale=True)


def pool(name, src):
    return layer("MaxPooling2D", name, [src], pool_size=[3, 3], strides=[2, 2],
                 padding="same", data_format="channels_last")


def small_model(rng) -> tuple[list[dict], dict]:
    """12x12x2 -> conv valid (10x10) -> BN -> relu -> [separable 'same' + BN -> pool
    10 -> 5 (pads 0,1)] + [1x1 stride 2 'same' conv + BN] -> Add -> pool 5 -> 3 (pads
    1,1) -> BN (not after a conv) -> conv 'same' with bias -> global average -> softmax:
    the residual blocks of fer's model, both of TF's 'same' pooling cases."""
    layers = [
        layer("InputLayer", "input_1", [], batch_input_shape=[None, 12, 12, 2]),
        conv("conv_a", "input_1", 4, (3, 3)), bn("bn_a", "conv_a"),
        layer("Activation", "relu_a", ["bn_a"], activation="relu"),
        conv("sep_b", "relu_a", 6, (3, 3), padding="same", use_bias=True,
             kind="SeparableConv2D"), bn("bn_b", "sep_b"), pool("pool_b", "bn_b"),
        conv("res_c", "relu_a", 6, (1, 1), strides=(2, 2), padding="same"),
        bn("bn_c", "res_c"),
        layer("Add", "add_d", ["pool_b", "bn_c"]), pool("pool_d", "add_d"),
        bn("bn_d", "pool_d"),
        conv("conv_e", "bn_d", 3, (3, 3), padding="same", use_bias=True),
        layer("GlobalAveragePooling2D", "gap", ["conv_e"], data_format="channels_last"),
        layer("Activation", "predictions", ["gap"], activation="softmax"),
    ]

    def normal(*shape):
        return rng.normal(0, 0.5, shape).astype(np.float32)

    def bn_params(c):
        return {"gamma": 1 + normal(c) / 4, "beta": normal(c) / 4,
                "moving_mean": normal(c) / 4,
                "moving_variance": rng.uniform(0.5, 1.5, c).astype(np.float32)}

    weights = {"conv_a": {"kernel": normal(3, 3, 2, 4)}, "bn_a": bn_params(4),
               "sep_b": {"depthwise_kernel": normal(3, 3, 4, 1),
                         "pointwise_kernel": normal(1, 1, 4, 6), "bias": normal(6)},
               "bn_b": bn_params(6), "res_c": {"kernel": normal(1, 1, 4, 6)},
               "bn_c": bn_params(6), "bn_d": bn_params(6),
               # small: the softmax must not saturate, or differences would not show
               "conv_e": {"kernel": normal(3, 3, 6, 3) / 8, "bias": normal(3) / 8}}
    return layers, weights


def write_keras_h5(path, layers, weights) -> None:
    """The layout Keras 2's ``model.save`` writes (what fer ships)."""
    import h5py

    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(
            {"class_name": "Model", "config": {"name": "m", "layers": layers}}).encode()
        root = h5.create_group("model_weights")
        for name, params in weights.items():
            group = root.create_group(name)
            names = [f"{name}_1/{key}:0" for key in params]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for key, value in zip(names, params.values()):
                group.create_dataset(key, data=value)


def onnx_run(model, x_nhwc: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x_nhwc.transpose(0, 3, 1, 2).astype(np.float32)})[0]


@pytest.mark.parametrize("size, kernel, stride, pads", [
    (60, 3, 2, (0, 1)), (30, 3, 2, (0, 1)), (15, 3, 2, (1, 1)), (8, 3, 2, (0, 1)),
    (60, 1, 2, (0, 0)), (15, 1, 2, (0, 0)), (4, 3, 1, (1, 1)), (64, 3, 1, (1, 1))])
def test_tf_same_padding_puts_the_odd_pixel_at_the_end(size, kernel, stride, pads):
    assert tf_same_pads(size, kernel, stride) == pads


def test_converted_model_matches_the_keras_layers(tmp_path):
    import h5py

    rng = np.random.RandomState(0)
    layers, weights = small_model(rng)
    write_keras_h5(tmp_path / "m.hdf5", layers, weights)
    with h5py.File(tmp_path / "m.hdf5", "r") as h5:
        read_layers, read_weights = read_keras_h5(h5)
    assert read_layers == layers
    assert {k: sorted(v) for k, v in read_weights.items()} == \
        {k: sorted(v) for k, v in weights.items()}
    model = convert(read_layers, read_weights)
    x = rng.uniform(-1, 1, (5, 12, 12, 2))
    got, expected = onnx_run(model, x), run_keras(layers, weights, x)
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert np.ptp(expected, axis=0).max() > 0.05  # inputs differ, so do the outputs
    ops = [n.op_type for n in model.graph.node]
    # Three BNs folded into their convolutions; the one after Add is x * s + b.
    assert "BatchNormalization" not in ops and ops.count("Mul") == 1
    pads = {n.name: list(next(a.ints for a in n.attribute if a.name == "pads"))
            for n in model.graph.node if n.op_type == "MaxPool"}
    assert pads == {"pool_b": [0, 0, 1, 1], "pool_d": [1, 1, 1, 1]}
    assert [i.name for i in model.graph.input] == ["input_1"]  # no initializers listed
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 2, 12, 12]


def test_unsupported_layers_and_options_are_named():
    rng = np.random.RandomState(1)
    layers, weights = small_model(rng)
    dense = layers[:4] + [layer("Flatten", "flatten_1", ["relu_a"])]
    with pytest.raises(InputError, match="flatten_1: Keras layer Flatten is not supported"):
        convert(dense, weights)
    dilated = [dict(entry, config=dict(entry["config"])) for entry in layers]
    dilated[1]["config"]["dilation_rate"] = [2, 2]
    with pytest.raises(InputError, match=r"conv_a \(Conv2D\): dilation_rate=\[2, 2\]"):
        convert(dilated, weights)
