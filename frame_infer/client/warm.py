"""Imports a job needs later, started on a thread at its beginning.

matplotlib takes ~0.4 s to import and norfair ~0.5 s (benchmarks/NOTES.md, 2026-12-03
evening); the report needs the one after the last prediction, when nothing else is left
to overlap with, and the tracker the other before the first frame goes out. Imported
while the job starts and frames are cut, they cost the job little wall time. An import that
fails here is ignored: the module is imported again where it is used, and that import
reports the problem (a missing extra, say) as it always did.
"""
from __future__ import annotations

import importlib
import threading

REPORT_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg")
"""What ``timeline.plot_timeline`` imports."""
TRACKING_MODULES = ("norfair",)
"""What ``tracks.FaceTracker`` imports (0.4-0.8 s with filterpy and SciPy)."""


def import_soon(*names: str) -> threading.Thread:
    """Import ``names`` on a daemon thread (Python's import lock makes a later import of
    the same module wait for this one rather than import it twice); the thread."""
    def load() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - reported by the import where it is used
                pass

    thread = threading.Thread(target=load, name="import-soon", daemon=True)
    thread.start()
    return thread
