"""The benchmark's CPU budget: the gap to the raw engine split into work and idle cores."""
from __future__ import annotations

import pytest

from benchmarks.tables import cpu_budget


def row(number, images_s, wall, workers, java, client, path="p"):
    return {"row": number, "path": path, "images_s": images_s, "wall_s": wall,
            "frames": 600, "cpu_s": {"workers": workers, "java": java, "client": client}}


def test_the_budget_names_work_idle_and_the_best_ratio_possible():
    rows = [row(6, 100.0, 6.0, 9.0, 0.5, 1.0, "slow"), row(6, 120.0, 5.0, 9.2, 0.2, 0.4, "fast"),
            row(7, 100.0, 6.0, 9.3, 0.3, 1.6, "run")]
    lines = cpu_budget(rows, reference=125.0, cores=2)  # raw: 600 / 125 = 4.8 s
    assert lines[1].startswith("CPU budget (2 cores")
    served, end_to_end = lines[2], lines[3]
    assert "(fast)" in served and "slow" not in served
    # 5 s x 2 = 10 core-s, 9.8 busy: 0.2 idle; 4.8 / 5 = 0.96 measured, 4.8 / 4.9 at best.
    assert "workers 9.20, Java 0.20, client 0.40, idle 0.20" in served
    assert "Measured **0.96x the raw engine**" in served
    assert "would be 0.98x the raw engine." in served
    # 6 s x 2 = 12 core-s, 11.2 busy: 0.8 idle; 6 / 4.8 = 1.25 measured, 5.6 / 4.8 at best.
    assert "idle 0.80" in end_to_end and "**1.25x the raw engine's time**" in end_to_end
    assert "would be 1.17x the raw engine's time." in end_to_end


def test_rows_without_cpu_figures_give_no_budget():
    assert cpu_budget([{"row": 6, "images_s": 1.0}], reference=1.0, cores=2) == []


@pytest.mark.parametrize("cores", [1, 4])
def test_idle_is_counted_on_every_core(cores):
    line = cpu_budget([row(7, 100.0, 6.0, 1.0, 0.0, 1.0)], 125.0, cores)[2]
    assert f"idle {cores * 6.0 - 2.0:.2f}" in line
