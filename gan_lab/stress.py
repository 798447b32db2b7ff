"""The stress test: score a detector on fresh, never-seen fakes from every GAN epoch.

For each saved GAN epoch, latents from a seed stream of their own (never the training
grid's) go through generator -> detector in one graph, giving P(fake) and the detector's
penultimate features in the same pass. Per-epoch figures are registered metric functions
(`gan_lab.stress_metrics`), kept apart from the loop as in StyleGAN2-ADA's metric registry.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from detector import FAKE, REAL
from detector.data import class_images, run_index
from detector.errors import LabError
from detector.predict import load_detector
from detector.runs import atomic_write_text, create_run_dir, read_json, require_run_dir, write_json
from gan_lab.checkpoints import load_discriminator, load_generator, require_gan_run
from gan_lab.harden import harden_detector
from gan_lab.latents import (
    EXPORT_SHUFFLE_STREAM,
    SCORING_STREAM,
    check_not_grid,
    describe_streams,
    seeded_latents,
    stream_rng,
)
from gan_lab.stress_metrics import EpochScores, compute_metrics, detection_figures
from gan_lab.stress_report import write_outputs

GALLERY_SIZE = 8


@dataclasses.dataclass
class StressConfig:
    """Every option of a stress run; the run's config.json holds them resolved."""

    detector: str = ""  # a detector run directory
    gan: str = ""  # a GAN run directory
    epochs: str | tuple[int, ...] = "all"  # GAN epochs to score: "all", "1,5,10", or epoch numbers
    n: int = 256  # fresh fakes per epoch, and real test images
    seed: int = 0  # the same seed gives the same fakes and the same real images
    batch_size: int = 256  # generation and scoring batch
    sweeps: bool = True  # robustness sweeps (JPEG, blur, rescaling, noise) at the last epoch
    export_fakes: str | None = None  # also write the fakes as PNGs in the detector's folder layout here
    harden: bool = False  # fine-tune a copy of the detector on extra fakes and score it too
    harden_epochs: str | tuple[int, ...] | None = None  # GAN epochs whose fakes hardening trains on; None: all scored
    harden_fine_tune_epochs: int = 1  # fine-tuning epochs of hardening
    name: str = ""  # run directory suffix


# --------------------------------------------------------------------------- epochs


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


def export_fakes(pixels: np.ndarray, out: str | os.PathLike, epoch: int, layout: str | None, seed: int = 0) -> Path:
    """Write fakes as PNGs in the detector's folder layout.

    "140k": out/{train,valid,test}/fake/ (80/10/10); "ciplab": out/training_fake/; otherwise out/fake/.
    """
    from detector.images import save_png

    out = Path(out)
    if layout == "140k":
        # 80/10/10 like the synthetic data sets, by a fixed shuffle of the batch.
        order = stream_rng(seed, epoch, EXPORT_SHUFFLE_STREAM).permutation(len(pixels))
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
            latents = seeded_latents(config.seed, epoch, config.n, int(generator.input_shape[-1]), SCORING_STREAM)
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


@dataclasses.dataclass
class _Inputs:
    """What a stress run scores, checked before its directory exists."""

    detector: Any
    gan_dir: Path
    epochs: list[int]
    harden_epochs: list[int]
    index: Any
    real: np.ndarray
    training_fakes: np.ndarray


def _gather_inputs(config: StressConfig) -> _Inputs:
    """The detector, the GAN run's chosen epochs and the real images, or a LabError saying what is wrong."""
    _validate(config)
    detector = load_detector(require_run_dir(config.detector, "detector"))
    gan_dir, checkpoints = require_gan_run(config.gan)
    gan_config = read_json(gan_dir / "config.json")
    if gan_config.get("size") not in (None, detector.size):
        raise LabError(
            f"Image sizes differ: {gan_dir / 'config.json'} makes {gan_config['size']} px fakes but the detector "
            f"{detector.run_dir} takes {detector.size} px; train both at one size"
        )
    epochs = select_epochs(config.epochs, list(checkpoints))
    harden_epochs = []
    if config.harden:  # by default hardening trains on fakes of every scored epoch
        chosen = config.harden_epochs
        harden_epochs = epochs if chosen is None else select_epochs(chosen, list(checkpoints), "--harden-epochs")
    index = run_index(detector.config, Path(detector.run_dir) / "config.json")
    real = class_images(index, "test", REAL, detector.size, detector.crop, config.n, seed=config.seed)
    if len(real) < 2:
        raise LabError(
            f"The detector's data {index.root} has {len(real)} real test images; the stress test needs at least 2"
        )
    training_fakes = class_images(index, "train", FAKE, detector.size, detector.crop, config.n, seed=config.seed)
    return _Inputs(detector, gan_dir, epochs, harden_epochs, index, real, training_fakes)


