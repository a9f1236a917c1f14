"""Run local MMS with one model registered (server-side batching, workers) until Ctrl-C.

Clients reach the front (``frame_infer.serving.front``, the same as in the SageMaker
container) on ``--port``: it bounds request bodies before Java holds them, validates
multipart framing, answers every error as ``{"error": {"code", "message"}}``, means
"the model answers" by ``GET /ping`` and restarts MMS when the model stops answering. MMS
itself listens on an internal loopback port. All ports are bound on 127.0.0.1 only. The
management API (``--management-port``) has no authentication: whoever can reach it may
register a model archive from a URL (its handler runs as your user) or scale the model
to 0, so keep it on loopback and never forward its port.

The front serves Prometheus metrics at ``/metrics`` on ``--port``; ``--metrics-port PORT``
also serves them at ``http://127.0.0.1:PORT/metrics``: the handler's per-batch figures and
worker restarts from MMS's log, requests by status and their time as the front answered
them (``frame_infer.serving.metrics`` says which is which).

--batch-size here is MMS's server-side batch (requests aggregated into one handler call);
the client's frames per request is predict's and run's --frames-per-request.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..serving.mms import ModelSettings, ServerSettings
from ..serving.ports import MAX_PORT
from .aliases import add_renamed
from .common import at_least

# Defaults are the settings' own (written once, in the dataclasses).
SERVER, MODEL = ServerSettings, ModelSettings

EXAMPLES = """\
  frame-infer serve --archive store/fer.mar
  frame-infer serve --archive fer.mar --model-store store --name fer --workers 2 \\
      --batch-size 8 --max-batch-delay 20 --metrics-port 9100
