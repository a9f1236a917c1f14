"""S3Fetcher's bounds: bytes held per batch, the batch deadline, the client's timeouts."""
from __future__ import annotations

import json
import threading
import time
import tracemalloc

import pytest

from frame_infer.models import testgen
from model_handler.codecs import S3Ref
from model_handler.config import ConfigError, load_config
from model_handler.errors import ImageError
from model_handler.s3fetch import ByteBudget, S3Fetcher

MIB = 1024 * 1024


class LazyBody:
    """A streaming body of ``size`` zero bytes, made as they are read (nothing stored)."""

    def __init__(self, size: int):
        self.left = size

    def read(self, amt: int | None = None) -> bytes:
        amt = self.left if amt is None else min(amt, self.left)
        self.left -= amt
        return bytes(amt)

    def close(self) -> None:
        pass


class LazyClient:
    """get_object of objects of ``size`` bytes; ``stall`` keys block until ``release``."""

    def __init__(self, size: int):
        self.size = size
        self.release = threading.Event()
        self.calls = 0

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's spelling
        self.calls += 1
        if Key.startswith("stall"):
            self.release.wait(30)
        return {"Body": LazyBody(self.size), "ContentLength": self.size}


def test_a_batch_holds_at_most_its_byte_budget_while_bodies_are_decoded_as_they_arrive():
    """30 objects of 4 MiB (120 MiB) under a budget of 8 MiB: Python's peak allocation
    stays near the budget, not near the 120 MiB fetched."""
    decoded = []

    def decode(body: bytes) -> int:
        decoded.append(len(body))
        return len(body)  # the small result that is kept instead of the body

    client = LazyClient(4 * MIB)
    fetcher = S3Fetcher(["frames"], client=client, max_bytes_in_flight=8 * MIB,
                        decode=decode, deadline_s=60)
    refs = [S3Ref("frames", f"f{i}.jpg") for i in range(30)]
    tracemalloc.start()
    try:
        results = fetcher.fetch_all(refs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert results == [4 * MIB] * 30 and len(decoded) == 30
    # The budget, its buffers' growth slack (1/8) and a 1 MiB chunk per fetch in progress.
    assert peak < 8 * MIB * 1.25 + 2 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_objects_over_the_budget_or_the_cap_are_too_large_without_reading_them():
    client = LazyClient(3 * MIB)
    small_budget = S3Fetcher(["frames"], client=client, max_bytes_in_flight=2 * MIB)
    (result,) = small_budget.fetch_all([S3Ref("frames", "big.jpg")])
    assert isinstance(result, ImageError) and result.code == "image_too_large"
    capped = S3Fetcher(["frames"], client=client, max_bytes=1 * MIB)
    (result,) = capped.fetch_all([S3Ref("frames", "big.jpg")])
    assert isinstance(result, ImageError) and result.code == "image_too_large"


def test_the_batch_deadline_answers_s3_error_and_the_next_batch_is_not_held_up():
    client = LazyClient(1000)
    fetcher = S3Fetcher(["frames"], client=client, deadline_s=0.5)
    started = time.monotonic()
    try:
        stalled, fine = fetcher.fetch_all([S3Ref("frames", "stall.jpg"),
                                           S3Ref("frames", "ok.jpg")])
        took = time.monotonic() - started
        assert isinstance(stalled, ImageError) and stalled.code == "s3_error"
        assert "s3_fetch_deadline_s" in stalled.message
        assert fine == bytes(1000)
        assert took < 10  # the stalled fetch is still blocked: nobody waited for it
        started = time.monotonic()
        assert fetcher.fetch_all([S3Ref("frames", "ok.jpg")]) == [bytes(1000)]
        assert time.monotonic() - started < 10
    finally:
        client.release.set()


def test_byte_budget_waits_for_room_until_the_deadline():
    budget = ByteBudget(10)
    assert budget.acquire(8, time.monotonic() + 1)
    assert not budget.acquire(5, time.monotonic() + 0.05)
    threading.Timer(0.05, budget.release, args=(8,)).start()
    assert budget.acquire(10, time.monotonic() + 10)


def test_s3_settings_come_from_the_config_and_reach_the_client(tmp_path, monkeypatch):
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    testgen.write_test_model("ferplus", tmp_path / "m.onnx")
    (tmp_path / "model-config.json").write_text(json.dumps(
        {"allowed_s3_buckets": ["frames"], "s3_connect_timeout_s": 1.5,
         "s3_max_bytes_in_flight": 16 * MIB}))
    cfg = load_config(tmp_path, environ={"FRAME_INFER_S3_READ_TIMEOUT_S": "2.5",
                                         "FRAME_INFER_S3_FETCH_DEADLINE_S": "7"})
    assert (cfg.s3_connect_timeout_s, cfg.s3_read_timeout_s, cfg.s3_fetch_deadline_s,
            cfg.s3_max_bytes_in_flight) == (1.5, 2.5, 7.0, 16 * MIB)
    client_config = S3Fetcher.from_config(cfg)._get_client().meta.config
    assert (client_config.connect_timeout, client_config.read_timeout) == (1.5, 2.5)
    assert client_config.retries["mode"] == "standard"
    defaults = load_config(tmp_path, environ={"FRAME_INFER_S3_CONNECT_TIMEOUT_S": ""})
    assert defaults.s3_read_timeout_s == 10.0 and defaults.s3_fetch_deadline_s == 30.0
    with pytest.raises(ConfigError, match="s3_fetch_deadline_s must be more than 0"):
        load_config(tmp_path, environ={"FRAME_INFER_S3_FETCH_DEADLINE_S": "0"})
