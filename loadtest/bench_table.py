"""The printed side of ``bench-holds``: a line per level, the summary over runs, the table.

The table compares like with like: per level, the ceiling's and the hub's answered holds
per second (201 + 409) and their hold p99; the ratios are hub / ceiling. With several runs
each cell is the median over the runs, with the min-max spread; the spread of a ratio is
over the runs' own ratios (each run measures both targets back to back under the same
load from others), not a ratio of medians.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadtest.hold_job import median_spread

CLIENT_SATURATED_PCT = 90.0
COLUMNS = (
    "connections",
    "ceiling holds/s",
    "hub holds/s",
    "ratio",
    "ceiling p99",
    "hub p99",
    "p99 ratio",
)


def level_line(name: str, level: dict[str, Any]) -> str:
    """One level's figures; errors and a saturated client are said loudly."""
    lat, win, redis_cpu = level["hold_latency_ms"], level["win_rate"], level["redis_cpu_pct"]
    text = f"  {name} {level['connections']:>4} conns: {level['holds_per_s']:,.0f} holds/s"
    if win is not None:
        text += (
            f" (201 {level['won_per_s']:,.0f}/s, 409 {level['lost_per_s']:,.0f}/s, win {win:.0%})"
            f" p50/p95/p99 {lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f} ms"
        )
    text += (
        f"; cpu % of a core: client {level['client_cpu_pct']:.0f},"
        f" server {level['server_cpu_pct']:.0f}"
    )
    if redis_cpu is not None:
        text += f", redis {redis_cpu:.0f}"
    text += f"; load {level['load_1min']:.2f}"
    if level["errors"]:
        text += (
            f"\n  !!! {name} {level['connections']}: {level['errors']} ERRORS in"
            f" {level['requests']} requests: {level['errors_by_kind']}"
        )
    if level["client_cpu_pct"] > CLIENT_SATURATED_PCT:
        text += (
            f"\n  !!! the client used {level['client_cpu_pct']:.0f} % of its core: it may be"
            " the bottleneck, and these figures understate the server"
        )
    return text


def summarise_runs(runs: list[dict[str, Any]], levels: list[int]) -> list[dict[str, Any]]:
    """Per level: medians over runs, with min and max, of each figure of the table."""
    rows = []
    for i, n in enumerate(levels):
        ceiling = [run_["ceiling"][i] for run_ in runs]
        hub = [run_["hub"][i] for run_ in runs]
        c_rate = [lv["holds_per_s"] for lv in ceiling]
        h_rate = [lv["holds_per_s"] for lv in hub]
        c_p99 = [lv["hold_latency_ms"].get("p99") for lv in ceiling]
        h_p99 = [lv["hold_latency_ms"].get("p99") for lv in hub]
        rows.append(
            {
                "connections": n,
                "ceiling_holds_per_s": _spread(c_rate),
                "hub_holds_per_s": _spread(h_rate),
                "ratio": _spread(_ratios(h_rate, c_rate)),
                "ceiling_p99_ms": _spread(c_p99),
                "hub_p99_ms": _spread(h_p99),
                "p99_ratio": _spread(_ratios(h_p99, c_p99)),
                "ceiling_win_rate": _spread([lv["win_rate"] for lv in ceiling]),
                "hub_win_rate": _spread([lv["win_rate"] for lv in hub]),
            }
        )
    return rows


def _ratios(top: list[Any], bottom: list[Any]) -> list[float | None]:
    """Per run ``top / bottom`` (the spread of a ratio is over the runs' own ratios)."""
    pairs = zip(top, bottom, strict=True)
    return [round(t / b, 4) if t is not None and b else None for t, b in pairs]


def _spread(values: list[Any]) -> dict[str, float] | None:
    if any(v is None for v in values):
        return None
    return median_spread(values)


def table(summary: list[dict[str, Any]], runs: int) -> list[str]:
    """The table (Markdown), medians with the min-max spread when there are several runs."""

    def cell(spread: dict[str, float] | None, unit: Callable[[float], str]) -> str:
        if spread is None:
            return "-"
        text = unit(spread["median"])
        if runs > 1:
            text += f" ({unit(spread['min'])}-{unit(spread['max'])})"
        return text

    def rate(v: float) -> str:
        return f"{v:,.0f}"

    def ratio(v: float) -> str:
        return f"{v:.2f}"

    def ms(v: float) -> str:
        return f"{v:.1f} ms"

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in summary:
        cells = [
            str(row["connections"]),
            cell(row["ceiling_holds_per_s"], rate),
            cell(row["hub_holds_per_s"], rate),
            cell(row["ratio"], ratio),
            cell(row["ceiling_p99_ms"], ms),
            cell(row["hub_p99_ms"], ms),
            cell(row["p99_ratio"], ratio),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def runs_note(runs: int) -> str:
    return "one run" if runs == 1 else f"median of {runs} runs (min-max)"
