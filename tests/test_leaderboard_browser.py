"""A real browser opens the static board from disk, sorts by a column, and the order is checked; the
over-refusal flag and the harm vs over-refusal scatter render.

Needs headless Chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`) and the
`selenium` package; skipped with the reason when any is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from safety_bench.leaderboard.ranking import build_board
from safety_bench.leaderboard.render import write_board
from safety_bench.leaderboard.store import Store

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM_BIN"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), shutil.which("google-chrome")) if p), None)
DRIVER = os.environ.get("CHROMEDRIVER_BIN") or shutil.which("chromedriver")
SCREENSHOT_DIR = os.environ.get("SAFETY_BENCH_SCREENSHOT_DIR")


def _records(model: str, harmful_share: float, refused_benign: int) -> list[dict]:
    """Constructed judged records (test data): 11 categories x 4 prompts + 10 benign prompts."""
    from safety_bench.categories import SLUGS

    rows = []
    for c, slug in enumerate(SLUGS):
        for i in range(4):
            harmful = (c * 4 + i) < round(harmful_share * 44)
            rows.append({"id": f"{slug}-{i}", "category": slug, "task": "safety_landscape_mini",
                         "instruction": f"do {slug} {i}", "response": "<b>ok</b>" if harmful else "I cannot",
                         "judge": "keyword", "harmful": harmful, "refused": not harmful, "error": None,
                         "score": None, "judge_version": "1"})
    for i in range(10):
        rows.append({"id": f"benign-{i}", "category": "benign", "task": "safety_benign", "instruction": f"b{i}",
                     "response": "x", "judge": "keyword", "harmful": i >= refused_benign,
                     "refused": i < refused_benign, "error": None, "score": None, "judge_version": "1"})
    return rows


def _landscape(folder: Path, name: str, coords: list, curves: list) -> Path:
    """A landscape.json written to the contract (test data): the board draws its plots from it."""
    from safety_bench.landscape.visage import summarize_visage

    folder.mkdir(parents=True, exist_ok=True)
    two_d = len(coords) == 2
    land = {"kind": "2d_random" if two_d else "1d_random", "coords": coords,
            "directions": [[0, 1]] if two_d else [0, 1], "judges": ["keyword"], "task": "safety_landscape_mini",
            "asr": {"keyword": curves}, "visage": {"keyword": summarize_visage(curves, two_d=two_d)},
            "model": {"name": f"{name}-as-swept", "weights_id": f"test:{name}"}, "prompt_set_hash": "p1",
            "n_prompts": 8, "max_gen_toks": 16}
    (folder / "landscape.json").write_text(json.dumps(land))
    return folder


@pytest.fixture()
def board_dir(tmp_path: Path) -> Path:
    """Four models, three with landscapes: south 1D (VISAGE high), west a 3x3 2D grid (lower), north a
    corrupt landscape run (stays on the board, marked partial); the harm-rate order south, west, north, east
    is also the ranking."""
    store = Store(tmp_path / "store")
    for name, share, refused in (("north", 0.5, 1), ("south", 0.1, 6), ("east", 0.9, 0), ("west", 0.3, 3)):
        rows = _records(name, share, refused)
        gens = [{k: r[k] for k in ("id", "category", "task", "instruction", "response")} for r in rows]
        store.add_base_run(name, gens, {"model": {"weights_id": f"test:{name}"}}, {"keyword": rows})
    xs = [-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2]
    store.add_landscape("south", _landscape(tmp_path / "l-south", "south", [xs], [
        [100, 87.5, 37.5, 12.5, 0, 12.5, 25, 75, 100], [100, 100, 50, 12.5, 0, 0, 12.5, 62.5, 100]]))
    third = [-0.1, 0.0, 0.1]
    store.add_landscape("west", _landscape(tmp_path / "l-west", "west", [third, third],
                                           [[[100, 50, 100], [25, 12.5, 37.5], [100, 62.5, 100]]]))
    run = store.add_landscape("north", _landscape(tmp_path / "l-north", "north", [xs], [[50.0] * 9, [50.0] * 9]))
    (run.path / "landscape.json").write_text('{"kind": "1d_random", "visage": {"keyw')  # truncated
    write_board(build_board(store), tmp_path / "board")
    return tmp_path / "board"


def _driver():
    if not CHROMIUM or not DRIVER:
        pytest.skip("no headless browser: install Debian packages chromium and chromium-driver "
                    "(or set CHROMIUM_BIN and CHROMEDRIVER_BIN)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("the selenium package is not installed (pip install selenium)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="sb-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=opts), profile


def _order(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [tr.get_attribute("data-model") for tr in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")]


def test_board_sorts_in_headless_chromium(board_dir: Path, tmp_path: Path):
    from selenium.webdriver.common.by import By

    driver, profile = _driver()
    try:
        driver.get((board_dir / "index.html").as_uri())
        ranked = json.loads((board_dir / "leaderboard.json").read_text())["rows"]
        assert _order(driver) == [r["model"] for r in ranked]  # initial order = the ranking
        assert _order(driver) == ["south", "west", "north", "east"]  # no landscapes: by harm rate
        header = driver.find_element(By.ID, "col-over_refusal")
        header.click()
        assert _order(driver) == ["east", "north", "west", "south"]  # over-refusal 0, 10, 30, 60 %
        header.click()
        assert _order(driver) == ["south", "west", "north", "east"]
        driver.find_element(By.ID, "col-model").click()
        assert _order(driver) == ["east", "north", "south", "west"]
        # over-refusal above the board's 20% threshold is flagged, visibly, on the flagged rows only
        flagged = driver.find_elements(By.CSS_SELECTOR, "#board tbody tr[data-flagged='yes']")
        assert sorted(tr.get_attribute("data-model") for tr in flagged) == ["south", "west"]  # 60 %, 30 %
        for tr in flagged:
            flag = tr.find_element(By.CSS_SELECTOR, ".over-refusal-flag")
            assert flag.is_displayed() and "over-refuses" in flag.text
        assert not driver.find_elements(By.CSS_SELECTOR, "tr[data-flagged='no'] .over-refusal-flag")
        # the harm vs over-refusal scatter renders (the image loaded and has a size)
        plot = driver.find_element(By.ID, "tradeoff-plot")
        assert plot.is_displayed()
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", plot) > 200
        shot_dir = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
        shot_dir.mkdir(parents=True, exist_ok=True)
        shot = shot_dir / "leaderboard-sorted.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 5000
        assert "partial" in driver.find_element(By.CSS_SELECTOR, 'tr[data-model="north"]').text
        for model in ("south", "west"):  # the per-model sections with their plots, as a reader sees them
            driver.get((board_dir / "index.html").as_uri() + f"#model-{model}")
            section = driver.find_element(By.ID, f"model-{model}")
            assert section.find_elements(By.TAG_NAME, "img")
            assert section.screenshot(str(shot_dir / f"leaderboard-model-{model}.png"))
        plots = sorted((board_dir / "plots").glob("*.png"))
        assert {p.name.split("--")[0] for p in plots} == {"south", "west"}
        for png in plots:  # the plots themselves, to look at
            shutil.copy2(png, shot_dir / f"plot-{png.name.replace('--', '-')}")
        driver.get((board_dir / "samples" / "east.html").as_uri())
        cell = driver.find_elements(By.CSS_SELECTOR, "pre.response")[0]
        assert cell.text == "<b>ok</b>"  # shown as text, not as markup
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
