"""The stress test: score a detector on fresh, never-seen fakes from every GAN epoch.

For each saved GAN epoch, latents from a seed stream of their own (never the training
grid's) go through generator -> detector in one graph, giving P(fake) and the detector's
penultimate features in the same pass. Per-epoch figures are registered metric functions
(`EPOCH_METRICS`), kept apart from the loop as in StyleGAN2-ADA's metric registry.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detector.errors import LabError
from detector.runs import (
    atomic_write_text,
    create_run_dir,
    read_json,
    require_run_dir,
    write_json,
)

# Latent stream tags: SeedSequence([seed, epoch, tag]). The training grid is drawn from the
# GAN's own seed; tag 1 is for the fakes the detector is scored on, tag 2 for the extra
# fakes hardening trains on, so a hardened detector is never scored on its training fakes.
SCORING_STREAM = 1
HARDENING_STREAM = 2
GALLERY_SIZE = 8
KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000


@dataclasses.dataclass
class StressConfig:
    detector: str = ""
    gan: str = ""
    epochs: str | list = "all"
    n: int = 256
    seed: int = 0
    batch_size: int = 256
    sweeps: bool = True
    export_fakes: str | None = None
    harden: bool = False
    harden_epochs: str | list | None = None
    harden_fine_tune_epochs: int = 1
    name: str = ""


# --------------------------------------------------------------------------- metrics


@dataclasses.dataclass
class EpochScores:
    """What the metrics see for one GAN epoch: scores and features of its fakes and of real test images."""

    epoch: int
    threshold: float
    fake_p_fake: np.ndarray
    real_p_fake: np.ndarray
    fake_features: np.ndarray | None = None
    real_features: np.ndarray | None = None
    discriminator_fake_p_fake: np.ndarray | None = None
    discriminator_real_p_fake: np.ndarray | None = None
    seed: int = 0


EPOCH_METRICS: dict[str, Callable[[EpochScores], dict]] = {}


def register_metric(function: Callable[[EpochScores], dict]) -> Callable[[EpochScores], dict]:
    """Add a per-epoch metric (EpochScores -> dict of columns) to `EPOCH_METRICS` under its name."""
    EPOCH_METRICS[function.__name__] = function
    return function


def detection_figures(fake_p_fake, real_p_fake, threshold: float) -> dict:
    """Detection rate, P(fake) summary and ranking metrics of fakes against real images."""
    from detector.metrics import (
        average_precision,
        best_threshold,
        binary_metrics,
        roc_auc,
    )

    fake_p_fake = np.asarray(fake_p_fake, dtype=np.float64)
    real_p_fake = np.asarray(real_p_fake, dtype=np.float64)
    labels = np.r_[np.zeros(len(real_p_fake), dtype=np.int64), np.ones(len(fake_p_fake), dtype=np.int64)]
    scores = np.r_[real_p_fake, fake_p_fake]
    best = best_threshold(labels, scores)
    return {
        "detection_rate": float(np.mean(fake_p_fake >= threshold)),
        "detection_rate_05": float(np.mean(fake_p_fake >= 0.5)),
        "mean_p_fake": float(np.mean(fake_p_fake)),
        "median_p_fake": float(np.median(fake_p_fake)),
        "roc_auc": roc_auc(labels, scores),
        "average_precision": average_precision(labels, scores),
        "accuracy": binary_metrics(labels, scores, threshold)["accuracy"],
        "best_threshold": best,
        "best_accuracy": binary_metrics(labels, scores, best)["accuracy"],
    }


@register_metric
def detection(scores: EpochScores) -> dict:
    """The detector: fakes caught at its chosen threshold and at 0.5, ROC-AUC and AP against real images."""
    return {
        "threshold": scores.threshold,
        "n_fake": len(scores.fake_p_fake),
        "n_real": len(scores.real_p_fake),
        **detection_figures(scores.fake_p_fake, scores.real_p_fake, scores.threshold),
    }


@register_metric
def discriminator(scores: EpochScores) -> dict:
    """The epoch's own discriminator used as a detector: sigmoid of its logit, threshold 0.5."""
    if scores.discriminator_fake_p_fake is None:
        return {}
    figures = detection_figures(scores.discriminator_fake_p_fake, scores.discriminator_real_p_fake, 0.5)
    return {f"disc_{key}": figures[key] for key in DISCRIMINATOR_FIGURES}


