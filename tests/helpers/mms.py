"""One way to run the real MMS in a test: :func:`running_mms`, stopped by pid always."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from frame_infer.serving.lifecycle import ServeConfig, ServedModel
from frame_infer.serving.mms import LocalMMS, ModelSettings, ServerSettings
from frame_infer.serving.ports import free_port


@contextlib.contextmanager
def running_mms(model_store: Path, *models: ModelSettings, threads: int = 1,
                run_dir: Path | None = None, cleanup: bool = False,
                **settings) -> Iterator[LocalMMS]:
    """Start MMS on free loopback ports, register ``models`` (each waited READY), yield it.

    ``settings`` are further :class:`ServerSettings` fields (``max_request_bytes``,
    ``extra_env``, ...). The server stops when the block ends, however it ends (through
    ``ServedModel``, as everything that runs MMS); with ``cleanup`` its run dir (logs) is
    removed too, else it stays for inspection.
    """
    config = ServeConfig(ServerSettings(model_store=model_store, port=free_port(),
                                        management_port=free_port(), run_dir=run_dir,
                                        **settings),
                         models, threads=threads,
                         remove_run_dir="always" if cleanup else "never")
    with ServedModel(config) as served:
        yield served.server


def model_url(server: LocalMMS, model: str = "ferplus") -> str:
    """The inference URL of ``model`` on ``server``."""
    return f"{server.inference_url}/predictions/{model}"
