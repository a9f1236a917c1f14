"""Shared fixtures: generated models, real .mar archives, a real MMS server on loopback.

Fixtures only; helper functions live in ``tests/helpers`` and are imported from there.
"""
from __future__ import annotations

import numpy as np
import pytest

from frame_infer.models import packager, testgen
from frame_infer.serving.mms import ModelSettings

from .helpers.aws import moto_server
from .helpers.mms import running_mms
from .helpers.models import RGB_CONFIG
from .helpers.numeric import softmax


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("models")
    return {kind: testgen.write_test_model(kind, root / f"{kind}.onnx")
            for kind in testgen.KINDS}


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
    Stopped by pid at the end of the session, even when tests fail; the run dir (logs)
    stays for inspection and pytest prunes old ones.
    """
    with running_mms(model_store,
                     ModelSettings("ferplus.mar", "ferplus", batch_size=8,
                                   max_batch_delay_ms=300, workers=1),
                     ModelSettings("rgb.mar", "rgb", batch_size=1, max_batch_delay_ms=1,
                                   workers=1),
                     threads=2, run_dir=tmp_path_factory.mktemp("mms-run")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server on loopback (moto's server mode), for real boto3 calls.

    Yields its endpoint URL. boto3 clients reach it through ``AWS_ENDPOINT_URL_S3`` or an
    explicit ``endpoint_url``; the credentials are moto's test values (no AWS involved).
    """
    with moto_server() as url:
        yield url


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


def pytest_collection_modifyitems(items):
    """Everything under tests/integration carries the ``integration`` marker."""
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
