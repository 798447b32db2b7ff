import json

import pytest

from detector.base.runs import list_runs
from gan_lab.apps.quickstart import PRESETS, QuickstartConfig
from gan_lab.cli import main


def test_presets_resolve_and_explicit_options_win():
    config = QuickstartConfig(preset="tiny", size=48).resolved()
    assert config.size == 48 and config.gan_epochs == PRESETS["tiny"]["gan_epochs"]
    assert QuickstartConfig().resolved().size == 64
    assert QuickstartConfig(preset="full").resolved().generator_preset == "seed128"
    with pytest.raises(ValueError, match="preset"):
        QuickstartConfig(preset="huge").resolved()


def test_the_stress_step_bounds_its_costly_scorers_and_takes_the_trainings_precision():
    from gan_lab.apps.quickstart import _step_configs

    detector, gan, stress = _step_configs(QuickstartConfig(precision="mixed_bfloat16").resolved(), "data")
    assert (stress.n, stress.faces_n, stress.inception_n) == (400, 256, 128)
    assert detector.precision == gan.precision == "mixed_bfloat16"
    _, _, tiny = _step_configs(QuickstartConfig(preset="tiny").resolved(), "data")
    assert tiny.faces_n == tiny.inception_n == tiny.n == PRESETS["tiny"]["stress_n"]


@pytest.mark.slow
def test_tiny_quickstart_writes_every_promised_output(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["quickstart", "--preset", "tiny", "--runs-dir", str(runs), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    [run] = list_runs(runs, "quickstart")
    assert f"Report: {run / 'report.md'}" in out
    assert f"gan-lab serve --runs-dir {runs}, then open http://127.0.0.1:5000/lab" in out
    state = json.loads((run / "state.json").read_text())
    detector_run, gan_run, stress_run = (runs / state[key].split("/")[-1] for key in ("detector", "gan", "stress"))
    assert (detector_run / "model.keras").is_file() and (detector_run / "metrics.json").is_file()
    assert len(list((gan_run / "samples").glob("epoch-*.png"))) == 2
    assert (gan_run / "progress.gif").is_file()
    assert (stress_run / "results.csv").is_file() and (stress_run / "report.md").is_file()
    report = (run / "report.md").read_text()
    for linked in ("report.md", "samples/epoch-0002.png", "progress.gif"):
        assert linked in report
    # Every relative link in the report resolves.
    import re

    for target in re.findall(r"\]\(([^)]+)\)", report):
        assert (run / target).exists(), target
    metrics = json.loads((run / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["stress"]] == [1, 2]
    assert 0.0 <= metrics["detector"]["accuracy"] <= 1.0
    # The default precision "auto" is recorded as what it became here, by the quickstart and both trainings.
    from detector.training.scaling import resolve_precision

    for recorded in (run, detector_run, gan_run):
        assert json.loads((recorded / "config.json").read_text())["precision"] == resolve_precision("auto")

    # Running it again with --resume keeps every finished step.
    assert main(["quickstart", "--resume", str(run)]) == 0
    assert "already done" in capsys.readouterr().out
    assert len(list(runs.glob("*-detector-*"))) == 1


def test_the_report_shows_the_epoch_with_the_most_faces_when_it_is_not_the_last(tmp_path):
    from detector.base.runs import write_history, write_json
    from gan_lab.apps.quickstart import _most_faces_lines

    gan_run = tmp_path / "00002-gan-quickstart-64px"
    gan_run.mkdir()
    write_json(gan_run / "metrics.json", {"real_faces_found": 0.875})
    for shares, expected in (([0.1, 0.9, 0.9, 0.5], 3), ([0.1, 0.5], None), ([0.0, 0.0], None)):
        rows = [{"epoch": epoch, "faces_found": share} for epoch, share in enumerate(shares, start=1)]
        write_history(gan_run / "history.csv", rows, ("epoch", "faces_found"))
        lines = _most_faces_lines(tmp_path, gan_run)
        if expected is None:
            assert lines == []
            continue
        text = "\n".join(lines)
        assert f"## The epoch with the most faces: {expected}" in text  # the later of two equal epochs
        assert "90.0% of its samples (real training images: 87.5%), against 50.0% at the last epoch" in text
        assert f"![samples](00002-gan-quickstart-64px/samples/epoch-{expected:04d}.png)" in text
