"""The benchmark's figures, one per question, drawn again from a stored ``bench.json``
(``python -m benchmarks.tables --replot``) without measuring anything."""
from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.tables import FIGURES, main

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def test_replot_draws_every_figure_from_the_stored_results(tmp_path, capsys):
    shutil.copy(RESULTS / "bench.json", tmp_path / "bench.json")
    assert main(["--replot", str(tmp_path)]) == 0
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert not (tmp_path / "peers.png").exists()  # no peers.json: no peers figure
    assert capsys.readouterr().out.count(".png") == len(FIGURES)
