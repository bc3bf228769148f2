"""The course's two kinds of chart: bars that compare timings, and lines over a sweep.

Each returns a matplotlib Figure that pyplot does not track: a notebook shows it once (as the
cell's value), and the benchmark saves it with `fig.savefig` without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure


def _show_figures_in_jupyter() -> None:
    """Let a Figure that is a cell's value display as a PNG (pyplot would, but it also tracks figures)."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"})


_show_figures_in_jupyter()


def plot_comparison(groups: Mapping[str, Mapping[str, float]], *, title: str, ylabel: str = "seconds",
                    fmt: str = "{:.2f}") -> Figure:
    """Grouped bars: {group: {bar: value}}, e.g. {"this machine": {"sequential": 9.1, "concurrent": 5.0},
    "the book": {"sequential": 21.8, "concurrent": 4.8}}.  Each bar is labelled with its value."""
    bars = list(dict.fromkeys(bar for values in groups.values() for bar in values))
    fig = Figure(figsize=(7, 4), layout="tight")
    ax = fig.subplots()
    width = 0.8 / max(len(bars), 1)
    for i, bar in enumerate(bars):
        xs = [g + i * width for g in range(len(groups))]
        heights = [values.get(bar, 0.0) for values in groups.values()]
        rects = ax.bar(xs, heights, width, label=bar)
        ax.bar_label(rects, labels=[fmt.format(h) for h in heights], padding=2, fontsize=9)
    ax.set_xticks([g + width * (len(bars) - 1) / 2 for g in range(len(groups))], list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.15)
    if len(bars) > 1:
        ax.legend()
    return fig


def plot_sweep(x: Sequence[float], series: Mapping[str, Sequence[float]], *, title: str, xlabel: str,
               ylabel: str, ceiling: Mapping[str, Sequence[float]] | None = None, logx: bool = False,
               spread: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> Figure:
    """One line per series over a shared x axis; `ceiling` series are drawn dashed (e.g. pgbench).
    `spread` gives a series (by label) its lowest and highest values per x, drawn as a band, so
    that a difference smaller than the run-to-run spread does not pass for a result."""
    fig = Figure(figsize=(7, 4), layout="tight")
    ax = fig.subplots()
    for label, ys in series.items():
        line, = ax.plot(x, ys, marker="o", label=label)
        if spread and label in spread:
            low, high = spread[label]
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    for label, ys in (ceiling or {}).items():
        ax.plot(x, ys, linestyle="--", marker="x", label=label)
    ax.set_ylim(bottom=0)  # from zero, so noise does not look like a trend
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def plot_timeline(groups: Mapping[str, Mapping[str, tuple[float, float]]], *, title: str,
                  xlabel: str = "seconds since the start") -> Figure:
    """When each coroutine ran: {panel: {coroutine: (start, end)}}, one horizontal bar per coroutine
    and one panel per way of running them, on a shared time axis.  Overlapping bars are
    concurrency you can see; printed durations only let you infer it."""
    fig = Figure(figsize=(7, 1.2 + 1.1 * len(groups)), layout="tight")
    axes = fig.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (panel, spans) in zip(axes, groups.items(), strict=True):
        names = list(spans)
        ax.barh(range(len(names)), [end - start for start, end in spans.values()],
                left=[start for start, _ in spans.values()], height=0.5, color="tab:blue")
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()  # the first coroutine on top
        ax.set_title(panel, fontsize=10, loc="left")
        ax.grid(True, axis="x", alpha=0.3)
    axes[-1].set_xlabel(xlabel)
    axes[-1].set_xlim(left=0)
    fig.suptitle(title)
    return fig