"""


def _port_type(high: int, why: str = ""):
    """An argparse type: a port number in 1-``high``; ``why`` follows the range when refused."""
    def parse(text: str) -> int:
        try:
            port = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
        if not 1 <= port <= high:
            raise argparse.ArgumentTypeError(f"{port} is not in 1-{high}{why}")
        return port
    return parse


port_number = _port_type(MAX_PORT, ": MMS 1.1.11 rejects higher port numbers "
                                   "(\"Invalid port number\")")
"""A port MMS accepts (1-32767)."""
tcp_port = _port_type(65535)
"""Any TCP port (the metrics exporter is ours, not MMS's)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_renamed(parser, "--archive", "--model", required=True, metavar="NAME.mar",
                help="the .mar to serve (from `frame-infer package`): a path, or a file name "
                     "in --model-store")
    parser.add_argument("--model-store", type=Path,
                        help="folder holding the .mar files (default: the archive's folder)")
    parser.add_argument("--name", help="model name on the server, the NAME in "
                                       "/predictions/NAME (default: the archive's stem)")
    parser.add_argument("--port", type=port_number, default=SERVER.port,
                        help="the front's port on 127.0.0.1, where clients send (1-32767); MMS "
                             "listens on an internal port behind it")
    parser.add_argument("--management-port", type=port_number, default=SERVER.management_port,
                        help="management API port, loopback only and unauthenticated "
                             "(1-32767)")
    parser.add_argument("--batch-size", type=at_least(1), default=MODEL.batch_size,
                        help="MMS server-side batch: requests aggregated per handler call "
                             "(%(default)s); not the client's --frames-per-request")
    parser.add_argument("--max-batch-delay", type=at_least(0),
                        default=MODEL.max_batch_delay_ms,
                        help="milliseconds MMS waits to fill a batch (%(default)s)")
    parser.add_argument("--workers", type=at_least(1), default=MODEL.workers,
                        help="handler processes, each with the model loaded once "
                             "(%(default)s)")
    parser.add_argument("--job-queue-size", type=at_least(1),
                        help="requests MMS queues beyond the running batches; more get 503 "
                             "(default: 256 MiB of largest bodies, 40)")
    parser.add_argument("--java-heap-mb", type=at_least(64),
                        help="Java heap (-Xmx) in MiB (default: twice the queue's bytes "
                             "+ 256)")
    parser.add_argument("--metrics-port", type=tcp_port,
                        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics "
                             "(loopback only; default: none)")
    parser.add_argument("--run-dir", type=Path,
                        help="MMS config, logs and temp files (default: a temp folder, "
                             "removed after a clean stop)")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT (0) or until MMS exits by itself (1). A signal before
    "serving" stops and cleans up MMS and ends as an interrupt (the CLI's exit code).

    Clients reach the front (``serving.front``) on ``--port``; MMS listens on an internal
    loopback port behind it, its management API on ``--management-port``."""
    from ..serving.lifecycle import ServedModel
    from ..serving.ports import check_ports

    check_ports(args.port, args.management_port)  # the front's port too, before Java
    with ServedModel(serve_config(args)) as served, fronted(served, front_config(args)):
        server, name = served.server, served.name
        print(f"serving {name} at http://127.0.0.1:{args.port}/predictions/{name} "
              f"(management {server.management_url}, MMS pid {server.process.pid} on "
              f"internal port {server.settings.port}, job queue {server.job_queue_size}, "
              f"Java heap {server.heap_mb} MiB); logs in {server.log_dir}; Ctrl-C stops",
              flush=True)
        if served.exporter is not None:
            print(f"metrics at http://127.0.0.1:{args.metrics_port}/metrics", flush=True)
        code = 0 if served.wait() else 1
        if code:  # the run dir and its logs stay
            print(f"frame-infer serve: error: MMS exited unexpectedly; "
                  f"{server.failure_detail()}", file=sys.stderr)
    print("MMS stopped", flush=True)
    return code


@contextlib.contextmanager
def fronted(served, settings):
    """The front before ``served`` while the block runs; ServerError when its port is taken
    (between the check and the bind)."""
    from ..errors import ServerError
    from ..serving.front import running_front

    try:
        front = running_front(served, settings)
        front.__enter__()
    except OSError as exc:
        raise ServerError(f"port {settings.port} on 127.0.0.1 is already in use; stop what "
                          "listens there or choose another with --port") from exc
    try:
        yield
    finally:
        front.__exit__(None, None, None)


def serve_config(args: argparse.Namespace):
    """The :class:`~frame_infer.serving.lifecycle.ServeConfig` the command line asks for:
    MMS on an internal loopback port (the front takes ``--port``)."""
    from ..serving.lifecycle import MetricsSettings, ServeConfig
    from ..serving.ports import free_port

    store, archive = archive_in_store(args.archive, args.model_store)
    taken = {args.port, args.management_port, args.metrics_port}
    internal = free_port()
    while internal in taken:
        internal = free_port()
    server = ServerSettings(model_store=store, port=internal,
                            management_port=args.management_port, run_dir=args.run_dir,
                            job_queue_size=args.job_queue_size, heap_mb=args.java_heap_mb)
    model = ModelSettings(archive, args.name or Path(archive).stem,
                          batch_size=args.batch_size, max_batch_delay_ms=args.max_batch_delay,
                          workers=args.workers)
    # The metrics reader always runs: the front's health check reads MMS's worker retries;
    # the front counts the requests itself.
    return ServeConfig(server, (model,), metrics=MetricsSettings(port=args.metrics_port))


def front_config(args: argparse.Namespace):
    """The front's :class:`~frame_infer.serving.front.FrontSettings` on ``--port``."""
    from ..serving.front import FrontSettings

    return FrontSettings(host="127.0.0.1", port=args.port, batch_size=args.batch_size,
                         workers=args.workers, response_timeout_s=SERVER.response_timeout_s)


def archive_in_store(archive: str, model_store: Path | None) -> tuple[Path, str]:
    """(model store, archive file name in it) of ``--archive`` and ``--model-store``."""
    from ..errors import InputError

    path = Path(archive)
    if model_store is None:
        return path.parent, path.name
    if path.parent != Path(".") and path.parent.resolve() != model_store.resolve():
        raise InputError(f"--archive {archive} is not in --model-store {model_store}: give "
                         "the file name alone, or drop --model-store")
    return model_store, path.name

