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
