"""What ``make bench`` writes: ``bench.md`` (the table, the limit row, the CPU budget,
faces, cold start, memory), ``bench.json`` and one figure per question (:data:`FIGURES`);
and what ``make bench-peers`` writes: ``peers.md``, ``peers.json``, ``peers.png``.

``python -m benchmarks.tables --replot [FOLDER]`` draws the figures again from the JSON
in FOLDER (default ``benchmarks/results``), without measuring anything."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REPEATS = 3
"""Runs of each noisy row (served, end to end): the median is reported, with the range."""


def write_results(info: dict, rows: list[dict], extra: dict, out: Path) -> None:
    reference = max(r["images_s"] for r in rows if r["row"] == 5)
    for r in rows:  # row 8 runs another model: a ratio to row 5 would mean nothing
        r["vs_ort_best"] = r["images_s"] / reference if r["row"] != 8 else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"machine": info, "rows": rows, **extra},
                                               indent=2))
    lines = [f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, "
             f"{info['memory_gib']} GiB; Python {info['python']}, MXNet {info['mxnet']}, "
             f"onnxruntime {info['onnxruntime']}. One run, side by side; ratios are to the "
             "best onnxruntime row (5). Rows 6 and 7: median of "
             f"{REPEATS} runs, range in brackets.", "",
             "| row | path | images/s | p50 ms | p99 ms | worker RSS MB | × ORT best |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]

    def fmt(v, spec=".1f"):
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)

    for r in rows:
        spread = (f" [{r['images_s_min']:.1f}–{r['images_s_max']:.1f}]"
                  if "images_s_min" in r else "")
        lines.append(f"| {r['row']} | {r['path']} | {fmt(r['images_s'])}{spread} | "
                     f"{fmt(r.get('p50_ms'))} | {fmt(r.get('p99_ms'))} | "
                     f"{fmt(r.get('rss_mb'), '.0f')} | {fmt(r['vs_ort_best'], '.2f')} |")
    limit = extra.get("limit")
    if limit:
        lines += ["", f"Limit: the model does {limit['gflop_per_image']:.2f} GFLOP per image; "
                  f"the best engine row ({limit['best_path']}, {limit['best_images_s']:.1f} "
                  f"images/s) runs {limit['achieved_gflops']:.0f} GFLOP/s against a "
                  f"{limit['peak_gflops']:.0f} GFLOP/s single-precision GEMM peak measured "
                  f"through MXNet's BLAS in this run: {limit['fraction']:.0%} of peak. "
                  + (f"At most {1 / limit['fraction']:.1f}x is left for any engine on this "
                     "machine." if limit["fraction"] < 1 else
                     "Above 100%: the engines' 3x3 convolutions use Winograd-style "
                     "kernels that need fewer multiplies than the direct count, so the "
                     "direct FLOP count overstates the work; little headroom is left.")]
    lines += cpu_budget(rows, reference, info["cores"])
    for detector, faces in (extra.get("faces_by_detector")
                            or ({"": extra["faces"]} if extra.get("faces") else {})).items():
        lines += ["", f"Faces (row 8{', ' + detector if detector else ''}): cutting with "
                  f"detection alone {faces['detect_s']:.1f}s, inference on the crops alone "
                  f"{faces['infer_s']:.1f}s, `run --faces` end to end "
                  f"{faces['end_to_end_s']:.1f}s: **{faces['ratio']:.2f}x** the larger of the "
                  "two (target: at most 1.3x)"
                  + (f", **{faces['real_time']:.1f}x real time** (target: at least 5x)."
                     if "real_time" in faces else ".")
                  + (f" Detection CPU per 640×480 frame, one thread: "
                     f"**{faces['detect_cpu_ms']:.1f} ms** (target: at most 3 ms)."
                     if "detect_cpu_ms" in faces else "")]
    lines += ["", "Cold start, registration to READY: " + ", ".join(
        f"{k} {v:.1f}s" for k, v in extra.get("cold_start_s", {}).items())]
    if "soak" in extra:
        lines.append("Worker RSS over " + str(extra["soak"]["requests"]) + " requests "
                     "(requests: MB): " + ", ".join(f"{n}: {m:.0f}"
                                                    for n, m in extra["soak"]["rss_mb"]))
    (out / "bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot({"rows": rows, **extra}, out)


def cpu_budget(rows: list[dict], reference: float, cores: int) -> list[str]:
    """Where the cores went in the best served run and the end-to-end run: the gap to the
    raw engine split into work (client, Java) and idle cores, and the best ratio this
    much work allows on this machine even with no core ever idle."""
    served = [r for r in rows if r["row"] == 6 and "cpu_s" in r]
    picks = ([("best served row", max(served, key=lambda r: r["images_s"]))] if served else [])
    picks += [("end to end", r) for r in rows if r["row"] == 7 and "cpu_s" in r]
    if not picks:
        return []
    lines = ["", f"CPU budget ({cores} cores, client and server on the same machine):"]
    for name, r in picks:
        cpu, wall = r["cpu_s"], r["wall_s"]
        raw = r["frames"] / reference  # the best engine's time for the same images
        busy = sum(cpu.values())
        floor = busy / cores  # the wall time if no core were ever idle
        idle = cores * wall - busy
        measured, best = ((wall / raw, floor / raw) if r["row"] == 7
                          else (raw / wall, raw / floor))
        unit = "x the raw engine's time" if r["row"] == 7 else "x the raw engine"
        lines.append(
            f"- {name} ({r['path']}): {wall:.2f} s x {cores} cores = {cores * wall:.1f} "
            f"core-s: workers {cpu['workers']:.2f}, Java {cpu['java']:.2f}, client "
            f"{cpu['client']:.2f}, idle {idle:.2f}. The raw engine takes {raw:.2f} s for "
            f"these {r['frames']} images. Measured **{measured:.2f}{unit}**; with this "
            f"much work and no idle core it would be {best:.2f}{unit}.")
    return lines


FIGURES = ("bench-engine.png", "bench-served.png", "bench-video.png")
"""The figures of ``make bench``, one question each (written by :func:`plot`)."""


def plot(data: dict, out: Path) -> list[Path]:
    """One figure per question, from ``bench.json``'s content: the engine (batch size vs
    images/s, against the machine's peak), the served path (throughput and p99 side by
    side for each setting), and the video jobs (seconds against the video's length)."""
    rows = data["rows"]
    paths = [out / name for name in FIGURES]
    plot_engine(rows, data.get("limit"), paths[0])
    plot_served(rows, paths[1])
    plot_video(rows, data.get("faces_by_detector") or (
        {"": data["faces"]} if data.get("faces") else {}), paths[2])
    return paths


def plot_engine(rows: list[dict], limit: dict | None, path: Path) -> None:
    plt, fig, (ax,) = _figure(1, 8, 4.6)
    engines = (("MXNet", 4, "C0"), ("onnxruntime", 5, "C1"))
    curves = {number: {r["batch"]: r["images_s"] for r in rows if r["row"] == number}
              for _, number, _ in engines}
    for name, number, colour in engines:
        points = sorted(curves[number].items())
        ax.plot([x for x, _ in points], [y for _, y in points], "o-", color=colour,
                label=name)
        for x, y in points:  # the higher of the two values at x above, the lower below
            other = [c[x] for n, c in curves.items() if n != number and x in c]
            above = not other or y >= other[0]
            ax.annotate(f"{y:.0f}", (x, y), xytext=(0, 7 if above else -14),
                        textcoords="offset points", ha="center", fontsize=8, color=colour)
    reload = next((r for r in rows if r["row"] == 1), None)
    if limit:
        peak = limit["peak_gflops"] / limit["gflop_per_image"]
        ax.axhline(peak, color="grey", ls="--", lw=1,
                   label=f"the machine's GEMM peak at this model's FLOPs ({peak:.0f})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(BATCH_TICKS), [str(b) for b in BATCH_TICKS])
    ax.set_xlabel("images per forward (batch size)")
    ax.set_ylabel("images per second")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    title = "The engine alone: images/s by batch size (higher is better)"
    notes = []
    if limit:
        notes.append(f"best {limit['best_images_s']:.0f} images/s = {limit['fraction']:.0%} "
                     "of the GEMM peak")
    if reload:
        notes.append(f"reloading the model for every image: {reload['images_s']:.0f}")
    if notes:
        title += "\n" + "; ".join(notes)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=9, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


BATCH_TICKS = (1, 4, 8, 16, 32, 64)


def _served_label(r: dict) -> str:
    """``served onnxruntime, 2 workers, MMS batching off, ...`` -> three short lines."""
    path = r["path"]
    engine = "onnxruntime" if "onnxruntime" in path else "MXNet"
    workers = "2 workers" if "2 workers" in path else "1 worker"
    batching = "MMS batching" if "batching on" in path else "no batching"
    return f"{engine}\n{workers}\n{batching}"


def plot_served(rows: list[dict], path: Path) -> None:
    """The project's served settings (row 6): throughput with its range and p99 side by
    side, one bar per requests-in-flight; the raw engine's best as a line."""
    served = [r for r in rows if r["row"] == 6]
    if not served:
        return
    labels = list(dict.fromkeys(_served_label(r) for r in served))
    flights = sorted({int(r["path"].split(" in flight")[0].split()[-1]) for r in served})
    plt, fig, (left, right) = _figure(2, 13, 4.8)
    width = 0.8 / len(flights)
    for k, flight in enumerate(flights):
        picked = [next((r for r in served if _served_label(r) == label
                        and f" {flight} in flight" in r["path"]), None) for label in labels]
        xs = np.arange(len(labels)) + (k - (len(flights) - 1) / 2) * width
        for ax, key in ((left, "images_s"), (right, "p99_ms")):
            values = [r.get(key, np.nan) if r else np.nan for r in picked]
            bars = ax.bar(xs, values, width * 0.92, color=f"C{k}",
                          label=f"{flight} requests in flight")
            tops = _whiskers(ax, xs, picked, values) if key == "images_s" else None
            _bar_labels(ax, bars, values, ".0f", tops)
    best = max(r["images_s"] for r in rows if r["row"] in (4, 5))
    left.axhline(best, color="grey", ls="--", lw=1)
    left.annotate(f"raw engine, best batch: {best:.0f}", (-0.45, best), xytext=(0, 4),
                  textcoords="offset points", fontsize=8, color="grey")
    _served_axes(left, right, labels, 8)
    handles, names = left.get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(names), fontsize=9,
               bbox_to_anchor=(0.5, 0.93), frameon=False)
    fig.suptitle("Served by frame-infer (MMS): 600 frames, 16 per request, each setting "
                 "(median of 3 runs, whisker: range)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_video(rows: list[dict], faces: dict, path: Path, video_s: float = 20.0) -> None:
    """Seconds to process the 20 s sample video end to end (whole frames, and faces with
    each detector), against the video's own length: left of the line is faster than real
    time; each bar says how many times."""
    bars = []
    whole = next((r for r in rows if r["row"] == 7), None)
    if whole:
        bars.append(("whole frames\n(frame-infer run)", whole["wall_s"]))
    for detector, figures in faces.items():
        name = f"faces, {detector}" if detector else "faces"
        bars.append((f"{name}\n(run --faces)", figures["end_to_end_s"]))
        bars.append((f"{name}: detection\nalone", figures["detect_s"]))
    if not bars:
        return
    plt, fig, (ax,) = _figure(1, 9, 0.75 * len(bars) + 1.8)
    ys = np.arange(len(bars))
    values = [v for _, v in bars]
    colours = ["C0" if "run" in name else "C7" for name, _ in bars]
    ax.barh(ys, values, color=colours)
    for y, v in zip(ys, values):
        ax.annotate(f"{v:.1f} s: {video_s / v:.1f}x faster than real time", (v, y),
                    xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.axvline(video_s, color="red", ls="--", lw=1)
    ax.annotate("real time: the video lasts 20 s", (video_s, -0.5), xytext=(4, -4),
                textcoords="offset points", ha="left", va="top", fontsize=8, color="red")
    ax.set_yticks(ys, [name for name, _ in bars], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(video_s, *values) * 1.45)
    ax.set_xlabel("seconds for a 20 s, 30 FPS video, 640x480 (shorter is better)")
    ax.set_title("A video job against real time (2 cores, client and server on one "
                 "machine)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replot(folder: Path) -> list[Path]:
    """The figures again from ``folder``'s ``bench.json`` (and ``peers.json`` when there),
    without measuring anything."""
    data = json.loads((folder / "bench.json").read_text())
    paths = plot(data, folder)
    peers = folder / "peers.json"
    if peers.is_file():
        saved = json.loads(peers.read_text())
        plot_peers(saved["machine"], saved["rows"], folder / "peers.png")
        paths.append(folder / "peers.png")
    return paths


# -- make bench-peers -------------------------------------------------------------------
def write_peers(info: dict, rows: list[dict], out: Path) -> None:
    """``peers.json``, ``peers.md`` (the table, ranked servers first) and ``peers.png``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
    text = peers_markdown(info, rows)
    (out / "peers.md").write_text(text)
    print(text)
    plot_peers(info, rows, out / "peers.png")


def _fmt(v, spec=".1f") -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return format(v, spec)


def peers_markdown(info: dict, rows: list[dict]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items() if v)
    load = info.get("load_average", [])
    lines = [f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, "
             f"{info['memory_gib']} GiB, load average {load[0] if load else '?'} at the "
             f"start ({info.get('load_average_end', ['?'])[0]} at the end); Python "
             f"{info['python']}, onnxruntime {info['onnxruntime']}; {versions}."
             + (f" **{info['label']}.**" if info.get("label") else ""), "",
             f"The same ONNX test model and preprocessing behind every server; "
             f"{info['frames']} frames of the sample video, {info['per_request']} per "
             f"request (multipart JPEG), one load generator; warm-up first, then median of "
             f"{info['repeats']} runs (range in brackets). Every image's answer is checked "
             "against onnxruntime in the benchmark's process: a server that drops or alters "
             "an answer is marked, not ranked. Server CPU: all of the server's processes "
             f"during the median run ({info['cores']} cores × wall time is the most there is). "
             f"Took {info.get('seconds', '?')} s.", "",
             "| server | in flight | images/s | p50 ms | p99 ms | server CPU s | images per "
             "forward | all answered | max \\|Δp\\| | status |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for r in rows:
        if "images_s" not in r:
            lines.append(f"| {r['label']} |  |  |  |  |  |  | no |  | {r['status']} |")
            continue
        answered = ("yes" if r["answered"] == r["images"]
                    else f"no ({r['answered']} of {r['images']})")
        lines.append(
            f"| {r['label']} | {r['concurrency']} | {r['images_s']:.1f} "
            f"[{r['images_s_min']:.1f}–{r['images_s_max']:.1f}] | {_fmt(r['p50_ms'], '.0f')} "
            f"| {_fmt(r['p99_ms'], '.0f')} | {_fmt(r['cpu_s'])} | "
            f"{_fmt(r['images_per_forward'])} | {answered} | {_fmt(r['max_dp'], '.1e')} | "
            f"{r['status']} |")
    lines += ["", ranking(rows)]
    lines += ["", "Settings (each as its documentation recommends for this many cores):"]
    seen = set()
    for r in rows:
        if r["server"] not in seen:
            seen.add(r["server"])
            lines.append(f"- {r['label']}: {r['setting']}")
    problems = [(r["label"], p) for r in rows for p in r.get("problems", [])]
    if problems:
        lines += ["", "What the answer check found (first examples):"]
        lines += [f"- {label}: {p}" for label, p in problems[:10]]
    return "\n".join(lines) + "\n"


def ranking(rows: list[dict]) -> str:
    """Servers whose every row is right, by their best images/s; the others named apart."""
    best: dict[str, float] = {}
    marked: dict[str, str] = {}
    for r in rows:
        if not r["ranked"]:
            marked.setdefault(r["label"], r["status"])
        elif "images_s" in r:
            best[r["label"]] = max(best.get(r["label"], 0.0), r["images_s"])
    ranked = [(label, v) for label, v in sorted(best.items(), key=lambda kv: -kv[1])
              if label not in marked]
    text = "Ranked by best images/s (every answer right): " + (", ".join(
        f"{i}. {label} {v:.1f}" for i, (label, v) in enumerate(ranked, 1)) or "none")
    if marked:
        text += "; not ranked: " + "; ".join(f"{label} ({status})"
                                              for label, status in marked.items())
    return text + "."


def _figure(ncols: int, width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
    return plt, fig, list(axes[0])


def _bar_labels(ax, bars, values, spec: str, tops=None, notes=None) -> None:
    """Each bar's value above it (above its whisker: ``tops``), with an optional note."""
    for i, (bar, v) in enumerate(zip(bars, values)):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        top = max(v, tops[i]) if tops is not None and tops[i] is not None else v
        text = f"{v:{spec}}" + (f"\n{notes[i]}" if notes and notes[i] else "")
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, top), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)


def _whiskers(ax, xs, picked, values) -> list:
    """The range of the runs as a whisker on each bar; returns each whisker's top."""
    lo = [r["images_s"] - r.get("images_s_min", r["images_s"]) if r else 0 for r in picked]
    hi = [r.get("images_s_max", r["images_s"]) - r["images_s"] if r else 0 for r in picked]
    ax.errorbar(xs, values, yerr=[lo, hi], fmt="none", ecolor="black", elinewidth=1,
                capsize=2)
    return [r.get("images_s_max") if r else None for r in picked]


def plot_peers(info: dict, rows: list[dict], path: Path) -> None:
    """The project vs the peers: images/s (range as a whisker) and p99 side by side, one
    bar per server and concurrency (legend), values on the bars; a server whose answers
    were dropped or altered is drawn hatched and grey, one that failed is named below."""
    measured = [r for r in rows if "images_s" in r]
    servers = list(dict.fromkeys(r["label"] for r in measured))
    concurrencies = sorted({r["concurrency"] for r in measured})
    plt, fig, (left, right) = _figure(2, 12, 4.8)
    width = 0.8 / max(1, len(concurrencies))
    for k, c in enumerate(concurrencies):
        picked = [next((r for r in measured if r["label"] == s and r["concurrency"] == c),
                       None) for s in servers]
        xs = np.arange(len(servers)) + (k - (len(concurrencies) - 1) / 2) * width
        for ax, key in ((left, "images_s"), (right, "p99_ms")):
            values = [r[key] if r else np.nan for r in picked]
            bars = ax.bar(xs, values, width * 0.92, label=f"{c} requests in flight",
                          color=f"C{k}")
            for bar, r in zip(bars, picked):
                if r and not r["ranked"]:
                    bar.set_facecolor("lightgrey")
                    bar.set_hatch("//")
            tops = _whiskers(ax, xs, picked, values) if key == "images_s" else None
            notes = [r["status"].split(":")[0] if r and not r["ranked"] else ""
                     for r in picked]
            _bar_labels(ax, bars, values, ".0f", tops, notes)
    _served_axes(left, right, servers, 9)
    handles, names = left.get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(names), fontsize=9,
               bbox_to_anchor=(0.5, 0.89), frameon=False)
    notes = [f"{r['label']}: {r['status'].split(':')[0]}" for r in rows if not r["ranked"]]
    import textwrap

    load = info.get("load_average") or ["?"]
    when = f"{info['date']}, load average {load[0]} at the start" + (
        f": {info['label']}" if info.get("label") else "")
    fig.suptitle(f"Same model, same preprocessing, same load: {info['frames']} frames, "
                 f"{info['cores']} cores\n" + textwrap.shorten(when, 130), fontsize=11)
    if notes:
        fig.text(0.5, 0.01, "Grey, hatched, or missing: not ranked (" + "; ".join(
            dict.fromkeys(notes)) + ")", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.05 if notes else 0, 1, 0.86))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Draw the benchmark figures again.")
    parser.add_argument("--replot", nargs="?", type=Path, const=RESULTS_DIR,
                        metavar="FOLDER", help="the folder of bench.json (and peers.json)")
    args = parser.parse_args(argv)
    if args.replot is None:
        parser.error("nothing to do: pass --replot [FOLDER]")
    for path in replot(args.replot):
        print(path)
    return 0


RESULTS_DIR = Path(__file__).parent / "results"


def _served_axes(left, right, labels: list[str], fontsize: int) -> None:
    """The two panels every served figure shares: throughput left, p99 right, one tick
    per label."""
    for ax, title, unit in ((left, "Throughput (higher is better)", "images per second"),
                            (right, "Slowest 1% of requests (lower is better)",
                             "p99 per request of 16 frames, ms")):
        ax.set_xticks(range(len(labels)), labels, fontsize=fontsize)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.margins(y=0.22)
        ax.grid(axis="y", alpha=0.3)


if __name__ == "__main__":
    raise SystemExit(main())
