"""The index of `tracer run all`: notebook order, honest counts, escaped text, working links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reports.index import IndexEntry, claim_counts, group_by_concept, render_index, section_key

HOSTILE = "<img src=x onerror=alert(1)>"


def entries() -> list[IndexEntry]:
    return [
        IndexEntry(
            "gil_cpu",
            "The GIL",
            "GIL: CPU-bound threading",
            "CPU threads take turns",
            "gil_cpu",
            "ok",
            2.19,
            0.98,
            [("4 CPU threads take as long as one after another", True, "1.08 s vs 1.10 s")],
        ),
        IndexEntry(
            "lock",
            "Locks",
            "7: Thread synchronization using Lock",
            "a lock",
            "runs/lock",
            "ok",
            0.5,
            1.0,
            [("no update is lost", True, "")],
        ),
        IndexEntry(
            "daemon",
            "Threads",
            "2: Daemon threads",
            "a daemon thread",
            "daemon",
            "ok",
            0.31,
            0.02,
            [("killed at exit", True, "iteration 1"), ("exits fast", None, "no mark")],
        ),
        IndexEntry(
            "hello_thread",
            "Threads",
            "1: What is Threading?",
            "hello",
            "hello_thread",
            "ok",
            0.2,
            0.1,
            [],
        ),
        IndexEntry(
            HOSTILE,
            "Threads",
            "10: Evil",
            f"summary {HOSTILE}",
            f"evil dir/{HOSTILE}",
            "timeout",
            None,
            None,
            [(f"claim {HOSTILE}", False, f"detail {HOSTILE}")],
        ),
    ]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("index") / "index.html"
    render_index(entries(), out)
    return out.read_text(encoding="utf-8")


def test_concepts_and_scenarios_follow_the_notebook() -> None:
    groups = group_by_concept(entries())
    assert [name for name, _ in groups] == ["Threads", "Locks", "The GIL"]
    assert [e.scenario for e in groups[0][1]] == ["hello_thread", "daemon", HOSTILE]
    assert section_key("10: Evil") == 10 and section_key("GIL: x") == float("inf")


def test_page_order_and_links(page: str) -> None:
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["Threads", "Locks", "The GIL"]
    links = re.findall(r'<h3><a href="([^"]*)">', page)
    assert links[:2] == ["hello_thread/report.html", "daemon/report.html"]
    assert "runs/lock/report.html" in links
    evil = links[2]
    assert evil.startswith("evil%20dir/%3Cimg") and evil.endswith("/report.html")
    assert not [link for link in links if ":" in link]  # relative, never a scheme


def test_counts_at_the_top(page: str) -> None:
    assert claim_counts(entries()) == {"held": 3, "not held": 1, "not checked": 1}
    tally = re.search(r'<p class="tally" id="tally">(.*?)</p>', page, re.S)
    assert tally
    text = " ".join(re.sub(r"<[^>]+>", "", tally.group(1)).split())
    assert text == "5 scenarios, 1 did not finish normally: 3 held 1 not held 1 not checked"
    assert "a guided tour of the notebook, measured" in page.lower()


def test_badges_per_claim(page: str) -> None:
    verdicts = re.findall(r'<span class="verdict">(.*?)</span>', page)
    assert sorted(verdicts) == ["held", "held", "held", "not checked", "not held"]
    assert "No claim was checked for this run." in page
    assert 'class="claim claim-not-held"' in page and 'class="claim claim-not-checked"' in page


def test_index_is_self_contained_and_escaped(page: str) -> None:
    assert HOSTILE not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)
    assert "timeout" in page and "—" in page  # no wall time or parallelism recorded


def test_empty_index(tmp_path: Path) -> None:
    render_index([], tmp_path / "index.html")
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "No scenario was run." in page and "0 scenarios" in page