@register_metric
def kid(scores: EpochScores) -> dict:
    """KID between the fakes and real test images in the detector's penultimate-layer features.

    Each feature is standardised by the real images' mean and spread first, so that KID does
    not grow with the scale of one detector's activations (the cubic kernel would make that
    scale a million-fold difference) and runs are comparable.
    """
    from gan_lab.kid import kernel_inception_distance

    if scores.fake_features is None or scores.real_features is None:
        return {}
    real = np.asarray(scores.real_features, dtype=np.float64)
    mean, scale = real.mean(axis=0), real.std(axis=0)
    scale[scale < 1e-6] = 1.0  # a feature constant on reals: centre it, leave its scale
    value, spread = kernel_inception_distance(
        (real - mean) / scale,
        (scores.fake_features - mean) / scale,
        num_subsets=KID_SUBSETS,
        max_subset_size=KID_MAX_SUBSET_SIZE,
        seed=scores.seed,
    )
    return {"kid": value, "kid_std": spread}


@register_metric
def diversity(scores: EpochScores) -> dict:
    """Mean pairwise distance between the fakes' detector features (low: mode collapse)."""
    from gan_lab.diversity import mean_pairwise_distance

    if scores.fake_features is None:
        return {}
    return {"diversity": float(mean_pairwise_distance(scores.fake_features))}


DISCRIMINATOR_FIGURES = (
    "detection_rate",
    "mean_p_fake",
    "median_p_fake",
    "roc_auc",
    "average_precision",
    "best_accuracy",
)
COLUMNS = (
    "kind",
    "detector",
    "epoch",
    "perturbation",
    "level",
    "n_fake",
    "n_real",
    "threshold",
    "detection_rate",
    "detection_rate_05",
    "mean_p_fake",
    "median_p_fake",
    "roc_auc",
    "average_precision",
    "accuracy",
    "best_threshold",
    "best_accuracy",
    *(f"disc_{key}" for key in DISCRIMINATOR_FIGURES),
    "kid",
    "kid_std",
    "diversity",
)


def compute_metrics(scores: EpochScores, names: tuple[str, ...] | None = None) -> dict:
    """Run the registered metrics (all, or those named) and merge their columns."""
    row: dict[str, Any] = {}
    for name in names or tuple(EPOCH_METRICS):
        if name not in EPOCH_METRICS:
            raise ValueError(f"Unknown metric. Expected one of {sorted(EPOCH_METRICS)}. Received: name={name!r}")
        row.update(EPOCH_METRICS[name](scores))
    return row


# --------------------------------------------------------------------------- runs and latents


def require_gan_run(gan_dir: str | os.PathLike) -> tuple[Path, dict[int, Path]]:
    """A GAN run directory and its complete checkpoints, or a LabError saying what is wrong."""
    from gan_lab.train import list_checkpoints

    if not gan_dir:
        raise LabError("No GAN run given: pass --gan RUN_DIR (a runs/NNNNN-gan-... directory)")
    gan_dir = require_run_dir(gan_dir, "gan")
    if (gan_dir / "model.keras").is_file() and not (gan_dir / "checkpoints").is_dir():
        raise LabError(f"{gan_dir} looks like a detector run (it has model.keras); --gan needs a GAN run directory")
    checkpoints = list_checkpoints(gan_dir)
    if not checkpoints:
        raise LabError(
            f"{gan_dir} has no complete GAN checkpoints under {gan_dir / 'checkpoints'}: "
            "has GAN training finished at least one epoch?"
        )
    return gan_dir, checkpoints


