"""One way to run the real MMS in a test: :func:`running_mms`, stopped by pid always."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from frame_infer.serving.mms import LocalMMS, ModelSettings, ServerSettings
from frame_infer.serving.ports import free_port


@contextlib.contextmanager
def running_mms(model_store: Path, *models: ModelSettings, threads: int = 1,
                run_dir: Path | None = None, cleanup: bool = False,
                **settings) -> Iterator[LocalMMS]:
    """Start MMS on free loopback ports, register ``models`` (each waited READY), yield it.

    ``settings`` are further :class:`ServerSettings` fields (``max_request_bytes``,
    ``extra_env``, ...). The server stops when the block ends, however it ends; with
    ``cleanup`` its run dir (logs) is removed too, else it stays for inspection.
    """
    server = LocalMMS(ServerSettings(model_store=model_store, port=free_port(),
                                     management_port=free_port(), run_dir=run_dir,
                                     **settings))
    try:
        server.start(threads=threads)
        for model in models:
            server.register(model)
        yield server
    finally:
        server.stop()
        if cleanup:
            server.cleanup()


def model_url(server: LocalMMS, model: str = "ferplus") -> str:
    """The inference URL of ``model`` on ``server``."""
    return f"{server.inference_url}/predictions/{model}"
