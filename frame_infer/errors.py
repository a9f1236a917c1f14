"""Every error a user can act on derives from :class:`FrameInferError`.

The command line maps them to a message and an exit code in one place
(``frame_infer.cli``); library callers catch ``FrameInferError``. Each subclass also
keeps the builtin base it replaced (``ValueError``, ``FileNotFoundError``,
``RuntimeError``), so code that caught those before still works.
"""
from __future__ import annotations


class FrameInferError(Exception):
    """Base class: the message names the problem and the fix."""

    exit_code = 1


class InputError(FrameInferError, ValueError):
    """An option, a file's content or an argument is wrong."""


class NotFoundError(FrameInferError, FileNotFoundError):
    """A file, folder or S3 object the step needs does not exist."""


class VideoError(InputError):
    """The input cannot be read as a video."""


class ReportError(InputError):
    """Predictions cannot be read or the report cannot be copied."""


class ServerError(FrameInferError, RuntimeError):
    """MMS did not start or the model did not become ready; includes the log tail."""


class PackagingError(FrameInferError, RuntimeError):
    """The model cannot be packaged into a ``.mar``."""


class ChecksumError(FrameInferError, RuntimeError):
    """A downloaded file does not match its published size and SHA-256."""


class DeployError(FrameInferError, RuntimeError):
    """The deployment failed; the message says where and what to do."""


class DownloadError(FrameInferError, RuntimeError):
    """A file could not be downloaded; the message has the tool's own reason."""