def select_epochs(epochs: str | list | tuple | None, available: list[int], option: str = "--epochs") -> list[int]:
    """Parse "all", "1,5,10" or a list of ints into epochs that have checkpoints (LabError otherwise)."""
    available = sorted(available)
    if epochs is None or (isinstance(epochs, str) and epochs.strip().lower() in ("all", "")):
        return available
    if isinstance(epochs, str):
        try:
            wanted = [int(part) for part in epochs.split(",") if part.strip()]
        except ValueError:
            raise LabError(
                f"{option} takes 'all' or comma-separated epoch numbers such as 1,5,10. Received: {epochs!r}"
            ) from None
    elif isinstance(epochs, int):
        wanted = [epochs]
    else:
        wanted = [int(epoch) for epoch in epochs]
    missing = [epoch for epoch in wanted if epoch not in available]
    if missing or not wanted:
        raise LabError(f"{option}: no checkpoint for epoch(s) {missing or wanted}; the GAN run has epochs {available}")
    return sorted(set(wanted))


def stress_latents(seed: int, epoch: int, n: int, latent_dim: int, stream: int = SCORING_STREAM) -> np.ndarray:
    """Standard normal latents (n, latent_dim) for one epoch, from SeedSequence([seed, epoch, stream])."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(stream)]))
    return rng.standard_normal((n, latent_dim)).astype(np.float32)


def check_not_grid(latents: np.ndarray, gan_dir: Path) -> None:
    """Refuse latents that repeat any of the training grid's (latents.npy): those fakes were seen."""
    grid_path = gan_dir / "latents.npy"
    if not grid_path.is_file():
        return
    grid = np.load(grid_path).astype(np.float32)
    if grid.size % latents.shape[-1]:
        return  # another latent width: those grid images cannot come from these latents
    grid = grid.reshape(-1, latents.shape[-1])
    if (latents[:, None, :] == grid[None, :, :]).all(axis=-1).any():
        raise LabError(f"The stress latents repeat the training grid in {grid_path}; choose another --seed")


# --------------------------------------------------------------------------- the fused pass


def _fused_forward(generator, two_outputs, discriminator, latents):
    pixels = generator(latents, training=False)
    outputs, features = two_outputs(pixels, training=False)
    result = {"pixels": pixels, "outputs": outputs, "features": features}
    if discriminator is not None:
        result["discriminator"] = discriminator(pixels, training=False)
    return result


def build_fused_scorer(generator, detector_model, feature_layer=None, discriminator=None):
    """One tf.function: latents -> generator -> detector (outputs and penultimate features) [-> discriminator].

    Returns a callable taking float32 latents (B, latent_dim) and returning a dict of
    tensors: pixels, outputs (raw detector head), features, and discriminator (raw logit).
    """
    import keras
    import tensorflow as tf

    feature_layer = feature_layer or detector_model.layers[-2]
    two_outputs = keras.Model(
        detector_model.inputs, [detector_model.outputs[0], feature_layer.output], name="detector_and_features"
    )
    latent_dim = int(generator.input_shape[-1])
    signature = [tf.TensorSpec((None, latent_dim), tf.float32)]
    # A partial, not a closure per call: each scorer keeps its own trace.
    return tf.function(
        functools.partial(_fused_forward, generator, two_outputs, discriminator), input_signature=signature
    )


@dataclasses.dataclass
class GeneratedEpoch:
    pixels: np.ndarray
    p_fake: np.ndarray
    features: np.ndarray
    discriminator_p_fake: np.ndarray | None
    latents: np.ndarray


