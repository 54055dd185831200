"""The surge report's words: a skipped audit, an unmeasured ratio, an unsold end explained,
the fan-out sample in plain words, and every flag of every command explained with its
default."""

from __future__ import annotations

from typing import Any

from loadtest import audit, report
from loadtest.__main__ import parser


def _run(
    targets: dict[str, bool | None], figures: dict[str, int], skipped: str | None = None
) -> dict[str, Any]:
    verdict = audit.Audit.skip(skipped, figures) if skipped else audit.Audit(True, [], figures)
    return {"targets": targets, "audit": verdict.as_json(), "meta": {"seats": 100}}


def test_an_audit_without_a_database_is_skipped_not_failed() -> None:
    skipped = audit.Audit.skip("no database given", audit.api_figures({"a": "sold", "b": "free"}))
    assert skipped.ok and skipped.line() == "audit: skipped (no database given)"
    assert "FAILED" not in skipped.line()
    assert skipped.as_json()["figures"] == {"seats": 2, "sold_api": 1, "held_api": 0, "free_api": 1}
    words = dict(report.target_words(_run({"zero_double_sales": None}, {}, "no database given")))
    assert words["zero_double_sales"] == "n/a: not audited (no database given)"


def test_the_ratio_is_not_claimed_without_both_back_to_back_phases() -> None:
    words = dict(report.target_words(_run({"ratio_ge_0_5": None}, {})))
    assert words["ratio_ge_0_5"] == "n/a: no back-to-back comparison in this run"


def test_an_unsold_end_says_what_is_still_held() -> None:
    figures = {"sold_api": 97, "held_api": 3, "free_api": 0}
    words = dict(report.target_words(_run({"sold_out": False}, figures)))
    assert words["sold_out"].startswith("NO: 97 of 100 sold, 3 still held at the end")
    assert "abandoned holds" in words["sold_out"]
    figures = {"sold_api": 90, "held_api": 0, "free_api": 10}
    assert dict(report.target_words(_run({"sold_out": False}, figures)))["sold_out"] == (
        "NO: 90 of 100 sold, 10 free"
    )
    assert dict(report.target_words(_run({"sold_out": True}, figures)))["sold_out"] == "yes"


def test_the_fanout_sample_in_plain_words() -> None:
    words = report.fanout_words({"probes": 4, "changes": 50, "matched": 150, "match_rate": 0.75})
    assert "4 probe watchers" in words and "50 seat changes" in words
    assert "150 of those 200 arrivals (75%)" in words
    assert report.fanout_words({"probes": 0}) == "not measured (no probe watchers)"


def test_every_flag_of_every_command_has_help_and_shows_its_default() -> None:
    main = parser()
    commands = next(a for a in main._actions if a.dest == "command")
    assert set(commands.choices) >= {"surge", "fanout", "bench-holds", "bench-reads"}
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
        text = sub.format_help()
        assert "(default:" in text, name
