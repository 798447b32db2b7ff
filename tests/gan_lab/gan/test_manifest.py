import csv
import json
import shutil

import numpy as np
import pytest

from detector import REAL
from detector.base.errors import LabError
from detector.data.datasets import index_folder
from gan_lab.gan.manifest import MANIFEST_FILE, content_hash, training_images, write_training_manifest
from gan_lab.stress.leakage import comparison_reals, describe


def _test_reals(synth_root):
    split = index_folder(synth_root).splits["test"]
    return [path for path, label in zip(split.paths, split.labels) if label == REAL]


def test_a_gan_run_lists_the_real_images_it_trained_on(gan_run, synth_root):
    with open(gan_run / MANIFEST_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = index_folder(synth_root, real_only=True, seed=0).splits["train"].paths
    assert sorted(row["path"] for row in rows) == sorted(str(path) for path in expected)
    assert all(row["sha256"] == content_hash(row["path"]) for row in rows[:5])
    assert training_images(gan_run).source == "manifest"


def test_runs_from_before_the_manifest_are_recomputed_or_said_unknown(gan_run, tmp_path):
    old = shutil.copytree(gan_run, tmp_path / "00001-gan-old", ignore=shutil.ignore_patterns("checkpoints"))
    (old / MANIFEST_FILE).unlink()
    recomputed = training_images(old)
    assert recomputed.source == "recomputed" and "recomputed" in recomputed.note
    assert recomputed.paths == training_images(gan_run).paths
    values = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**values, "data": str(tmp_path / "gone")}))
    unknown = training_images(old)
    assert unknown.source == "unknown" and "could not be made" in unknown.note


def _gan_that_trained_on(tmp_path, gan_run, paths):
    run = shutil.copytree(gan_run, tmp_path / "00002-gan-leaky", ignore=shutil.ignore_patterns("checkpoints"))
    write_training_manifest(run, paths)
    return run


def test_real_images_a_gan_trained_on_are_left_out_even_under_another_name(gan_run, synth_root, tmp_path):
    reals = _test_reals(synth_root)
    copy = tmp_path / "elsewhere" / "renamed.png"
    copy.parent.mkdir()
    shutil.copyfile(reals[1], copy)  # the same image under another name: only its hash gives it away
    leaky = _gan_that_trained_on(tmp_path, gan_run, [reals[0], copy])
    index = index_folder(synth_root)
    clean = comparison_reals(index, 32, "resize", 100, 0, [gan_run, leaky])
    assert str(reals[0]) not in clean.paths and str(reals[1]) not in clean.paths
    assert clean.check.overlapping == 2 and len(clean.paths) == len(reals) - 2
    assert "left out" in describe(clean.check)
    kept = comparison_reals(index, 32, "resize", 100, 0, [leaky], allow_overlap=True)
    assert len(kept.paths) == len(reals) and "WARNING" in describe(kept.check)


def test_reals_are_drawn_at_random_with_the_seed(synth_root, gan_run):
    index = index_folder(synth_root)
    first = comparison_reals(index, 32, "resize", 5, 0, [gan_run])
    again = comparison_reals(index, 32, "resize", 5, 0, [gan_run])
    other = comparison_reals(index, 32, "resize", 5, 1, [gan_run])
    assert first.paths == again.paths and first.paths != other.paths
    assert first.paths != sorted(_test_reals(synth_root))[:5]
    np.testing.assert_array_equal(first.pixels, again.pixels)


def test_too_few_clean_reals_is_a_clear_error(gan_run, synth_root, tmp_path):
    leaky = _gan_that_trained_on(tmp_path, gan_run, _test_reals(synth_root))
    with pytest.raises(LabError, match="--allow-overlap"):
        comparison_reals(index_folder(synth_root), 32, "resize", 10, 0, [leaky])
