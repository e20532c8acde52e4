"""Ranking, Pareto frontier, generated files, and the HTML page in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefgym.leaderboard.protocol import load_protocol
from prefgym.leaderboard.render import pareto_front, rank, render_board, render_html, render_markdown

from .conftest import load_entry, save_entry

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "outputs" / "leaderboard"


def _entry(name: str, gold: float, kl: float) -> dict:
    return {"name": name, "metrics": {"gold_score": gold, "kl_to_base": kl, "perplexity": 10.0, "distinct_1": 0.5,
                                      "distinct_2": 0.5}, "method": {"name": "sample", "n": 1}, "cost": {}}


def test_pareto_front_both_directions():
    assert pareto_front([(1.0, 5.0), (0.5, 1.0), (0.4, 2.0), (1.0, 6.0)], ("max", "min")) == [True, True, False, False]
    assert pareto_front([(1.0, 1.0), (2.0, 2.0)], ("min", "max")) == [True, True]
    assert pareto_front([], ("max", "min")) == []


def test_rank_within_budget_by_gold_then_over_budget(toy_board):
    protocol = load_protocol(toy_board)  # budget 5.0
    rows = rank([_entry("far", 0.9, 50.0), _entry("good", 0.6, 1.0), _entry("best", 0.7, 4.0),
                 _entry("base", 0.1, 0.0)], protocol)
    assert [(r["result"]["name"], r["rank"], r["pareto"]) for r in rows] == [
        ("best", 1, True), ("good", 2, True), ("base", 3, True), ("far", None, True)]


def test_required_ranges_keep_degenerate_entries_unranked(toy_board):
    import dataclasses

    protocol = load_protocol(toy_board)
    protocol = dataclasses.replace(protocol, ranking={**protocol.ranking, "require": {"completion_tokens": [8, 1e9]}})
    empty, full = _entry("empty", 1.0, 0.5), _entry("full", 0.2, 0.5)
    empty["metrics"]["completion_tokens"], full["metrics"]["completion_tokens"] = 1.5, 20.0
    rows = rank([empty, full], protocol)
    assert [(r["result"]["name"], r["rank"]) for r in rows] == [("full", 1), ("empty", None)]
    assert rows[1]["note"] == "completion_tokens 1.5 outside the required [8, ∞)"


def test_render_writes_then_is_up_to_date_then_detects_edits(toy_board):
    assert {p.name for p in render_board(toy_board)} == {"README.md", "index.html"}
    assert render_board(toy_board, check=True) == []
    result = load_entry(toy_board, "tuned")
    result["description"] = "changed"
    save_entry(toy_board, "tuned", result)
    assert render_board(toy_board, check=True) == []  # descriptions are not shown in the tables
    result["metrics"]["gold_score"] = 0.5
    save_entry(toy_board, "tuned", result)
    assert {p.name for p in render_board(toy_board, check=True)} == {"README.md", "index.html"}


def test_rendering_escapes_entry_text(toy_board):
    protocol = load_protocol(toy_board)
    evil = _entry("x", 0.1, 0.1)
    evil["method"] = {"name": "<script>alert(1)</script>|", "n": 1}
    page, table = render_html(protocol, [evil]), render_markdown(protocol, [evil])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\\|" in table


def _chromium_or_fail() -> None:
    if not CHROMIUM.is_file():
        pytest.fail("Chromium is needed for the leaderboard page test: apt-get install -y chromium "
                    "(Debian's package, /usr/bin/chromium); Playwright drives it and never downloads a browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("the leaderboard page test needs Playwright's Python package: pip install playwright "
                    "(the dev extra); it drives /usr/bin/chromium and never downloads a browser")


def _open_and_check(browser, page_path: Path, screenshot: Path) -> tuple[list[str], int]:
    """Load a page; return its console errors/warnings and failed requests, and the number of plotted points."""
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    points = page.locator("svg circle").count()
    assert page.locator("tbody tr").count() == points
    if points:
        box = page.locator("svg").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 200
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return errors, points


def test_html_pages_render_in_headless_chromium_without_console_errors(toy_board, monkeypatch):
    """The toy board and every board in the repository; screenshots go to outputs/leaderboard/."""
    _chromium_or_fail()
    from playwright.sync_api import sync_playwright

    from prefgym.leaderboard.protocol import find_boards

    render_board(toy_board)
    pages = {"toy": toy_board / "index.html"}
    repo_boards = find_boards(Path(__file__).resolve().parents[2] / "leaderboards")
    pages.update({b.name: b / "index.html" for b in repo_boards})
    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            results = {name: _open_and_check(browser, path, SCREENSHOTS / f"{name}.png")
                       for name, path in pages.items()}
        finally:
            browser.close()
    assert {name: errors for name, (errors, _) in results.items() if errors} == {}
    assert results["toy"][1] == 2
    for name in pages:
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5000
