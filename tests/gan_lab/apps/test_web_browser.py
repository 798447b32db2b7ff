"""The upload page end to end, in a real headless Chromium driven by Selenium."""

import os
import shutil
import threading

import matplotlib.cbook
import pytest
from werkzeug.serving import make_server

from gan_lab.apps.web import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory, detector_run):
    runs_dir = tmp_path_factory.mktemp("browser-runs")
    first = shutil.copytree(detector_run, runs_dir / "00001-detector-tiny")
    shutil.copytree(detector_run, runs_dir / "00002-detector-second")
    # Port 0: the system picks a free port.
    http = make_server("127.0.0.1", 0, create_app(first, runs_dir=runs_dir, faces="mtcnn"), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(timeout=10)


def _after_navigation(browser, seconds, condition):
    """Wait for `condition` on the page a click navigates to.

    While the old page unloads, Chromium can answer a lookup with "node does not belong to the
    document" (a plain WebDriverException, not a stale-element one), so any driver error is
    retried until the new page satisfies the condition or the time runs out.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, ignored_exceptions=(WebDriverException,)).until(condition)


def test_upload_a_photo_and_read_the_verdict(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    browser.get(server + "/")
    assert browser.find_element(By.ID, "current-run").text == "00001-detector-tiny"
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    browser.find_element(By.ID, "file").send_keys(str(photo))
    browser.find_element(By.ID, "submit").click()
    verdict = _after_navigation(browser, 120, expected_conditions.presence_of_element_located((By.ID, "verdict")))
    assert verdict.text in ("Real", "Fake")
    p_fake = float(browser.find_element(By.ID, "p-fake").text)
    threshold = float(browser.find_element(By.ID, "threshold").text)
    assert 0.0 <= p_fake <= 1.0
    assert verdict.text == ("Fake" if p_fake >= threshold else "Real")
    gradcam = browser.find_element(By.ID, "gradcam")
    assert gradcam.get_attribute("src").startswith("data:image/png;base64,")
    # The browser decoded the overlay: it is a real image, not a broken icon.
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", gradcam) > 0
    # The face was found, named, and the square around it that was classified drawn in green on the upload.
    x, y, w, h = (int(value) for value in browser.find_element(By.ID, "face-box").text.split(", "))
    assert x < 262 < x + w and y < 220 < y + h  # the face's centre in grace_hopper.jpg
    assert "the green square" in browser.find_element(By.ID, "face").text
    green_share = browser.execute_script(
        """
        const image = document.querySelector("figure img");
        const canvas = document.createElement("canvas");
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        const left = Math.round(arguments[0] * image.naturalWidth / 512) + 1;
        const column = context.getImageData(left, 0, 1, image.naturalHeight).data;
        let green = 0;
        for (let i = 0; i < column.length; i += 4) {
            if (column[i] < 60 && column[i + 1] > 190 && column[i + 2] > 50 && column[i + 2] < 130) green++;
        }
        return green / image.naturalHeight;
        """,
        int(browser.find_element(By.ID, "face-box").get_attribute("data-crop").split(",")[0]),
    )
    assert green_share > 0.2
    assert "SynthFaces" in browser.find_element(By.ID, "warning").text


def test_pick_another_run_in_the_browser(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    browser.get(server + "/runs")
    assert "00002-detector-second" in browser.page_source
    browser.find_element(By.CSS_SELECTOR, "form input[value='00002-detector-second'] + button").click()
    # The form posts, then redirects to the upload page, which names the run now in use.
    _after_navigation(
        browser, 30, expected_conditions.text_to_be_present_in_element((By.ID, "current-run"), "00002-detector-second")
    )
    assert browser.current_url.rstrip("/") == server


@pytest.fixture(scope="module")
def lab_server(lab_runs):
    from gan_lab.apps.web import production_server

    server = production_server(create_app(None, runs_dir=lab_runs), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=10)


def _every_image_rendered(browser) -> list[str]:
    """The sources of the page's images the browser could not decode (empty: all rendered)."""
    return browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )


def test_the_lab_index_a_gan_page_and_a_stress_page_render_their_pictures(browser, lab_server, lab_runs):
    from selenium.webdriver.common.by import By

    from detector.base.runs import list_runs

    browser.get(lab_server + "/lab/")
    names = [link.text for link in browser.find_elements(By.CSS_SELECTOR, "table.runs a code")]
    assert sorted(names) == sorted(path.name for path in list_runs(lab_runs))
    for kind in ("gan", "stress"):
        [run] = list_runs(lab_runs, kind)
        browser.find_element(By.LINK_TEXT, run.name).click()
        _after_navigation(browser, 60, lambda driver: driver.find_elements(By.CSS_SELECTOR, "h1 code"))
        assert browser.find_element(By.CSS_SELECTOR, "h1 code").text == run.name
        assert browser.find_elements(By.TAG_NAME, "img")
        _after_navigation(browser, 30, lambda driver: not _every_image_rendered(driver))
        browser.back()
