"""``AsyncSageMakerTarget``'s limits, without a server: they come from
``model_handler/wire.py``, the numbers the endpoint template gives the async container."""
from __future__ import annotations

import pytest

from frame_infer.client.targets import make_target
from frame_infer.client.options import PredictOptions
from frame_infer.client.targets.sagemaker_async import AsyncSageMakerTarget
from frame_infer.errors import InputError
from model_handler import wire


def target(**kwargs) -> AsyncSageMakerTarget:
    # Clients are never called here: placeholders keep boto3 out of it.
    return AsyncSageMakerTarget("ep", "s3://bucket/in", runtime=object(), s3=object(), **kwargs)


def test_payload_limit_is_the_async_containers():
    assert target().max_payload == wire.ASYNC_MAX_REQUEST_BYTES == 100 * 1024 ** 2
    assert target(max_payload=wire.SAGEMAKER_ASYNC_MAX_REQUEST_BYTES).max_payload == 1024 ** 3


def test_payload_over_sagemakers_limit_is_refused_with_the_limit():
    with pytest.raises(InputError, match=r"--max-payload 1073741825: .* at most 1073741824"):
        target(max_payload=wire.SAGEMAKER_ASYNC_MAX_REQUEST_BYTES + 1)
    with pytest.raises(InputError, match="--max-payload"):
        make_target("sagemaker-async:ep", PredictOptions(
            async_s3="s3://bucket/in", max_payload=2 * 1024 ** 3))


@pytest.mark.parametrize("timeout, ttl", [(0.3, 60), (120, 120), (900.5, 901), (1e6, 21600)])
def test_request_ttl_follows_the_timeout_within_what_sagemaker_accepts(timeout, ttl):
    assert target(timeout=timeout).request_ttl == ttl
