"""The lab in a browser, served by waitress on 127.0.0.1: every run's page, its pictures, and what it refuses."""

import dataclasses
import http.client
import re
import shutil
import threading
import urllib.request

import pytest

from detector.base.runs import list_runs, read_json, write_json
from gan_lab.apps.web import create_app, production_server
from gan_lab.arena.run import ArenaConfig, run_arena

IMAGE_TYPES = ("image/png", "image/gif")


@pytest.fixture(scope="module")
def lab(lab_runs, tmp_path_factory):
    """The lab over a copy of the tiny quickstart's runs, plus a second stress run, an interrupted GAN run and an
    arena run of two rounds."""
    runs = tmp_path_factory.mktemp("served-runs")
    for path in list_runs(lab_runs):
        shutil.copytree(path, runs / path.name)
    [stress] = list_runs(runs, "stress")
    shutil.copytree(stress, runs / "00005-stress-again")
    [gan] = list_runs(runs, "gan")
    unfinished = shutil.copytree(gan, runs / "00006-gan-unfinished")
    write_json(unfinished / "config.json", {**read_json(unfinished / "config.json"), "epochs": 40})
    [detector] = list_runs(runs, "detector")
    arena = ArenaConfig(detector=str(detector), gan=str(gan), epochs=1, steps_per_epoch=2, n=16, rounds=2, harden_n=16)
    run_arena(dataclasses.replace(arena, faces=False, inception=False, name="rounds"), runs, progress=False)
    server = production_server(create_app(None, runs_dir=runs), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", runs
    server.close()
    thread.join(timeout=10)


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.headers, response.read()


def _raw_status(base, path):
    """The status of a GET of `path` exactly as written (no client-side normalisation of ../)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", path)
    status = connection.getresponse().status
    connection.close()
    return status


def _absolute(page_url, src):
    return urllib.request.urljoin(page_url, src)


def test_the_index_lists_every_run_by_kind_with_its_status_and_headline(lab):
    base, runs = lab
    status, headers, body = _get(base + "/lab/")
    html = body.decode()
    assert status == 200 and "script-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Server"] == "gan-lab"  # waitress, under the lab's name
    for path in list_runs(runs):
        assert path.name in html
    assert re.search(r"00006-gan-unfinished.*?status interrupted", html, re.S)
    assert re.search(r"fakes caught at epoch 2: [0-9.]+% \[[0-9.]+%, [0-9.]+%\]", html)
    assert re.search(r"test accuracy [0-9.]+, AP [0-9.]+", html)
    assert re.search(
        r"arena-rounds.*?against the detector: .*?; hardened, round 2: (held|evaded at) [0-9.]+", html, re.S
    )


def test_every_page_and_every_picture_on_it_is_served(lab):
    base, runs = lab
    for path in list_runs(runs):
        page_url = f"{base}/lab/runs/{path.name}/"
        status, _, body = _get(page_url)
        assert status == 200, page_url
        sources = [src for src in re.findall(r'<img [^>]*src="([^"]+)"', body.decode()) if not src.startswith("data:")]
        if path.name.split("-")[1] != "detector" or (path / "plots").is_dir():
            assert sources, f"{page_url} shows no pictures"
        for src in sources:
            status, headers, data = _get(_absolute(page_url, src))
            assert status == 200 and headers["Content-Type"] in IMAGE_TYPES and data, src


def test_a_gan_page_shows_any_epochs_grid_and_a_training_run_its_latest(lab):
    from detector.training.lifecycle import claim_run, run_claims

    base, runs = lab
    [gan] = [path for path in list_runs(runs, "gan") if "unfinished" not in path.name]
    html = _get(f"{base}/lab/runs/{gan.name}/?epoch=1")[2].decode()
    assert 'src="samples/epoch-0001.png"' in html and "progress.gif" in html and "reals.png" in html
    with run_claims():
        claim_run(runs / "00006-gan-unfinished")
        assert re.search(r"00006-gan-unfinished.*?status training", _get(base + "/lab/")[2].decode(), re.S)
    assert re.search(r"00006-gan-unfinished.*?status interrupted", _get(base + "/lab/")[2].decode(), re.S)


def test_two_stress_runs_side_by_side_share_one_plot(lab):
    base, runs = lab
    [first, second] = list_runs(runs, "stress")
    status, _, body = _get(f"{base}/lab/compare?a={first.name}&b={second.name}")
    assert status == 200 and 'src="data:image/png;base64,' in body.decode()
    [gan] = list_runs(runs, "gan")[:1]
    assert _raw_status(base, f"/lab/compare?a={first.name}&b={gan.name}") == 400


@pytest.mark.parametrize(
    "path",
    [
        "/lab/runs/../../etc/passwd",
        "/lab/runs/%2e%2e/%2e%2e/etc/passwd",
        "/lab/runs/00004-stress-quickstart/../../../etc/passwd",
        "/lab/runs/00004-stress-quickstart/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/lab/runs/00004-stress-quickstart/..%2f..%2fconfig.json",
        "/lab/runs/00004-stress-quickstart/config.py",
        "/lab/runs/not-a-run/",
        "/lab/runs/synthfaces/metadata.csv",
    ],
)
def test_paths_outside_the_runs_are_refused(lab, path):
    base, _ = lab
    assert _raw_status(base, path) == 404


def test_a_hostile_report_is_rendered_inert(lab):
    base, runs = lab
    hostile = shutil.copytree(runs / "00005-stress-again", runs / "00007-stress-hostile")
    (hostile / "report.md").write_text(
        "# Report\n\n<script>alert(1)</script>\n\n[click](javascript:alert(2)) "
        '![x](plots/epochs.png "t") <img src=x onerror=alert(3)>\n'
    )
    html = _get(f"{base}/lab/runs/{hostile.name}/")[2].decode()
    report = html[html.index('<article class="report">') :]
    assert "<script" not in report and "&lt;script&gt;" in report
    assert "javascript:" not in report and "<img src=x" not in report
    assert 'src="plots/epochs.png"' in report
