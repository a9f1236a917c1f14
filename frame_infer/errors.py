"""Every error a user can act on derives from :class:`FrameInferError`.

The command line maps them to a message and an exit code in one place
(``frame_infer.cli``); library callers catch ``FrameInferError``. Each subclass also
keeps the builtin base it replaced (``ValueError``, ``FileNotFoundError``,
``RuntimeError``), so code that caught those before still works.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit status of every ``frame-infer`` command (README.md, "Exit codes")."""

    OK = 0
    """Done: every frame (with faces: every face) has a prediction."""
    FAILED = 1
    """Anything not below: an unexpected failure; the message says what."""
    USAGE = 2
    """A wrong option, argument or input file: fix the command (nothing was sent)."""
    INCOMPLETE = 3
    """Some frames have no answer yet (their request failed as a whole): run the same
    command again; it sends only those."""
    IMAGE_ERRORS = 4
    """Every frame was answered, some with a per-image error (``invalid_image``, ...): a
    rerun gives the same answers (``--retry-errors`` sends them again)."""
    ENVIRONMENT = 5
    """The endpoint did not answer, or AWS, Java, a port or the disk failed: fix that;
    then the same command resumes."""
    INTERRUPTED = 130
    """Ctrl-C or SIGTERM: what was answered is saved; the same command resumes."""


class FrameInferError(Exception):
    """Base class: the message names the problem and the fix."""

    exit_code = ExitCode.FAILED


class InputError(FrameInferError, ValueError):
    """An option, a file's content or an argument is wrong."""

    exit_code = ExitCode.USAGE


class NotFoundError(FrameInferError, FileNotFoundError):
    """A file, folder or S3 object the step needs does not exist."""

    exit_code = ExitCode.USAGE


class VideoError(InputError):
    """The input cannot be read as a video."""


class ReportError(InputError):
    """Predictions cannot be read or the report cannot be copied."""


class ServerError(FrameInferError, RuntimeError):
    """MMS did not start or the model did not become ready; includes the log tail."""

    exit_code = ExitCode.ENVIRONMENT


class ModelLoadError(ServerError):
    """MMS runs, but the model in the archive does not load (wrong labels, a corrupt ONNX
    file, no handler): the archive is the input to fix."""

    exit_code = ExitCode.USAGE


class PackagingError(FrameInferError, RuntimeError):
    """The model cannot be packaged into a ``.mar``."""

    exit_code = ExitCode.USAGE


class ChecksumError(FrameInferError, RuntimeError):
    """A downloaded file does not match its published size and SHA-256."""

    exit_code = ExitCode.ENVIRONMENT


class DeployError(FrameInferError, RuntimeError):
    """The deployment failed; the message says where and what to do."""

    exit_code = ExitCode.ENVIRONMENT


class DownloadError(FrameInferError, RuntimeError):
    """A file could not be downloaded; the message has the tool's own reason."""

    exit_code = ExitCode.ENVIRONMENT
