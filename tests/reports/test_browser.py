"""End to end: a generated report renders in headless Chromium without errors or network use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_html_report import EXPECTED

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_report_renders_offline_in_chromium(
    reports,  # noqa: ANN001
    family: str,
    tmp_path: Path,
) -> None:
    """A real run's page loads with no console errors, requests only itself and data: URIs,
    shows every figure, and has exactly its family's sections; a full-page screenshot is kept
    under the test's tmp dir."""
    browser_path = _chromium()
    if browser_path is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium); browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    run, _ = reports(family)
    url = (run / "report.html").resolve().as_uri()
    requested: list[str] = []
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})

            def route(r) -> None:  # noqa: ANN001
                requested.append(r.request.url)
                if r.request.url == url or r.request.url.startswith("data:"):
                    r.continue_()
                else:
                    r.abort()  # never let a report reach the network, even in a failing run

            page.route("**/*", route)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto(url, wait_until="load")
            n_images = page.locator("img").count()
            loaded = page.evaluate(
                "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
            )
            shown = page.evaluate("Array.from(document.querySelectorAll('section'), s => s.id)")
            title = page.title()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert [u for u in requested if u != url and not u.startswith("data:")] == []
    assert n_images >= 4 and loaded
    assert sorted(shown) == sorted(EXPECTED[family])
    assert "Simulation report" in title
    assert (tmp_path / "report.png").stat().st_size > 10_000