def _start_run_dir(config: StressConfig, inputs: _Inputs, runs_dir) -> tuple[Path, StressConfig, dict]:
    """The stress run directory with its config.json: (run_dir, resolved config, what was resolved besides)."""
    run_dir = create_run_dir("stress", config.name, runs_dir)
    resolved = dataclasses.replace(
        config,
        detector=os.fspath(Path(inputs.detector.run_dir).resolve()),
        gan=os.fspath(inputs.gan_dir.resolve()),
        epochs=tuple(inputs.epochs),
        harden_epochs=tuple(inputs.harden_epochs) or None,
        export_fakes=os.fspath(Path(config.export_fakes).resolve()) if config.export_fakes else None,
    )
    feature_layer = inputs.detector.feature_layer()
    context = {
        "detector_threshold": inputs.detector.threshold,
        "feature_layer": feature_layer.name,
        "feature_width": int(np.prod(feature_layer.output.shape[1:])),
        "n_real_test": int(len(inputs.real)),
        "data": os.fspath(inputs.index.root),
        "layout": inputs.index.layout,
        "latent_streams": describe_streams(),
    }
    write_json(run_dir / "config.json", {**dataclasses.asdict(resolved), "resolved": context})
    return run_dir, resolved, context


def _detector_rows(detector, label: str, inputs: _Inputs, config: StressConfig, run_dir: Path, progress: bool):
    """One detector's pass over every chosen epoch, then its robustness sweeps at the last epoch."""
    scored = _score_pass(
        detector,
        label,
        inputs.gan_dir,
        inputs.epochs,
        inputs.real,
        config,
        run_dir,
        inputs.index.layout,
        progress,
        first_pass=label == "original",
    )
    rows = list(scored.rows)
    if config.sweeps:
        rows += sweep_rows(detector, label, inputs.real, scored.latest_pixels, inputs.epochs[-1], config.seed)
    return scored, rows


def _harden_and_rescore(inputs: _Inputs, config: StressConfig, run_dir: Path, progress: bool):
    """(rows of the hardened detector, what hardening did) after fine-tuning a copy on fresh fakes."""
    hardened_dir = harden_detector(
        inputs.detector.run_dir,
        inputs.gan_dir,
        inputs.harden_epochs,
        run_dir / "hardened",
        n=config.n,
        seed=config.seed,
        fine_tune_epochs=config.harden_fine_tune_epochs,
        batch_size=min(config.batch_size, 64),
        progress=progress,
    )
    _, rows = _detector_rows(load_detector(hardened_dir), "hardened", inputs, config, run_dir, progress)
    hardening = {
        "run_dir": hardened_dir,
        "epochs": inputs.harden_epochs,
        "metrics": read_json(hardened_dir / "metrics.json"),
    }
    return rows, hardening


def _spectra(inputs: _Inputs, per_epoch: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    from gan_lab.spectra import power_spectrum

    spectra = {"real (test split)": power_spectrum(inputs.real)}
    if len(inputs.training_fakes):
        spectra["detector's training fakes"] = power_spectrum(inputs.training_fakes)
    spectra.update({f"GAN epoch {epoch}": spectrum for epoch, spectrum in per_epoch.items()})
    return spectra


def run_stress(config: StressConfig, runs_dir: str | os.PathLike = "runs", progress: bool = True) -> Path:
    """Stress-test a detector run against fresh fakes from a GAN run's epochs; returns the stress run directory."""
    inputs = _gather_inputs(config)
    run_dir, resolved, context = _start_run_dir(config, inputs, runs_dir)
    if progress:
        print(
            f"[stress] {Path(inputs.detector.run_dir).name} against {inputs.gan_dir.name}, epochs {inputs.epochs}, "
            f"{config.n} fakes each -> {run_dir}",
            flush=True,
        )
    original, rows = _detector_rows(inputs.detector, "original", inputs, config, run_dir, progress)
    hardening = None
    if config.harden:
        hardened_rows, hardening = _harden_and_rescore(inputs, config, run_dir, progress)
        rows += hardened_rows
    write_outputs(
        run_dir,
        resolved,
        rows,
        context,
        gan_dir=inputs.gan_dir,
        spectra=_spectra(inputs, original.spectra),
        size=inputs.detector.size,
        fooled=original.fooled,
        hardening=hardening,
    )
    if progress:
        print(f"[stress] wrote {run_dir / 'report.md'}", flush=True)
    return run_dir