def generate_and_score(scorer, latents: np.ndarray, head: str, batch_size: int = 256, progress=None) -> GeneratedEpoch:
    """Run the fused scorer over `latents` in batches; `progress` (a tqdm bar) is advanced per image."""
    from detector.models import outputs_to_p_fake

    parts: dict[str, list[np.ndarray]] = {"pixels": [], "outputs": [], "features": [], "discriminator": []}
    for start in range(0, len(latents), batch_size):
        result = scorer(latents[start : start + batch_size])
        for key, value in result.items():
            parts[key].append(np.asarray(value))
        if progress is not None:
            progress.update(min(batch_size, len(latents) - start))
    outputs = np.concatenate(parts["outputs"])
    features = np.concatenate(parts["features"])
    return GeneratedEpoch(
        pixels=np.clip(np.concatenate(parts["pixels"]), 0.0, 1.0).astype(np.float32),
        p_fake=outputs_to_p_fake(outputs, head),
        features=features.reshape(len(features), -1),
        discriminator_p_fake=outputs_to_p_fake(np.concatenate(parts["discriminator"]), "logit")
        if parts["discriminator"]
        else None,
        latents=latents,
    )


# --------------------------------------------------------------------------- data


def detector_index(detector):
    """The detector's data set index (its own splits), read from its config.json."""
    from detector.data import index_folder

    config = detector.config
    root = config.get("data_path") or config.get("data_root") or config.get("data")
    if not root or not Path(root).is_dir():
        raise LabError(
            f"{detector.run_dir / 'config.json'}: the detector's data folder {root!r} is not on this machine; "
            "the stress test needs its held-out real test images"
        )
    split = config.get("split") or (0.8, 0.1, 0.1)
    return index_folder(root, split=tuple(split), seed=int(config.get("seed", 0)))


def split_images(index, split: str, label: int, size: int, crop: str, limit: int | None) -> np.ndarray:
    """Up to `limit` images of one class from one split of the detector's data, as float32 pixels."""
    from detector.data import Split, load_images

    if split not in index.splits:
        return np.zeros((0, size, size, 3), dtype=np.float32)
    chosen = index.splits[split]
    paths = [path for path, value in zip(chosen.paths, np.asarray(chosen.labels)) if int(value) == label]
    if not paths:
        return np.zeros((0, size, size, 3), dtype=np.float32)
    pixels, _, _ = load_images(Split(paths=paths, labels=np.full(len(paths), label)), size, crop=crop, limit=limit)
    return np.asarray(pixels, dtype=np.float32)


def export_fakes(pixels: np.ndarray, out: str | os.PathLike, epoch: int, layout: str | None, seed: int = 0) -> Path:
    """Write fakes as PNGs in the detector's folder layout.

    "140k": out/{train,valid,test}/fake/ (80/10/10); "ciplab": out/training_fake/; otherwise out/fake/.
    """
    from detector.images import save_png

    out = Path(out)
    if layout == "140k":
        # 80/10/10 like the synthetic data sets, by a fixed shuffle of the batch.
        order = np.random.default_rng(np.random.SeedSequence([seed, epoch, 3])).permutation(len(pixels))
        cut_train, cut_valid = int(round(0.8 * len(pixels))), int(round(0.9 * len(pixels)))
        splits = {"train": order[:cut_train], "valid": order[cut_train:cut_valid], "test": order[cut_valid:]}
        for split, indices in splits.items():
            for index in indices:
                save_png(out / split / "fake" / f"gan-epoch-{epoch:04d}-{index:05d}.png", pixels[index])
    else:
        folder = out / ("training_fake" if layout == "ciplab" else "fake")
        for index, image in enumerate(pixels):
            save_png(folder / f"gan-epoch-{epoch:04d}-{index:05d}.png", image)
    return out


