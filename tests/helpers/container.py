"""The SageMaker serving container's front and MMS, in this process, for a test.

The same code the image runs (``serving.container.start_model`` + ``serving.front.Front``)
without the entrypoint's process and signal handling (``test_sagemaker_container.py``
covers those): MMS from the real ``.mar`` on loopback, the front on a free loopback port.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

from frame_infer.serving.container import ContainerSettings, start_model
from frame_infer.serving.front import Front
from frame_infer.serving.mms import free_port


@contextlib.contextmanager
def running_front(model_dir: Path, **settings) -> Iterator[str]:
    """Serve the one model in ``model_dir`` as the container does; yield the front's URL
    (``/ping``, ``/execution-parameters``, ``/invocations``). MMS is stopped by pid at the
    end, however the block ends."""
    config = ContainerSettings(model_dir=Path(model_dir), host="127.0.0.1", port=free_port(),
                               startup_timeout_s=120, **settings)
    mms, name = start_model(config)
    front = None
    try:
        front = Front((config.host, config.port), mms, name, config)
        threading.Thread(target=front.serve_forever, daemon=True).start()
        yield f"http://{config.host}:{config.port}"
    finally:
        if front is not None:
            front.shutdown()
            front.server_close()
        mms.stop()
        mms.cleanup()
