"""End to end in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Starts the app on 127.0.0.1 with a tiny random LEO, uploads a start image, clicks Generate and waits
until a playable video is in the page (decoded by the browser: ``readyState`` >= 2, the expected
duration and size, no media error); then checks that a user error shows up as readable text in the
page and that a Motion slider re-renders the source; a zero-byte upload shows our one-line message.
A screenshot is saved as a test artifact (``$LEO_TEST_ARTIFACTS`` or the test's tmp folder).

``LEO_README_SCREENSHOT=1`` runs the same test on the embedded demo model instead and also writes the
README's ``docs/images/ui_screenshot.png``.

Without Chromium or Playwright the test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

import pytest

pytest.importorskip("gradio")

CHROMIUM = Path(os.environ.get("LEO_CHROMIUM", "/usr/bin/chromium"))
README_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "ui_screenshot.png"
FOR_README = os.environ.get("LEO_README_SCREENSHOT") == "1"


def _browser_or_skip():
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem, sync_playwright = "playwright is not installed (pip install playwright)", None
    if problem is None and not CHROMIUM.is_file():
        problem = f"{CHROMIUM}: no Chromium (apt-get install chromium, or set LEO_CHROMIUM)"
    if problem:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(problem)
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture
def served_app(tmp_path, monkeypatch):
    """(URL, models) of the app on a free loopback port: a tiny random LEO, or the demo model for the README."""
    from tiny_models import tiny_pipeline

    from leo_video.ui.app import build_ui, launch
    from leo_video.ui.handlers import AppContext, UIModels
    from leo_video.ui.validation import UploadLimits

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    if FOR_README:
        from leo_video.pipelines.demo import load_demo_pipeline

        models, limits = UIModels.from_pipeline(load_demo_pipeline(), "demo model"), UploadLimits()
    else:
        models, limits = UIModels.from_pipeline(tiny_pipeline(), "tiny random LEO"), UploadLimits(default_generate_frames=12)
    app = build_ui(AppContext(models, tmp_path / "app", limits))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(app, limits, port=port, block=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", models, limits
    finally:
        app.close()


def _start_image(folder: Path) -> Path:
    from leo_video.data.synthetic import render_synthetic_video
    from leo_video.media.image import save_image

    return save_image(folder / "upload_person.png", render_synthetic_video(7, 1, 96, index=0)[0])


@contextlib.contextmanager
def _app_page(sync_playwright, url: str):
    """A headless Chromium page on the served app, closed afterwards."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            yield page
        finally:
            browser.close()


def test_upload_generate_and_play_in_chromium(served_app, tmp_path):
    sync_playwright = _browser_or_skip()
    url, models, limits = served_app
    artifacts = Path(os.environ.get("LEO_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    image = _start_image(tmp_path)
    with _app_page(sync_playwright, url) as page:
        generate = page.get_by_role("button", name="Generate", exact=True)
        generate.wait_for(timeout=20_000)
        page.locator("#generate-image input[type=file]").set_input_files(str(image))
        page.locator("#generate-image img[src*='upload_person']").wait_for(timeout=20_000)  # the upload is in
        generate.click()
        page.wait_for_function(
            "() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }",
            timeout=45_000)
        state = page.evaluate(
            "() => { const v = document.querySelector('video');"
            " return {src: v.currentSrc, duration: v.duration, width: v.videoWidth, error: v.error}; }")
        page.screenshot(path=str(artifacts / "ui_generate.png"), full_page=True)
        print(f"screenshot: {artifacts / 'ui_generate.png'}")
        if FOR_README:
            shutil.copyfile(artifacts / "ui_generate.png", README_SCREENSHOT)
        assert state["error"] is None and state["width"] == models.size
        assert state["duration"] == pytest.approx(limits.default_generate_frames / models.fps, abs=0.15)
        assert "generate-" in state["src"] and state["src"].endswith(".mp4")
        assert page.locator("img[src*='strip-']").count() == 1  # the strip of frames

        page.get_by_role("tab", name="Animate").click()
        page.get_by_role("button", name="Animate", exact=True).click()
        page.get_by_text("source image: missing (upload an image)").first.wait_for(timeout=20_000)

        page.get_by_role("tab", name="Motion").click()  # a slider moves the source image
        page.locator("#motion-source input[type=file]").set_input_files(str(image))
        moved = page.locator("#motion-frame img")
        moved.wait_for(timeout=20_000)
        still = moved.get_attribute("src")
        slider = page.get_by_label("number input for direction 1", exact=True)  # not 10, 11, ... (20 directions)
        slider.fill("2.5")
        slider.press("Enter")
        page.wait_for_function(f"() => document.querySelector('#motion-frame img').src != {still!r}",
                               timeout=20_000)


def test_broken_uploads_show_our_one_line_message(served_app, tmp_path):
    """A zero-byte PNG in Generate and in Motion: our "start image: file is empty", never Gradio's
    "Could not preprocess input component ..." with a temp path (issue 24)."""
    sync_playwright = _browser_or_skip()
    url, _, _ = served_app
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with _app_page(sync_playwright, url) as page:
        generate = page.get_by_role("button", name="Generate", exact=True)
        generate.wait_for(timeout=20_000)
        page.locator("#generate-image input[type=file]").set_input_files(str(empty))
        generate.click()
        page.get_by_text("start image: file is empty").first.wait_for(timeout=20_000)

        page.get_by_role("tab", name="Motion").click()  # the upload itself runs the model here
        page.locator("#motion-source input[type=file]").set_input_files(str(empty))
        page.get_by_text("source image: file is empty").first.wait_for(timeout=20_000)
        text = page.locator("body").inner_text()
        assert "preprocess" not in text and "UnidentifiedImageError" not in text and str(tmp_path) not in text


def test_readme_screenshot_is_present():
    """docs/images/ui_screenshot.png (made by this test's setup) exists and is a real PNG."""
    assert README_SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and README_SCREENSHOT.stat().st_size > 20_000