def write_scores_csv(path: Path, real_p_fake, fake_p_fake, real_discriminator=None, fake_discriminator=None) -> Path:
    """One row per scored image: label (0 real, 1 fake), the detector's P(fake), the discriminator's."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "label", "p_fake", "discriminator_p_fake"])
    for label, scores, disc in ((0, real_p_fake, real_discriminator), (1, fake_p_fake, fake_discriminator)):
        for index, value in enumerate(scores):
            disc_value = "" if disc is None else repr(float(disc[index]))
            writer.writerow([index, label, repr(float(value)), disc_value])
    return atomic_write_text(path, buffer.getvalue())


def read_scores_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays written by `write_scores_csv`: labels, p_fake, discriminator_p_fake (nan if absent)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "labels": np.array([int(row["label"]) for row in rows]),
        "p_fake": np.array([float(row["p_fake"]) for row in rows]),
        "discriminator_p_fake": np.array([float(row["discriminator_p_fake"] or "nan") for row in rows]),
    }


# --------------------------------------------------------------------------- the harness


@dataclasses.dataclass
class _Pass:
    """Everything one scoring pass (a detector over all chosen epochs) produces."""

    rows: list[dict]
    spectra: dict[int, np.ndarray]
    fooled: dict[int, tuple[np.ndarray, np.ndarray]]  # epoch -> (pixels, p_fake) of the lowest-scored fakes
    latest_pixels: np.ndarray | None


def _score_pass(
    detector,
    label: str,
    gan_dir: Path,
    epochs: list[int],
    real: np.ndarray,
    config: StressConfig,
    run_dir: Path,
    layout: str | None,
    progress: bool,
    first_pass: bool,
) -> _Pass:
    """Generate and score every chosen epoch's fakes with one detector; write its scores files."""
    from detector.models import outputs_to_p_fake
    from gan_lab.spectra import power_spectrum
    from gan_lab.train import load_discriminator, load_generator

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(epochs) * config.n, unit="fake", desc=f"Scoring fakes ({label})")
    real_p_fake = detector.score(real)
    real_features = detector.features(real)
    rows, spectra, fooled = [], {}, {}
    latest_pixels = None
    try:
        for epoch in epochs:
            generator = load_generator(gan_dir, epoch)
            discriminator_model = load_discriminator(gan_dir, epoch)
            output_shape = tuple(generator.output_shape[1:])
            if output_shape != (detector.size, detector.size, 3):
                raise LabError(
                    f"The generator of {gan_dir} (epoch {epoch}) makes {output_shape} images but the detector "
                    f"{detector.run_dir} takes ({detector.size}, {detector.size}, 3)"
                )
            latents = stress_latents(config.seed, epoch, config.n, int(generator.input_shape[-1]))
            check_not_grid(latents, gan_dir)
            scorer = build_fused_scorer(generator, detector.model, detector.feature_layer(), discriminator_model)
            generated = generate_and_score(scorer, latents, detector.head, config.batch_size, bar)
            real_discriminator = outputs_to_p_fake(
                np.asarray(discriminator_model.predict(real, batch_size=config.batch_size, verbose=0)), "logit"
            )
            scores = EpochScores(
                epoch=epoch,
                threshold=detector.threshold,
                fake_p_fake=generated.p_fake,
                real_p_fake=real_p_fake,
                fake_features=generated.features,
                real_features=real_features,
                discriminator_fake_p_fake=generated.discriminator_p_fake,
                discriminator_real_p_fake=real_discriminator,
                seed=config.seed,
            )
            rows.append({"kind": "epoch", "detector": label, "epoch": epoch, **compute_metrics(scores)})
            scores_dir = run_dir / ("scores" if first_pass else f"scores-{label}")
            write_scores_csv(
                scores_dir / f"epoch-{epoch:04d}.csv",
                real_p_fake,
                generated.p_fake,
                real_discriminator,
                generated.discriminator_p_fake,
            )
            if first_pass:
                spectra[epoch] = power_spectrum(generated.pixels)
                lowest = np.argsort(generated.p_fake, kind="mergesort")[:GALLERY_SIZE]
                fooled[epoch] = (generated.pixels[lowest], generated.p_fake[lowest])
                if config.export_fakes:
                    export_fakes(generated.pixels, config.export_fakes, epoch, layout, config.seed)
            if epoch == epochs[-1]:
                latest_pixels = generated.pixels
    finally:
        if bar is not None:
            bar.close()
    return _Pass(rows=rows, spectra=spectra, fooled=fooled, latest_pixels=latest_pixels)


