"""MXNet (the ONNX file imported and bound once) against onnxruntime, the reference engine."""
from __future__ import annotations

import numpy as np
import pytest

from model_handler.config import load_config
from model_handler.engine import MXNetEngine, OnnxRuntimeEngine, bucket_sizes, plan_chunks

from ..helpers.numeric import softmax

MAX_BATCH = 32


@pytest.fixture(scope="module")
def engines(model_files, tmp_path_factory):
    built = {}
    for kind, path in model_files.items():
        # load_config wants a folder holding exactly one .onnx file.
        folder = tmp_path_factory.mktemp(f"engine-{kind}")
        (folder / path.name).symlink_to(path)
        cfg = load_config(folder, environ={})
        built[kind] = (
            cfg,
            MXNetEngine(str(path), cfg.input_name, cfg.input_shape, MAX_BATCH, context="cpu"),
            OnnxRuntimeEngine(str(path), cfg.input_name, MAX_BATCH),
        )
    return built


@pytest.mark.parametrize("kind", ["ferplus", "rgb"])
@pytest.mark.parametrize("batch", [1, 3, 16, MAX_BATCH + 1])
def test_mxnet_matches_onnxruntime(engines, ort_reference, kind, batch):
    cfg, mx_engine, ort_engine = engines[kind]
    rng = np.random.RandomState(batch)
    # Noise around a per-image level: random but not all alike after global pooling.
    level = rng.uniform(0.1, 0.9, (batch, 1, 1, 1))
    x = np.clip(level + rng.normal(0, 0.2, (batch, *cfg.input_shape)), 0, 1)
    x = (x * 255 if kind == "ferplus" else (x - 0.45) / 0.225).astype(np.float32)
    expected = ort_reference(kind, x)
    got_mx = softmax(mx_engine.forward(x))
    got_ort = softmax(ort_engine.forward(x))
    assert got_mx.shape == (batch, len(cfg.labels))
    np.testing.assert_allclose(got_mx, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got_ort, expected, atol=1e-6, rtol=0)
    # The inputs differ, so must the outputs: the comparison is not between constants.
    if batch > 1:
        assert np.ptp(got_mx, axis=0).max() > 1e-3


def test_mxnet_binds_once_per_bucket(engines):
    """Executors exist for every bucket after initialisation; forwards create no new ones."""
    _, mx_engine, _ = engines["ferplus"]
    before = dict(mx_engine._executors)
    assert sorted(before) == list(bucket_sizes(MAX_BATCH))
    mx_engine.forward(np.zeros((MAX_BATCH * 2 + 5, 1, 64, 64), dtype=np.float32))
    assert mx_engine._executors == before
    assert all(mx_engine._executors[k] is before[k] for k in before)


def test_chunk_plan_covers_every_image_once():
    buckets = bucket_sizes(MAX_BATCH)
    for total in range(0, 3 * MAX_BATCH + 2):
        chunks = plan_chunks(total, buckets)
        covered = [i for c in chunks for i in range(c.start, c.start + c.count)]
        assert covered == list(range(total))
        assert all(c.count <= c.bucket <= MAX_BATCH and c.bucket in buckets for c in chunks)


def test_graph_rewrite_leaves_only_mkldnn_friendly_ops(model_files):
    """The importer's bare relu, zero Pads and four-op Gemms are gone after the rewrite
    (each cost layout reorders or a fused kernel: benchmarks/NOTES.md)."""
    import json

    from model_handler.engine import import_into_mxnet
    from model_handler.graph_opt import optimize

    sym, args, _ = import_into_mxnet(str(model_files["ferplus"]))
    before = [n["op"] for n in json.loads(sym.tojson())["nodes"]]
    assert {"relu", "Pad", "_linalg_gemm2"} <= set(before)
    after = [n["op"] for n in json.loads(optimize(sym, args).tojson())["nodes"]]
    assert not {"relu", "Pad", "_linalg_gemm2", "_mul_scalar", "broadcast_add"} & set(after)
    assert after.count("Activation") == before.count("relu") == 12
    assert after.count("FullyConnected") == 3 and after.count("Convolution") == 10


def _pooling_model(path, size: int):
    """Three MaxPools of 3x3, stride 2, on (N, 4, size, size): pads at the end only (as
    Keras' "same" pooling writes them), the same at both ends, and 2 at the end (which
    Pooling cannot say: it stays a Pad); then a global average."""
    from onnx import TensorProto, helper

    pads = [(0, 0, 1, 1), (1, 1, 1, 1), (0, 0, 2, 2)]
    nodes, previous = [], "x"
    for i, pad in enumerate(pads):
        nodes.append(helper.make_node("MaxPool", [previous], [f"p{i}"], kernel_shape=[3, 3],
                                      strides=[2, 2], pads=list(pad)))
        previous = f"p{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [previous], ["y"]))
    graph = helper.make_graph(
        nodes, "pools", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                       ["batch", 4, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    import onnx

    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("size", [62, 61])
def test_max_pooling_with_padding_runs_in_pooling_itself(tmp_path, size):
    """The importer's edge Pad + Pooling becomes one Pooling where its own padding can
    say it (5x faster on fer's model, benchmarks/NOTES.md 2026-12-04): the same outputs
    as onnxruntime on values of both signs (a zero pad would change the max), for even
    and odd sizes (the full convention's rounding)."""
    import json

    from model_handler.engine import import_into_mxnet
    from model_handler.graph_opt import optimize

    path = _pooling_model(tmp_path / "pools.onnx", size)
    sym, args, _ = import_into_mxnet(str(path))
    assert [n["op"] for n in json.loads(sym.tojson())["nodes"]].count("Pad") == 3
    ops = [n["op"] for n in json.loads(optimize(sym, args).tojson())["nodes"]]
    assert ops.count("Pad") == 1 and ops.count("Pooling") == 4
    x = np.random.default_rng(size).normal(size=(5, 4, size, size)).astype(np.float32) - 3
    mxnet = MXNetEngine(str(path), "x", (4, size, size), 8, context="cpu").forward(x)
    reference = OnnxRuntimeEngine(str(path), "x", 8).forward(x)
    np.testing.assert_allclose(mxnet, reference, rtol=1e-6, atol=1e-6)
