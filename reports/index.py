"""The index page of ``tracer run all``: a guided tour of the notebook, measured.

One self-contained HTML file (no script, no network) next to the run folders. Scenarios are grouped
by concept, and concepts and scenarios follow the notebook: a section that starts with a number
("7: Thread synchronization ...") sorts by that number, the others keep the order they were given
in, after the numbered ones. Each entry links to its ``report.html`` and shows its claims as held /
not held / not checked, so the page says at a glance which of the notebook's statements this
machine confirmed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from reports.html import template_environment
from tracer.runfolder import atomic_write_text

_SECTION_NUMBER = re.compile(r"\s*(\d+)\b")


@dataclass
class IndexEntry:
    """One scenario's run, as the index shows it."""

    scenario: str
    concept: str
    section: str
    summary: str
    folder: str  # the run folder, relative to the index file
    status: str  # the target's status (ok | failed | timeout | ...), or "error" if not recorded
    wall_s: float | None = None
    parallelism: float | None = None
    claims: list[tuple[str, bool | None, str]] = field(default_factory=list)


@dataclass
class ClaimView:
    claim: str
    verdict: str  # held | not held | not checked
    css: str
    detail: str


@dataclass
class EntryView:
    entry: IndexEntry
    href: str
    claims: list[ClaimView]
    ok: bool


@dataclass
class ConceptView:
    name: str
    entries: list[EntryView]


def section_key(section: str) -> float:
    """The notebook position of a section: its leading number, or after every numbered one."""
    match = _SECTION_NUMBER.match(section)
    return float(match.group(1)) if match else float("inf")


def group_by_concept(entries: list[IndexEntry]) -> list[tuple[str, list[IndexEntry]]]:
    """Concepts in notebook order (by their earliest section), entries in notebook order within.

    Ties keep the caller's order, so unnumbered sections stay as the registry listed them."""
    order = sorted(range(len(entries)), key=lambda i: (section_key(entries[i].section), i))
    groups: dict[str, list[IndexEntry]] = {}
    for index in order:
        groups.setdefault(entries[index].concept, []).append(entries[index])
    return list(groups.items())


def claim_counts(entries: list[IndexEntry]) -> dict[str, int]:
    counts = {"held": 0, "not held": 0, "not checked": 0}
    for entry in entries:
        for _, held, _ in entry.claims:
            counts[_verdict(held)] += 1
    return counts


def _verdict(held: bool | None) -> str:
    if held is None:
        return "not checked"
    return "held" if held else "not held"


def _href(folder: str) -> str:
    """A relative link to the run's report; the folder is percent-encoded, never a scheme."""
    path = folder.replace("\\", "/").strip("/")
    return quote(f"{path}/report.html" if path else "report.html", safe="/")


def _entry_view(entry: IndexEntry) -> EntryView:
    claims = [
        ClaimView(text, _verdict(held), _verdict(held).replace(" ", "-"), detail)
        for text, held, detail in entry.claims
    ]
    return EntryView(entry, _href(entry.folder), claims, entry.status == "ok")


def render_index_html(entries: list[IndexEntry]) -> str:
    concepts = [
        ConceptView(name, [_entry_view(e) for e in group])
        for name, group in group_by_concept(entries)
    ]
    return (
        template_environment()
        .get_template("index.html.j2")
        .render(
            concepts=concepts,
            scenarios=len(entries),
            failed=sum(1 for e in entries if e.status != "ok"),
            counts=claim_counts(entries),
        )
    )


def render_index(entries: list[IndexEntry], out: Path) -> None:
    """Write the index for ``entries`` to ``out`` atomically; links are relative to ``out``."""
    atomic_write_text(out, render_index_html(entries))
