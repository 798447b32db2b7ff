import json
import os

import pytest

from detector.base.errors import LabError
from detector.base.runs import (
    atomic_save_model,
    atomic_write_text,
    config_from_dict,
    create_run_dir,
    list_runs,
    read_json,
    require_run_dir,
    write_json,
)


def test_run_dirs_are_numbered_in_order_with_subfolders(tmp_path):
    first = create_run_dir("detector", "cnn3 64px", tmp_path)
    second = create_run_dir("gan", "", tmp_path)
    assert first.name == "00001-detector-cnn3-64px"
    assert second.name == "00002-gan"
    assert (first / "checkpoints").is_dir() and (first / "plots").is_dir()
    assert list_runs(tmp_path, "gan") == [second]
    assert list_runs(tmp_path) == [first, second]


def test_unknown_run_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        create_run_dir("other", "x", tmp_path)


def test_require_run_dir_names_the_problem(tmp_path):
    with pytest.raises(LabError, match="not found"):
        require_run_dir(tmp_path / "missing")
    run = create_run_dir("gan", "x", tmp_path)
    with pytest.raises(LabError, match="no config.json"):
        require_run_dir(run)
    write_json(run / "config.json", {})
    with pytest.raises(LabError, match="gan run, not a detector run"):
        require_run_dir(run, "detector")
    assert require_run_dir(run, "gan") == run


def test_write_json_handles_numpy_and_dataclasses(tmp_path):
    import dataclasses

    import numpy as np

    @dataclasses.dataclass
    class Options:
        size: int = 64
        widths: tuple = (1, 2)

    path = write_json(
        tmp_path / "a" / "config.json", {"options": Options(), "score": np.float32(0.5), "x": np.arange(2)}
    )
    assert json.loads(path.read_text()) == {"options": {"size": 64, "widths": [1, 2]}, "score": 0.5, "x": [0, 1]}
    assert config_from_dict(Options, {"size": 32, "unknown": 1}) == Options(size=32)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "report.md", "one")
    atomic_write_text(tmp_path / "report.md", "two")
    assert os.listdir(tmp_path) == ["report.md"]
    assert (tmp_path / "report.md").read_text() == "two"


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(LabError, match="missing.json"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(LabError, match="bad.json is not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_atomic_save_model_survives_a_failed_save(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = atomic_save_model(model, tmp_path / "model.keras")
    before = path.read_bytes()

    class Broken:
        def save(self, target):
            with open(target, "wb") as handle:
                handle.write(b"half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save_model(Broken(), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]
    with pytest.raises(ValueError, match=".keras"):
        atomic_save_model(model, tmp_path / "model.h5")


def test_run_files_follow_the_umask(tmp_path):
    import os

    from detector.base.runs import atomic_write_text, commit_epoch

    previous = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "report.md", "hello\n")
        folder = commit_epoch(tmp_path, 1, lambda partial: None, {"epoch": 1}, [], ("epoch",))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    assert folder.stat().st_mode & 0o777 == 0o755 and (folder / "state.json").stat().st_mode & 0o777 == 0o644


def test_an_empty_history_round_trips_and_stale_files_are_removed(tmp_path):
    from detector.base.runs import commit_epoch, committed_epochs, read_history, remove_stale, write_history

    write_history(tmp_path / "history.csv", [], ("epoch", "loss"))
    assert (tmp_path / "history.csv").read_text() == "epoch,loss\n" and read_history(tmp_path / "history.csv") == []
    (tmp_path / "history.csv").write_text("\n")  # what an older version left after resuming with no epoch
    assert read_history(tmp_path / "history.csv") == []
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    for epoch in (1, 2):
        commit_epoch(tmp_path, epoch, lambda partial: None, {"epoch": epoch}, rows[:epoch], ("epoch", "loss"))
    (tmp_path / ".history.a1b2c3d4.tmp").write_text("half")
    (tmp_path / "checkpoints" / ".epoch-0003.x_y9z8w7.partial").mkdir()
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / ".loss.q1w2e3r4.tmp.png").write_bytes(b"half")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / ".draft.tmpl").write_text("the user's own")  # not the lab's: kept
    removed = remove_stale(tmp_path, completed=1)
    assert sorted(path.name for path in removed) == [
        ".epoch-0003.x_y9z8w7.partial",
        ".history.a1b2c3d4.tmp",
        ".loss.q1w2e3r4.tmp.png",
        "epoch-0002",
    ]
    assert (tmp_path / "notes" / ".draft.tmpl").is_file()
    assert list(committed_epochs(tmp_path)) == [1]
    assert read_history(committed_epochs(tmp_path)[1] / "history.csv") == rows[:1]


def test_an_epoch_is_on_the_disk_before_its_rename_publishes_it(tmp_path, monkeypatch):
    import detector.base.runs as runs

    events = []
    sync = runs._sync_to_disk
    rename = os.replace
    monkeypatch.setattr(runs, "_sync_to_disk", lambda path: (events.append(("sync", path.name)), sync(path)))
    monkeypatch.setattr(runs.os, "replace", lambda a, b: (events.append(("rename", os.path.basename(b))), rename(a, b)))

    def write_model(folder):
        (folder / "model.keras").write_bytes(b"weights")  # what model.save writes, unsynced

    runs.commit_epoch(tmp_path, 1, write_model, {"epoch": 1}, [], ("epoch",))
    publish = events.index(("rename", "epoch-0001"))
    synced_before = {name for kind, name in events[:publish] if kind == "sync"}
    assert {"model.keras", "history.csv", "state.json"} <= synced_before
    assert any(kind == "sync" and name.startswith(".epoch-0001.") for kind, name in events[:publish])  # the folder
    assert ("sync", "checkpoints") in events[publish:]  # and the new name in its parent


@pytest.mark.parametrize("link", [True, False])
def test_a_written_or_published_file_is_on_the_disk_before_its_rename(tmp_path, monkeypatch, link):
    import detector.base.runs as runs

    events = []
    sync = runs._sync_to_disk
    rename = os.replace
    monkeypatch.setattr(runs, "_sync_to_disk", lambda path: (events.append(("sync", path.name)), sync(path)))
    monkeypatch.setattr(runs.os, "replace", lambda a, b: (events.append(("rename", os.path.basename(a))), rename(a, b)))
    if not link:  # a file system without hard links: the file is copied
        monkeypatch.setattr(runs.os, "link", lambda a, b: (_ for _ in ()).throw(OSError("no hard links here")))

    runs.atomic_write_bytes(tmp_path / "state.json", b"{}")
    runs.publish_file(tmp_path / "state.json", tmp_path / "published.json")
    renamed = [name for kind, name in events if kind == "rename"]
    assert len(renamed) == 2
    for name in renamed:  # each temporary file is synced, then renamed into place
        assert events.index(("sync", name)) < events.index(("rename", name))
    assert (tmp_path / "published.json").read_bytes() == b"{}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["published.json", "state.json"]


def test_a_claimed_run_is_refused_to_a_second_claim_until_its_block_ends(tmp_path):
    from detector.training.lifecycle import claim_run, run_claims

    with run_claims():
        claim_run(tmp_path)
        with pytest.raises(LabError, match=f"{tmp_path} is being trained elsewhere"), run_claims():
            claim_run(tmp_path)
    with run_claims():
        claim_run(tmp_path)  # released when the first block ended
    with pytest.raises(RuntimeError, match="run_claims"):
        claim_run(tmp_path)
