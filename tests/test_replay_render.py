"""The replay summary and failure tables read well at 80 columns and wider: no header
or number is cut with an ellipsis, and the run's identity is always shown."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from autellix.cli.render import failure_table, summary_table
from autellix.metrics import RunSummary
from autellix.replay_report import FailureReason

HEADER_WORDS = ("done", "failed", "aborted", "tok-lat", "mean", "p95", "p99", "e2e", "(s)",
                "prog/s")


def summary(policy="plas", balancer="autellix", engine="http://127.0.0.1:18400", rate=0.5,
            lat=0.0123456, done=38) -> RunSummary:
    pct = {"mean": lat, "p50": lat, "p95": lat * 3, "p99": lat * 9}
    return RunSummary(engine=engine, policy=policy, balancer=balancer, rate=rate, n_programs=40,
                      completed=done, failed=40 - done, aborted=0, token_latency=pct,
                      e2e={"mean": 123.456, "p50": 1, "p95": 2, "p99": 3}, programs_per_s=0.4567,
                      waiting_share=None)


def render(table, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text()


CASES = {
    "one replay run": [summary()],
    "policies and balancers differ": [summary(p, b) for p in ("vllm-priority", "plas", "atlas")
                                      for b in ("round_robin", "autellix")],
    "long endpoints, nothing done": [summary(engine="http://very-long-host-name.example:18400/v1",
                                             lat=math.nan, done=0),
                                     summary(engine="http://10.0.0.5:8000", rate=12.5,
                                             lat=1234.5)],
}


@pytest.mark.parametrize("width", [80, 100, 160])
@pytest.mark.parametrize("case", list(CASES))
def test_summary_table_never_cuts_a_header_or_a_number(case, width):
    text = render(summary_table(CASES[case], "replay swe @ 0.5 programs/s"), width)
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width
    for word in HEADER_WORDS:
        assert word in text, (word, text)
    for s in CASES[case]:  # the run's identity shows, as a column or in the caption
        assert s.policy in text and s.balancer in text
        assert f"{s.completed}/{s.n_programs}" in text


def test_identity_shared_by_every_row_moves_to_the_caption():
    text = render(summary_table([summary()], "t"), 80)
    assert "policy plas" in text and "balancer autellix" in text
    assert "engine 127.0.0.1:18400" in text and "rate 0.5 prog/s" in text
    assert "12.3" in text and "111.1" in text  # ms/token: mean and p99
    many = render(summary_table(CASES["policies and balancers differ"], "t"), 80)
    assert "policy" in many.split("done")[0]  # a header now, above the rows


def test_failure_table_fits_80_columns():
    long = "HTTP 400: This model's maximum context length is 2048 tokens. However, you " \
           "requested 2398 tokens (2218 in the messages, 180 in the completion). Please reduce"
    text = render(failure_table([FailureReason("context length exceeded", 120, 6, long),
                                 FailureReason("timed out", 1, 1, "timed out after 300 s")]), 80)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "context length exceeded" in text and "120" in text and "programs" in text


def test_messages_and_labels_render_literally_not_as_markup():
    text = render(failure_table([FailureReason("HTTP 500", 1, 1, "[/oops] [bold]x[/bold]")]), 80)
    assert "[/oops] [bold]x[/bold]" in text
    assert "policy [my-run]" in render(summary_table([summary(policy="[my-run]")], "t"), 80)


def test_rows_that_differ_only_in_rate_are_named_by_rate():
    text = render(summary_table([summary(rate=0.5), summary(rate=2)], "t"), 80)
    assert "@0.5" in text and "@2" in text and "- / -" not in text
    assert "policy plas" in text  # still in the caption