def sweep_rows(
    detector, label: str, real: np.ndarray, fakes: np.ndarray, epoch: int, seed: int = 0, points=None
) -> list[dict]:
    """Detection figures on perturbed real images and fakes, one row per (perturbation, level)."""
    from gan_lab.perturb import DEFAULT_SWEEP, perturb

    rows = []
    for name, level in points or DEFAULT_SWEEP:
        # Real images and fakes get different noise draws, both fixed by the seed.
        real_p_fake = detector.score(perturb(real, name, level, seed=seed))
        fake_p_fake = detector.score(perturb(fakes, name, level, seed=seed + 1))
        rows.append(
            {
                "kind": "sweep",
                "detector": label,
                "epoch": epoch,
                "perturbation": name,
                "level": level,
                "threshold": detector.threshold,
                "n_fake": len(fake_p_fake),
                "n_real": len(real_p_fake),
                **detection_figures(fake_p_fake, real_p_fake, detector.threshold),
            }
        )
    return rows


def _validate(config: StressConfig) -> None:
    if not isinstance(config.n, int) or config.n < 2:
        raise ValueError(f"n must be an integer of at least 2 (KID needs two fakes). Received: n={config.n!r}")
    if not isinstance(config.batch_size, int) or config.batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={config.batch_size!r}")
    if not isinstance(config.harden_fine_tune_epochs, int) or config.harden_fine_tune_epochs < 1:
        raise ValueError(
            f"harden_fine_tune_epochs must be a positive integer. Received: harden_fine_tune_epochs={config.harden_fine_tune_epochs!r}"
        )
    if not config.detector:
        raise LabError("No detector run given: pass --detector RUN_DIR (a runs/NNNNN-detector-... directory)")


