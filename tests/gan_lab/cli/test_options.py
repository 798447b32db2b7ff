"""Every field of every run config is a command-line option that reaches the run."""

import dataclasses
import json
import types
import typing

import pytest

from detector.base.errors import LabError
from detector.training.train import DetectorConfig
from gan_lab.apps.quickstart import QuickstartConfig
from gan_lab.arena.run import ArenaConfig
from gan_lab.cli import main
from gan_lab.cli.options import config_flags, parse_run_command
from gan_lab.gan.train import GanConfig
from gan_lab.stress.inputs import StressConfig

COMMANDS = {
    DetectorConfig: ["detector", "train"],
    GanConfig: ["gan", "train"],
    StressConfig: ["stress"],
    ArenaConfig: ["arena"],
    QuickstartConfig: ["quickstart"],
}
# A value other than the default for the fields whose type alone does not say which.
SPECIAL = {
    (DetectorConfig, "split"): ((0.7, 0.2, 0.1), ["0.7", "0.2", "0.1"]),
    (DetectorConfig, "blur_sigma"): ((0.2, 2.5), ["0.2", "2.5"]),
    (DetectorConfig, "jpeg_quality"): ((40, 95), ["40", "95"]),
    (GanConfig, "generator_filters"): ((128, 64, 32, 16), ["128", "64", "32", "16"]),
    (GanConfig, "augment"): (("color", "cutout"), ["color", "cutout"]),
    (StressConfig, "epochs"): ("1,3", ["1,3"]),
    (StressConfig, "harden_epochs"): ((2, 3), ["2", "3"]),
    (StressConfig, "detectors"): (("runs/a", "runs/b"), ["runs/a", "runs/b"]),
    (StressConfig, "seed_runs"): (("runs/s1", "runs/s2"), ["runs/s1", "runs/s2"]),
    (StressConfig, "gans"): (("runs/g@all", "runs/h"), ["runs/g@all", "runs/h"]),
    (StressConfig, "fakes"): (("stylegan/",), ["stylegan/"]),
    (DetectorConfig, "extra_fakes"): (("fakes/a", "fakes/b"), ["fakes/a", "fakes/b"]),
    **{
        (config_class, "devices"): (("/gpu:0", "/gpu:1"), ["/gpu:0", "/gpu:1"])
        for config_class in COMMANDS
        if "devices" in {field.name for field in dataclasses.fields(config_class)}
    },
}


def _non_default(config_class, field):
    """(a value other than the field's default, the command-line words that give it)."""
    if (config_class, field.name) in SPECIAL:
        return SPECIAL[config_class, field.name]
    hints = typing.get_type_hints(config_class)
    kind = hints[field.name]
    union = typing.get_origin(kind) in (typing.Union, types.UnionType)
    first = [arg for arg in typing.get_args(kind) if arg is not type(None)][0] if union else kind
    if typing.get_origin(first) is typing.Literal:
        choice = next(value for value in typing.get_args(first) if value != field.default)
        return choice, [choice]
    if first is bool:
        value = not field.default
        return value, [str(value)] if union else []
    if first is int:
        value = (field.default or 0) + 3
        return value, [str(value)]
    if first is float:
        value = round((field.default or 0.1) / 2, 6) or 0.25
        return value, [str(value)]
    return "chosen", ["chosen"]


def _cases():
    for config_class in COMMANDS:
        for field in dataclasses.fields(config_class):
            yield pytest.param(config_class, field, id=f"{config_class.__name__}.{field.name}")


@pytest.mark.parametrize(("config_class", "field"), list(_cases()))
def test_every_field_is_an_option_that_sets_it(config_class, field, capsys):
    flag = "--" + field.name.replace("_", "-")
    with pytest.raises(SystemExit):
        main([*COMMANDS[config_class], "--help"])
    assert flag in capsys.readouterr().out

    value, words = _non_default(config_class, field)
    assert value != field.default
    if isinstance(value, bool) and not words:  # a plain bool is a flag pair
        argv = [flag if value else "--no-" + flag[2:]]
    else:
        argv = [flag, *words]
    config, _ = parse_run_command(config_class, argv, "gan-lab", "", kind=None)
    assert getattr(config, field.name) == value


def test_config_json_holds_every_field(detector_run, gan_run):
    for run_dir, config_class in ((detector_run, DetectorConfig), (gan_run, GanConfig)):
        recorded = json.loads((run_dir / "config.json").read_text())
        assert {field.name for field in dataclasses.fields(config_class)} <= set(recorded)
    assert len(config_flags(GanConfig)) == len(dataclasses.fields(GanConfig))


def test_a_config_file_sets_options_and_the_command_line_overrides_it(tmp_path):
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"size": 48, "d_learning_rate": 1e-4, "beta_1": 0.3, "layout": "ignored"}))
    config, run = parse_run_command(GanConfig, ["--config", str(path), "--beta-1", "0.4"], "gan-lab", "", kind="gan")
    assert (config.size, config.d_learning_rate, config.beta_1) == (48, 1e-4, 0.4)
    assert run.config == str(path)
    with pytest.raises(LabError, match="not a readable JSON file"):
        (tmp_path / "bad.json").write_text("{nope")
        parse_run_command(GanConfig, ["--config", str(tmp_path / "bad.json")], "gan-lab", "", kind="gan")


def test_a_previous_runs_config_reruns_it_exactly(gan_run):
    config, _ = parse_run_command(GanConfig, ["--config", str(gan_run / "config.json")], "gan-lab", "", kind="gan")
    recorded = json.loads((gan_run / "config.json").read_text())
    for field in dataclasses.fields(GanConfig):
        value = getattr(config, field.name)
        assert (list(value) if isinstance(value, tuple) else value) == recorded[field.name], field.name


def test_resume_refuses_an_option_that_contradicts_the_gan_run(gan_run, capsys):
    copy_code = main(["gan", "train", "--resume", str(gan_run), "--size", "64", "--quiet"])
    assert copy_code == 2
    error = capsys.readouterr().err
    assert "size=64 (the run has 32)" in error and "Only epochs, kimg, strategy, devices, jit may change" in error
