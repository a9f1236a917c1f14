"""One summary of a prediction run, built from its journal: counts, error codes, exit code.

``predict``/``run`` (after the send engine) and ``transform`` (after its jobs) both end
with :func:`summarize`; the command line prints it for people (``cli.common``) or as JSON
(:meth:`PredictSummary.to_json`), and maps it to an exit code (:attr:`exit_code`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model_handler.wire import FRAME_TOO_LARGE

FRAME_MISSING = "frame_missing"
"""Client-side: the file the manifest names for this item is not there (not sent)."""
NOT_RESUMABLE = frozenset({FRAME_TOO_LARGE, FRAME_MISSING})
"""Unfinished rows the same command cannot fix (other options or new frames can)."""

from ..errors import ExitCode

from .journal import Journal, is_final


@dataclass
class PredictSummary:
    rows: int
    """Result rows: frames, or with faces the faces plus the frames without a face."""
    predicted: int
    errors: int
    """Rows that are an error (per-image or whole-request)."""
    skipped: int
    """Rows that already had a final result from an earlier run."""
    unfinished: int
    """Rows without a final result (their request failed as a whole): a rerun sends them."""
    first_failure: str | None
    """The message of the first such row: why they could not be sent."""
    requests: int
    seconds: float
    output: Path | None
    """``predictions.jsonl``, written once every row has a result; None before."""
    error_codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Error code -> (rows with it, one sample message), most frequent first."""
    no_face: int = 0
    """With faces: frames without a face (their row has ``"face": null``, no label)."""
    faces: bool = False
    """True when the job searched its frames for faces (rows are faces)."""
    unreachable: bool = False
    """The endpoint never answered and requests failed as a whole (down, wrong URL)."""
    resumable: int = 0
    """Unfinished rows that the same command, run again, can fix: all but
    ``frame_too_large`` (a frame that fits in no request needs other options) and
    ``frame_missing`` (a file the manifest names is gone: extract again)."""
    notes: list[str] = field(default_factory=list)
    """Warnings from the steps around the prediction (a video that ended early, a
    manifest line skipped, a model that expects face crops); part of :attr:`warnings`."""

    @property
    def frames(self) -> int:
        """Old name of :attr:`rows` (it always counted rows, faces included)."""
        return self.rows

    @property
    def faces_mode(self) -> bool:
        """Old name of :attr:`faces`."""
        return self.faces

    @property
    def complete(self) -> bool:
        """True when every row has a prediction (or, with faces, says "no face")."""
        return self.output is not None and self.predicted + self.no_face == self.rows

    @property
    def exit_code(self) -> ExitCode:
        """What the run's exit status says (README, "Exit codes")."""
        if self.complete:
            return ExitCode.OK
        if self.unreachable:
            return ExitCode.ENVIRONMENT
        if self.resumable:
            return ExitCode.INCOMPLETE
        return ExitCode.IMAGE_ERRORS

    @property
    def warnings(self) -> list[str]:
        """What a person should know although nothing failed: a job with faces in which
        no frame had any (not a silent success: the likely reason and what to try)."""
        if self.faces and self.rows and self.no_face == self.rows:
            return [f"no face was found in any of the {self.rows} frames: faces may be "
                    "smaller than the detector looks for, turned away, or absent; try "
                    "--min-face 20 (small faces), a lower --score-threshold, or "
                    "--detector haar", *self.notes]
        return list(self.notes)

    def to_json(self) -> dict:
        """The machine-readable form (docs/API.md, "Machine-readable output")."""
        return {"rows": self.rows, "predicted": self.predicted, "errors": self.errors,
                "no_face": self.no_face, "skipped": self.skipped,
                "unfinished": self.unfinished, "resumable": self.resumable,
                "faces": self.faces,
                "complete": self.complete, "unreachable": self.unreachable,
                "requests": self.requests, "seconds": round(self.seconds, 3),
                "predictions": str(self.output) if self.output else None,
                "error_codes": {code: {"rows": n, "sample": sample}
                                for code, (n, sample) in self.error_codes.items()},
                "first_failure": self.first_failure, "warnings": self.warnings}


def error_codes(rows: list[dict]) -> dict[str, tuple[int, str]]:
    """Error code -> (rows with it, one sample message), most frequent first."""
    counts: dict[str, list] = {}
    for row in rows:
        if "error" in row:
            error = row["error"]
            code = str(error.get("code")) if isinstance(error, dict) else "error"
            entry = counts.setdefault(code, [0, str(error.get("message", ""))
                                             if isinstance(error, dict) else str(error)])
            entry[0] += 1
    return {code: (n, sample) for code, (n, sample)
            in sorted(counts.items(), key=lambda item: -item[1][0])}


def summarize(journal: Journal, keys: list[tuple], *, skipped: int, requests: int,
              seconds: float, faces: bool, unreachable: bool = False) -> PredictSummary:
    """The summary of the rows ``keys`` in ``journal``; writes ``predictions.jsonl`` (in
    frame order) when every key has a row."""
    output = journal.write_ordered(keys) if all(k in journal.rows for k in keys) else None
    rows = [journal.rows[k] for k in keys if k in journal.rows]
    errors = sum("error" in r for r in rows)
    no_face = sum(faces and r.get("face") is None and "error" not in r for r in rows)
    unfinished = len(keys) - sum(journal.done(k) for k in keys)
    resumable = unfinished - sum(not is_final(r) and r["error"].get("code") in NOT_RESUMABLE
                                 for r in rows)
    failure = next((r["error"]["message"] for r in rows if not is_final(r)), None)
    return PredictSummary(rows=len(keys), predicted=len(rows) - errors - no_face,
                          errors=errors, skipped=skipped, unfinished=unfinished,
                          first_failure=failure, requests=requests, seconds=seconds,
                          output=output, error_codes=error_codes(rows), no_face=no_face,
                          faces=faces, unreachable=unreachable and unfinished > 0,
                          resumable=resumable)