def run_stress(config: StressConfig, runs_dir: str | os.PathLike = "runs", progress: bool = True) -> Path:
    """Stress-test a detector run against fresh fakes from a GAN run's epochs; returns the stress run directory."""
    from detector.predict import load_detector
    from gan_lab.spectra import power_spectrum
    from gan_lab.stress_report import write_outputs

    _validate(config)
    detector_dir = require_run_dir(config.detector, "detector")
    gan_dir, checkpoints = require_gan_run(config.gan)
    detector = load_detector(detector_dir)
    gan_config = read_json(gan_dir / "config.json")
    if gan_config.get("size") not in (None, detector.size):
        raise LabError(
            f"Image sizes differ: {gan_dir / 'config.json'} makes {gan_config['size']} px fakes but the detector "
            f"{detector_dir} takes {detector.size} px; train both at one size"
        )
    epochs = select_epochs(config.epochs, list(checkpoints))
    harden_epochs = []
    if config.harden:
        # By default hardening trains on fakes of every scored epoch.
        harden_epochs = (
            epochs
            if config.harden_epochs is None
            else select_epochs(config.harden_epochs, list(checkpoints), "--harden-epochs")
        )
    index = detector_index(detector)
    real = split_images(index, "test", 0, detector.size, detector.crop, config.n)
    if len(real) < 2:
        raise LabError(
            f"The detector's data {index.root} has {len(real)} real test images; the stress test needs at least 2"
        )
    training_fakes = split_images(index, "train", 1, detector.size, detector.crop, config.n)

    run_dir = create_run_dir("stress", config.name, runs_dir)
    resolved = dataclasses.replace(
        config,
        detector=os.fspath(detector_dir.resolve()),
        gan=os.fspath(gan_dir.resolve()),
        epochs=epochs,
        harden_epochs=harden_epochs or None,
        export_fakes=os.fspath(Path(config.export_fakes).resolve()) if config.export_fakes else None,
    )
    feature_layer = detector.feature_layer()
    context = {
        "detector_threshold": detector.threshold,
        "feature_layer": feature_layer.name,
        "feature_width": int(np.prod(feature_layer.output.shape[1:])),
        "n_real_test": int(len(real)),
        "data": os.fspath(index.root),
        "layout": index.layout,
        "latent_streams": {
            "scoring": f"SeedSequence([seed, epoch, {SCORING_STREAM}])",
            "hardening": f"SeedSequence([seed, epoch, {HARDENING_STREAM}])",
        },
    }
    write_json(run_dir / "config.json", {**dataclasses.asdict(resolved), "resolved": context})
    if progress:
        print(
            f"[stress] {detector_dir.name} against {gan_dir.name}, epochs {epochs}, {config.n} fakes each -> {run_dir}",
            flush=True,
        )

    original = _score_pass(
        detector, "original", gan_dir, epochs, real, config, run_dir, index.layout, progress, first_pass=True
    )
    rows = list(original.rows)
    if config.sweeps:
        rows += sweep_rows(detector, "original", real, original.latest_pixels, epochs[-1], config.seed)

    hardening = None
    if config.harden:
        from detector.predict import load_detector as load
        from gan_lab.harden import harden_detector

        hardened_dir = harden_detector(
            detector_dir,
            gan_dir,
            harden_epochs,
            run_dir / "hardened",
            n=config.n,
            seed=config.seed,
            fine_tune_epochs=config.harden_fine_tune_epochs,
            batch_size=min(config.batch_size, 64),
            progress=progress,
        )
        hardened = load(hardened_dir)
        after = _score_pass(
            hardened, "hardened", gan_dir, epochs, real, config, run_dir, index.layout, progress, first_pass=False
        )
        rows += after.rows
        if config.sweeps:
            rows += sweep_rows(hardened, "hardened", real, after.latest_pixels, epochs[-1], config.seed)
        hardening = {
            "run_dir": hardened_dir,
            "epochs": harden_epochs,
            "metrics": read_json(hardened_dir / "metrics.json"),
        }

    spectra = {"real (test split)": power_spectrum(real)}
    if len(training_fakes):
        spectra["detector's training fakes"] = power_spectrum(training_fakes)
    spectra.update({f"GAN epoch {epoch}": spectrum for epoch, spectrum in original.spectra.items()})
    write_outputs(
        run_dir,
        resolved,
        rows,
        context,
        gan_dir=gan_dir,
        spectra=spectra,
        size=detector.size,
        fooled=original.fooled,
        hardening=hardening,
    )
    if progress:
        print(f"[stress] wrote {run_dir / 'report.md'}", flush=True)
    return run_dir


def result_rows(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of a stress run's results.json."""
    return read_json(Path(run_dir) / "results.json")


def write_results(run_dir: Path, rows: list[dict]) -> None:
    """results.json (a list of rows) and results.csv (COLUMNS, blank where a figure does not apply)."""
    full = [{column: row.get(column) for column in COLUMNS} for row in rows]
    write_json(run_dir / "results.json", full)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in full:
        writer.writerow(
            [
                "" if row[column] is None else (f"{row[column]:.6g}" if isinstance(row[column], float) else row[column])
                for column in COLUMNS
            ]
        )
    atomic_write_text(run_dir / "results.csv", buffer.getvalue())


__all__ = [
    "StressConfig",
    "run_stress",
    "EPOCH_METRICS",
    "register_metric",
    "compute_metrics",
    "EpochScores",
    "detection_figures",
    "build_fused_scorer",
    "generate_and_score",
    "stress_latents",
    "select_epochs",
    "require_gan_run",
    "sweep_rows",
    "write_results",
    "result_rows",
    "read_scores_csv",
    "export_fakes",
]
