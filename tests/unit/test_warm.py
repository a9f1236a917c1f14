"""``client.warm.import_soon``: modules imported on a thread, a failing one ignored (the
import where it is used reports it), and what the report plots with is in the list."""
from __future__ import annotations

import sys

from frame_infer.client import timeline, warm


def test_modules_are_imported_on_a_thread_and_a_missing_one_is_ignored(monkeypatch):
    monkeypatch.delitem(sys.modules, "xml.dom.minidom", raising=False)
    thread = warm.import_soon("frame_infer_no_such_module", "xml.dom.minidom")
    thread.join(30)
    assert not thread.is_alive() and thread.daemon
    assert "xml.dom.minidom" in sys.modules


def test_the_report_modules_are_the_ones_the_timeline_imports():
    source = open(timeline.__file__, encoding="utf-8").read()
    for name in warm.REPORT_MODULES:
        assert f"from {name} import" in source


def test_the_tracking_modules_are_the_ones_the_tracker_imports():
    from frame_infer.client import tracks

    source = open(tracks.__file__, encoding="utf-8").read()
    for name in warm.TRACKING_MODULES:
        assert f"from {name} import" in source
