"""Screenshots of the lab's pages for the README and docs/, from a runs folder, in headless Chromium.

    python docs/make_screenshots.py runs [--out docs] [--chromium /usr/bin/chromium --chromedriver /usr/bin/chromedriver]

Serves the lab as `gan-lab serve` does (waitress, 127.0.0.1, a free port) and saves the index
(lab-index.png), the newest GAN run's page (lab-gan.png) and the newest stress run's page
(lab-stress.png), each the full height of the page at 1200 px wide.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

from detector.base.runs import list_runs
from gan_lab.apps.web import create_app, production_server


def _browser(chromium: str, chromedriver: str, profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def _screenshot(browser, url: str, path: Path) -> None:
    browser.set_window_size(1200, 800)
    browser.get(url)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(int(height) + 200, 3000))
    browser.save_screenshot(str(path))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    server = production_server(create_app(None, runs_dir=args.runs_dir), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}/lab"
    with tempfile.TemporaryDirectory() as profile:
        browser = _browser(args.chromium, args.chromedriver, profile)
        try:
            _screenshot(browser, f"{base}/", args.out / "lab-index.png")
            for kind in ("gan", "stress"):
                newest = list_runs(args.runs_dir, kind)[-1:]
                if newest:
                    _screenshot(browser, f"{base}/runs/{newest[0].name}/", args.out / f"lab-{kind}.png")
        finally:
            browser.quit()
            server.close()


if __name__ == "__main__":
    main()
