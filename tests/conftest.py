"""Shared fixtures: generated models, real .mar archives, a real MMS server on loopback."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

from frame_infer import modelgen, packager
from frame_infer.server import LocalMMS, ModelSettings, ServerSettings, free_port

RGB_CONFIG = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "labels": ["cat", "dog", "bird", "fish", "frog"]}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("models")
    return {kind: modelgen.write_test_model(kind, root / f"{kind}.onnx")
            for kind in modelgen.KINDS}


@pytest.fixture(scope="session")
def model_store(tmp_path_factory, model_files) -> dict:
    store = tmp_path_factory.mktemp("model-store")
    packager.build_archive(model_files["ferplus"], "ferplus", store)
    packager.build_archive(model_files["rgb"], "rgb", store, config=RGB_CONFIG)
    return store


@pytest.fixture(scope="session")
def ort_reference(model_files):
    """onnxruntime's softmax for a (N, C, H, W) float32 batch: the reference engine."""
    import onnxruntime as ort

    sessions = {k: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                for k, p in model_files.items()}

    def run(kind: str, batch: np.ndarray) -> np.ndarray:
        session = sessions[kind]
        name = session.get_inputs()[0].name
        return softmax(session.run(None, {name: batch.astype(np.float32)})[0])

    return run


@pytest.fixture(scope="session")
def mms(model_store, tmp_path_factory):
    """The real MMS (Java) serving both generated models from their real .mar files.

    ferplus: server-side batching of up to 8 requests within 300 ms; rgb: batch 1.
    Stopped by pid at the end of the session, even when tests fail.
    """
    run_dir = tmp_path_factory.mktemp("mms-run")
    server = LocalMMS(ServerSettings(model_store=model_store, port=free_port(),
                                     management_port=free_port(), run_dir=run_dir))
    try:
        server.start(threads=2)
        server.register(ModelSettings("ferplus.mar", "ferplus", batch_size=8,
                                      max_batch_delay_ms=300, workers=1))
        server.register(ModelSettings("rgb.mar", "rgb", batch_size=1, max_batch_delay_ms=1,
                                      workers=1))
        yield server
    finally:
        server.stop()  # the run dir (logs) stays for inspection; pytest prunes old ones


@contextlib.contextmanager
def moto_server():
    """moto's server mode on a free loopback port (the stand-in for AWS), always stopped."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server on loopback (moto's server mode), for real boto3 calls.

    Yields its endpoint URL. boto3 clients reach it through ``AWS_ENDPOINT_URL_S3`` or an
    explicit ``endpoint_url``; the credentials are moto's test values (no AWS involved).
    """
    with moto_server() as url:
        yield url


def s3_client_with_bucket(bucket: str):
    """A boto3 S3 client (standard configuration: use with ``aws_env``) and ``bucket``."""
    import boto3

    client = boto3.client("s3")
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture()
def aws_env(monkeypatch, s3_server):
    """Environment for boto3 against the loopback S3 server: fake credentials, a region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


def pytest_sessionstart(session):
    """SIGTERM (CI's or `timeout`'s) ends the run like Ctrl-C, so fixtures still stop the
    servers they started instead of leaving Java and its workers behind."""
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)
