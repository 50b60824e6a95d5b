"""The explorer in a real browser (headless Debian Chromium through selenium): upload an image, run, see the
attacked map and the scores; a corrupt file and a folder without a model get a message on the page. The page loads
nothing from outside the local server. Skipped, with the reason, when chromium or chromedriver is missing."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest


pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver")

from demo_helpers import serve  # noqa: E402
from PIL import Image  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from hf_robattr.demo import build_app  # noqa: E402


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1600",
)
WAIT_S = 120  # the attack runs on a shared CPU


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        reason = (
            f"browser test skipped: chromium={chromium!r}, chromedriver={driver!r}; install the Debian packages "
            "`chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver)"
        )
        print(reason)
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory, monkeypatch_module):
    chromium, driver_path = _browser_paths()
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch_module.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = Options()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def image_page(vit_run):
    app = build_app(vit_run)
    yield serve(app)
    app.close()


def _wait(driver, condition, what: str):
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.5).until(lambda d: condition(d))
    except TimeoutException:
        pytest.fail(f"timed out waiting for {what}; page text: {driver.find_element(By.TAG_NAME, 'body').text[:2000]}")


def _upload(driver, path: Path) -> None:
    field = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#input input[type=file]"), "the upload field")
    field[0].send_keys(str(path))


def _body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def test_upload_run_and_see_the_attacked_map(browser, image_page, tmp_path, artifacts):
    picture = tmp_path / "upload.png"
    stripes = np.zeros((30, 50, 3), dtype=np.uint8)
    stripes[:, ::5] = (200, 40, 40)  # a size the model does not take: the demo resizes it
    Image.fromarray(stripes).save(picture)
    browser.get(image_page)
    _wait(browser, lambda d: "attribution explorer" in _body(d), "the page")
    _upload(browser, picture)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#input img"), "the uploaded image preview")
    browser.find_element(By.CSS_SELECTOR, "#explain").click()
    maps = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#maps img"), "the attribution maps")
    _wait(browser, lambda d: "top-k intersection" in _body(d), "the scores")
    text = _body(browser)
    for expected in ("Kendall tau", "max-sensitivity", "prediction", "after the attack"):
        assert expected in text, expected
    assert browser.execute_script("return arguments[0].naturalWidth", maps[0]) > 300  # the rendered figure
    time.sleep(0.5)
    shot = artifacts / "demo_image_explained.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    # nothing came from outside the local server (no CDN, no fonts, no analytics)
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    outside = [url for url in resources if not url.startswith(image_page.rstrip("/")) and not url.startswith("data:")]
    assert outside == []


def test_corrupt_file_gets_a_message(browser, image_page, tmp_path, artifacts):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    browser.get(image_page)
    _wait(browser, lambda d: "attribution explorer" in _body(d), "the page")
    _upload(browser, corrupt)
    time.sleep(1.0)
    browser.find_element(By.CSS_SELECTOR, "#explain").click()
    _wait(browser, lambda d: "Could not read 'corrupt.png' as an image" in _body(d), "the error message")
    assert "Traceback" not in _body(browser)
    browser.save_screenshot(str(artifacts / "demo_corrupt_file.png"))


def test_folder_without_a_model_gets_a_message(browser, tmp_path):
    (tmp_path / "results.json").write_text("{}")
    app = build_app(tmp_path)
    try:
        browser.get(serve(app))
        _wait(browser, lambda d: "holds no model" in _body(d), "the error message")
        assert "config.json" in _body(browser) and "Traceback" not in _body(browser)
    finally:
        app.close()
