"""`gan-lab arena`: both arms from one checkpoint, the detector frozen, the time to evasion in the report."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from detector.base.errors import LabError
from detector.inference.predict import load_detector
from gan_lab.arena.run import ArenaConfig, run_arena
from gan_lab.cli import main


def test_an_arena_run_evades_faster_than_the_plain_arm_and_leaves_the_detector_as_it_was(
    detector_run, gan_run, tmp_path, capsys
):
    model_file = detector_run / "model.keras"
    before = model_file.read_bytes()
    weights = [weight.numpy() for weight in load_detector(detector_run).model.weights]
    argv = ["arena", "--detector", str(detector_run), "--gan", str(gan_run), "--weight", "5", "--epochs", "2"]
    argv += ["--target", "0.1"]  # the tiny detector catches a few of the checkpoint's fakes, none of the evasive
    argv += [
        "--steps-per-epoch",
        "3",
        "--n",
        "48",
        "--no-faces",
        "--no-inception",
        "--runs-dir",
        str(tmp_path),
        "--quiet",
    ]
    assert main(argv) == 0
    (run_dir,) = tmp_path.glob("*-arena-*")
    assert "Report:" in capsys.readouterr().out
    rows = json.loads((run_dir / "results.json").read_text())
    assert [(row["arm"], row["epoch"]) for row in rows] == [
        (arm, epoch) for arm in ("arena", "plain") for epoch in range(3)
    ]
    # Epoch 0 is the checkpoint itself: one generator, one score, whichever arm.
    assert rows[0]["kimg"] == 0 and rows[0]["detection_rate"] == rows[3]["detection_rate"]
    arena, plain = rows[2], rows[5]
    assert arena["kimg"] == plain["kimg"] == pytest.approx(2 * 3 * 16 / 1000)
    assert arena["detection_rate_high"] < plain["detection_rate_low"]  # beyond the intervals
    evasion = json.loads((run_dir / "evasion.json").read_text())
    assert evasion["arena"]["evaded"] and evasion["arena"]["kimg"] <= evasion["arena"]["last_kimg"]
    report = (run_dir / "report.md").read_text()
    assert "- Arena (W = 5): detection rate below 10% after" in report and "Plain continuation (W = 0)" in report
    for name in ("plots/evasion.png", "evasive.png"):
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG" and name in report
    assert model_file.read_bytes() == before
    after = [weight.numpy() for weight in load_detector(detector_run).model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(weights, after))


def test_bad_arena_options_are_refused_in_one_line(detector_run, gan_run, tmp_path):
    with pytest.raises(ValueError, match="weight must be a positive number"):
        run_arena(ArenaConfig(detector=str(detector_run), gan=str(gan_run), weight=0), tmp_path)
    with pytest.raises(LabError, match="needs --detector"):
        run_arena(ArenaConfig(gan=str(gan_run)), tmp_path)
    with pytest.raises(LabError, match="is a gan run, not a detector run"):
        run_arena(ArenaConfig(detector=str(gan_run), gan=str(gan_run)), tmp_path)
    assert not list(tmp_path.iterdir())


def test_an_imported_detector_is_refused_in_one_line_naming_the_run(detector_run, gan_run, tmp_path, monkeypatch):
    """An imported model (ONNX here) gives the arena no gradients: refused before any run directory exists."""
    import dataclasses
    import types

    import gan_lab.arena.run as arena_run

    detector = load_detector(detector_run)
    imported = dataclasses.replace(detector, model=None, outside=types.SimpleNamespace(format="onnx"))
    monkeypatch.setattr(arena_run, "load_detector", lambda path: imported)
    with pytest.raises(LabError, match=r"is an imported detector \(onnx\): .*an ONNX model gives none") as error:
        run_arena(ArenaConfig(detector=str(detector_run), gan=str(gan_run)), tmp_path)
    assert str(detector_run) in str(error.value) and "\n" not in str(error.value)
    assert not list(tmp_path.iterdir())


def test_rounds_harden_the_detector_on_its_evader_and_say_whether_that_bought_time(
    detector_run, gan_run, inception_home, tmp_path, monkeypatch
):
    """Each round evades a hardened copy from the same checkpoint; the plain arm's fakes are scored by every detector.
    Round 2's detector is hardened on round 1's evader, round 3's on both rounds' evaders."""
    monkeypatch.setenv("KERAS_HOME", str(inception_home))
    before = (detector_run / "model.keras").read_bytes()
    config = ArenaConfig(detector=str(detector_run), gan=str(gan_run), weight=5, epochs=2, steps_per_epoch=3, n=24)
    config = dataclasses.replace(config, target=0.1, rounds=3, harden_n=32, faces=False)
    run_dir = run_arena(config, tmp_path, progress=False)
    rows = json.loads((run_dir / "results.json").read_text())
    assert [(row["round"], row["arm"], row["epoch"]) for row in rows] == [
        (round_, arm, epoch) for round_ in (1, 2, 3) for arm in ("arena", "plain") for epoch in range(3)
    ]
    by = {(row["round"], row["arm"], row["epoch"]): row for row in rows}
    for epoch in range(3):  # the same plain fakes in both rounds: the same KID, scored by another detector
        assert by[1, "plain", epoch]["kid_inception"] == by[3, "plain", epoch]["kid_inception"]
        assert np.isfinite(by[1, "arena", epoch]["kid_inception"])
    hardened_dir = run_dir / "detectors" / "round-2"
    hardened = load_detector(hardened_dir)
    assert hardened.config["hardening"]["arena_round"] == 1 and hardened.config["hardening"]["extra_fakes"] == 32
    again = load_detector(run_dir / "detectors" / "round-3")  # round 2's detector on rounds 1 and 2's evaders
    assert again.config["hardening"]["arena_round"] == 2 and again.config["hardening"]["extra_fakes"] == 64
    assert again.config["hardening"]["arena_rounds_of_fakes"] == [1, 2]
    assert again.config["name"] == f"{hardened.config['name']}-2" and hardened.config["name"].endswith("-hardened")
    evasion = json.loads((run_dir / "evasion.json").read_text())
    first, second, _ = evasion["rounds"]
    assert first["detector"] == str(detector_run.resolve()) and second["detector"] == str(hardened_dir.resolve())
    assert evasion["arena"] == first["arena"] and set(second) >= {"arena", "plain", "reals_called_fake"}
    # Round 1's last fakes (never trained on): the original let them through; its hardened copy catches more.
    assert by[1, "arena", 2]["detection_rate"] < 0.1 < first["hardened"]["detection_rate"]
    report = (run_dir / "report.md").read_text()
    assert "## Rounds" in report and "- Did hardening buy time by round 3? " in report
    assert "KID against" in report and (run_dir / "evasive-round-3.png").is_file()
    assert (detector_run / "model.keras").read_bytes() == before


def test_from_data_both_arms_train_a_new_gan_from_its_initialisation(detector_run, synth_root, tmp_path):
    from gan_lab.gan.checkpoints import list_checkpoints

    config = ArenaConfig(detector=str(detector_run), data=str(synth_root), weight=5, epochs=1, steps_per_epoch=2, n=16)
    run_dir = run_arena(dataclasses.replace(config, faces=False, inception=False, name="scratch"), tmp_path, False)
    (gan_dir,) = tmp_path.glob("*-gan-arena-scratch")
    assert list(list_checkpoints(gan_dir)) == [0]  # the new GAN run holds its initialisation only
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["gan"] == str(gan_dir.resolve()) and recorded["data"] == str(synth_root)
    rows = json.loads((run_dir / "results.json").read_text())
    assert rows[0]["mean_p_fake"] == rows[2]["mean_p_fake"]  # epoch 0: one initialisation, whichever arm
    assert "train a new GAN on" in (run_dir / "report.md").read_text()
    with pytest.raises(LabError, match="one of --gan RUN_DIR .* or --data DIR"):
        run_arena(dataclasses.replace(config, gan=str(gan_dir)), tmp_path)


def test_a_gan_run_whose_data_folder_is_gone_is_refused_naming_its_config(detector_run, gan_run, tmp_path):
    import shutil

    moved = tmp_path / "moved" / gan_run.name
    shutil.copytree(gan_run, moved)
    recorded = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**recorded, "data": str(tmp_path / "gone")}))
    runs = tmp_path / "runs"
    with pytest.raises(LabError, match=r"data folder .*gone.* is not on this machine") as error:
        run_arena(ArenaConfig(detector=str(detector_run), gan=str(moved)), runs)
    assert str(moved / "config.json") in str(error.value)
    assert not runs.exists() or not list(runs.iterdir())


def test_an_imported_savedmodel_detector_is_evaded_through_its_own_graph(detector_run, gan_run, tmp_path):
    """The lab detector sent out as a SavedModel and imported back: the arena reaches its gradients."""
    from detector.inference.imported import ImportConfig, export_detector, import_detector

    exported = export_detector(detector_run, "savedmodel", tmp_path / "outside")
    imported = import_detector(ImportConfig(model=str(exported), size=32, output="probability"), tmp_path / "runs")
    config = ArenaConfig(detector=str(imported), gan=str(gan_run), weight=5, epochs=2, steps_per_epoch=3, n=48)
    run_dir = run_arena(dataclasses.replace(config, target=0.1, faces=False, inception=False), tmp_path, False)
    rows = json.loads((run_dir / "results.json").read_text())
    arena, plain = rows[2], rows[5]
    assert (arena["arm"], plain["arm"], arena["epoch"], plain["epoch"]) == ("arena", "plain", 2, 2)
    assert arena["detection_rate_high"] < plain["detection_rate_low"]  # beyond the intervals
    with pytest.raises(LabError, match="was imported from outside the lab: hardening fine-tunes"):
        run_arena(dataclasses.replace(config, rounds=2), tmp_path / "refused")


def test_an_interrupted_arena_run_resumes_training_only_what_it_had_not_finished(
    detector_run, gan_run, tmp_path, monkeypatch, capsys
):
    """Killed while hardening after round 1: the resumed run keeps both trained arms and trains round 2 only."""
    import gan_lab.arena.run as arena_run

    config = ArenaConfig(detector=str(detector_run), gan=str(gan_run), weight=5, epochs=1, steps_per_epoch=2, n=16)
    config = dataclasses.replace(config, rounds=2, harden_n=16, faces=False, inception=False)
    import gan_lab.stress.harden as harden

    real_harden, trained = harden.harden_with_fakes, []

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(harden, "harden_with_fakes", killed)
    with pytest.raises(KeyboardInterrupt):
        run_arena(config, tmp_path, progress=False)
    (run_dir,) = tmp_path.glob("*-arena-*")
    assert sorted(path.name for path in (run_dir / "arms").iterdir()) == ["plain.npz", "round-1.npz"]
    assert not (run_dir / "report.md").exists() and not (run_dir / "detectors" / "round-2").exists()

    monkeypatch.setattr(harden, "harden_with_fakes", real_harden)
    real_train = arena_run._train_arm
    monkeypatch.setattr(arena_run, "_train_arm", lambda *args: trained.append(args[5]) or real_train(*args))
    argv = ["arena", "--resume", str(run_dir), "--runs-dir", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    assert trained == ["round 2"] and (run_dir / "report.md").is_file()
    rows = json.loads((run_dir / "results.json").read_text())
    assert [(row["round"], row["arm"]) for row in rows] == [
        (r, arm) for r in (1, 2) for arm in ("arena",) * 2 + ("plain",) * 2
    ]
    assert load_detector(run_dir / "detectors" / "round-2").config["hardening"]["arena_round"] == 1
    assert json.loads((run_dir / "config.json").read_text())["gan_epoch"] == 2  # fixed at the start: the last
    refused = ["arena", "--resume", str(run_dir), "--weight", "1", "--runs-dir", str(tmp_path), "--quiet"]
    assert main(refused) != 0
    assert "weight=1.0 (the run has 5" in capsys.readouterr().err


def test_a_damaged_stored_arm_is_named_with_what_to_do(tmp_path):
    from gan_lab.arena.arms import _load_arm

    damaged = tmp_path / "plain.npz"
    damaged.write_bytes(b"PK\x03\x04 not a whole archive")
    with pytest.raises(LabError, match=r"plain\.npz is unreadable .*: delete it and resume again") as error:
        _load_arm(damaged)
    assert "\n" not in str(error.value)


def test_a_kept_hardened_detector_says_which_rounds_fakes_it_trained_on(tmp_path):
    from gan_lab.arena.run import _hardened_on

    def stored(name: str, hardening) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"hardening": hardening}))
        return tmp_path / name

    assert _hardened_on(stored("now", {"arena_round": 2, "arena_rounds_of_fakes": [1, 2]})) == [1, 2]
    assert _hardened_on(stored("before-round-1", {"arena_round": 1})) == [1]  # one round: the same recipe
    assert _hardened_on(stored("before-round-2", {"arena_round": 2})) is None  # round 2's fakes only: made anew
    assert _hardened_on(stored("foreign", "not a record")) is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_bytes(b"\xff{")
    assert _hardened_on(tmp_path / "broken") is None


def test_a_kept_hardened_detector_made_from_other_rounds_fakes_is_made_anew_and_the_later_work_goes(
    detector_run, tmp_path
):
    from gan_lab.arena.run import _harden, _hardened_on

    run_dir = tmp_path / "arena"
    stale = run_dir / "detectors" / "round-3"  # round 2's hardening, from round 2's fakes only
    stale.mkdir(parents=True)
    (stale / "config.json").write_text(json.dumps({"hardening": {"arena_round": 2}}))
    (run_dir / "arms").mkdir()
    (run_dir / "arms" / "round-3.npz").write_bytes(b"made against the stale detector")
    fakes = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    hardened = _harden(load_detector(detector_run), fakes, run_dir, 2, ArenaConfig(), progress=False)
    assert hardened.run_dir == stale and _hardened_on(stale) == [1, 2]
    assert hardened.config["hardening"]["extra_fakes"] == 8 and not (run_dir / "arms" / "round-3.npz").exists()
    before = (stale / "model.keras").read_bytes()
    assert _harden(hardened, fakes, run_dir, 2, ArenaConfig(), progress=False).run_dir == stale  # kept now
    assert (stale / "model.keras").read_bytes() == before


def test_a_stored_arm_unlike_this_run_is_refused_and_a_retrained_round_drops_the_later_ones(tmp_path):
    from gan_lab.arena.arms import Epoch, arm_checker, forget_after

    config = ArenaConfig(epochs=1, n=2, rounds=2, harden_n=3)
    fakes = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    epochs = [Epoch(0, fakes, None, {}), Epoch(1, fakes, None, {})]
    check = arm_checker(config, 8, faces=False, kid=False)
    check(tmp_path / "plain.npz", epochs, None, None)  # as this run would make it
    check(tmp_path / "round-1.npz", epochs, np.zeros((3, 8, 8, 3), np.uint8), 1)
    with pytest.raises(LabError, match=r"round-1\.npz holds not the 3 hardening fakes round 1 hands on"):
        check(tmp_path / "round-1.npz", epochs, None, 1)
    with pytest.raises(LabError, match=r"hardening fakes round 1 hands on \(\(3, 8, 8, 3\) uint8\)"):
        check(tmp_path / "round-1.npz", epochs, np.zeros((3, 8, 8, 3), np.float32), 1)
    with pytest.raises(LabError, match=r"epochs \[0\], not 0 to 1"):
        check(tmp_path / "plain.npz", epochs[:1], None, None)
    with pytest.raises(LabError, match=r"measures other than this machine's \(faces measured, KID not measured\)"):
        arm_checker(config, 8, faces=True, kid=False)(tmp_path / "plain.npz", epochs, None, None)
    for name in ("round-1.npz", "round-2.npz", "round-3.npz", "plain.npz"):
        (tmp_path / "arms").mkdir(exist_ok=True)
        (tmp_path / "arms" / name).write_bytes(b"")
    for name in ("round-2", "round-3"):
        (tmp_path / "detectors" / name).mkdir(parents=True)
    forget_after(tmp_path, 1)
    assert sorted(path.name for path in (tmp_path / "arms").iterdir()) == ["plain.npz", "round-1.npz"]
    assert not list((tmp_path / "detectors").iterdir())
