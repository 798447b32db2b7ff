"""The stress test: score a detector on fresh, never-seen fakes from every GAN epoch.

For each saved GAN epoch, latents from a seed stream of their own (never the training
grid's) go through generator -> detector in one graph, giving P(fake) and the detector's
penultimate features in the same pass. Per-epoch figures are registered metric functions
(`gan_lab.stress.epoch_metrics`), kept apart from the loop as in StyleGAN2-ADA's metric registry.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
from pathlib import Path

import numpy as np

from detector.base.errors import LabError
from detector.base.runs import atomic_write_text, create_run_dir, read_json, write_json
from detector.inference.predict import load_detector
from detector.training.scaling import Scaling
from gan_lab.gan.checkpoints import load_discriminator, load_generator
from gan_lab.gan.latents import EXPORT_SHUFFLE_STREAM, SCORING_STREAM, check_not_grid, seeded_latents, stream_rng
from gan_lab.stress.epoch_metrics import SEED_SPREAD_KEYS, EpochScores, compute_metrics, detection_figures
from gan_lab.stress.harden import harden_detector
from gan_lab.stress.inputs import StressConfig, StressInputs, resolve_inputs
from gan_lab.stress.report import write_outputs

GALLERY_SIZE = 8


# --------------------------------------------------------------------------- the fused pass


def _fused_forward(generator, two_outputs, discriminator, encode, latents):
    pixels = generator(latents, training=False)
    if encode is not None:
        pixels = encode(pixels)
    result = {"pixels": pixels}
    if two_outputs is not None:
        result["outputs"], result["features"] = two_outputs(pixels, training=False)
    if discriminator is not None:
        result["discriminator"] = discriminator(pixels, training=False)
    return result


def build_fused_scorer(
    generator, detector_model, feature_layer=None, discriminator=None, jit: bool = False, strategy=None, encode=None
):
    """One tf.function: latents -> generator [-> encode] -> detector (outputs and penultimate features) [-> discriminator].

    Returns a callable taking float32 latents (B, latent_dim) and returning a dict of
    tensors: pixels, outputs (raw detector head), features, and discriminator (raw logit).
    detector_model None (an imported detector, outside Keras): pixels and discriminator only.
    jit: compile it with XLA. strategy: a tf.distribute strategy (its models made in its scope)
    whose replicas each take a share of every batch, in order. encode: pixels -> pixels as the
    fakes are stored before scoring (a `gan_lab.stress.formats.Encoding`); what it returns is
    what every output is computed on, and the pixels returned.
    """
    import keras
    import tensorflow as tf

    two_outputs = None
    if detector_model is not None:
        feature_layer = feature_layer or detector_model.layers[-2]
        two_outputs = keras.Model(
            detector_model.inputs, [detector_model.outputs[0], feature_layer.output], name="detector_and_features"
        )
    latent_dim = int(generator.input_shape[-1])
    signature = [tf.TensorSpec((None, latent_dim), tf.float32)]
    # A partial, not a closure per call: each scorer keeps its own trace.
    forward = functools.partial(_fused_forward, generator, two_outputs, discriminator, encode)
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return tf.function(forward, input_signature=signature, jit_compile=jit)
    step = tf.function(functools.partial(strategy.run, tf.function(forward, jit_compile=jit)))
    return functools.partial(_on_replicas, step, strategy)


def _on_replicas(step, strategy, latents: np.ndarray) -> dict:
    """`step` (strategy.run of the scorer) on `latents`, each replica taking its share in order."""
    import tensorflow as tf

    shares = np.array_split(np.asarray(latents, dtype=np.float32), strategy.num_replicas_in_sync)
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(shares[context.replica_id_in_sync_group])
    )
    results = step(args=(per_replica,))
    return {
        key: np.concatenate([np.asarray(part) for part in strategy.experimental_local_results(value)])
        for key, value in results.items()
    }


@dataclasses.dataclass
class GeneratedEpoch:
    pixels: np.ndarray
    p_fake: np.ndarray
    features: np.ndarray | None  # None for an imported detector
    discriminator_p_fake: np.ndarray | None
    latents: np.ndarray


def generate_and_score(scorer, latents: np.ndarray, head: str, batch_size: int = 256, progress=None, detector=None):
    """Run the fused scorer over `latents` in batches; `progress` (a progress bar) is advanced per image.

    detector: an imported detector, scoring each batch's pixels after the fused pass (which then has no outputs).
    """
    from detector.models.zoo import outputs_to_p_fake

    parts: dict[str, list[np.ndarray]] = {"pixels": [], "outputs": [], "features": [], "discriminator": []}
    for start in range(0, len(latents), batch_size):
        result = {key: np.asarray(value) for key, value in scorer(latents[start : start + batch_size]).items()}
        if detector is not None:
            result["outputs"] = detector.predict_batch(np.clip(result["pixels"], 0.0, 1.0).astype(np.float32))
        for key, value in result.items():
            parts[key].append(value)
        if progress is not None:
            progress.update(min(batch_size, len(latents) - start))
    outputs = np.concatenate(parts["outputs"])
    features = np.concatenate(parts["features"]) if parts["features"] else None
    return GeneratedEpoch(
        pixels=np.clip(np.concatenate(parts["pixels"]), 0.0, 1.0).astype(np.float32),
        p_fake=outputs_to_p_fake(outputs, head),
        features=None if features is None else features.reshape(len(features), -1),
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
    from detector.data.images import save_png

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
    caught: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)  # epoch -> per fake: called fake
    # epoch -> (fakes, the training images nearest them): the closest pairs of the memorisation check
    closest: dict[int, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    seed_rows: list[dict] = dataclasses.field(default_factory=list)  # the seed runs' rows, epoch by epoch


@dataclasses.dataclass
class _Reference:
    """What every epoch is compared with: the real images, their scores and features, once per detector."""

    pixels: np.ndarray
    p_fake: np.ndarray
    features: np.ndarray | None
    inception: np.ndarray | None = None


def _epoch_scores(
    config: StressConfig, detector, epoch: int, generated, reference: _Reference, real_discriminator, probe, nearest
):
    return EpochScores(
        epoch=epoch,
        threshold=detector.threshold,
        operating_thresholds=detector.operating_thresholds,
        fake_p_fake=generated.p_fake,
        real_p_fake=reference.p_fake,
        fake_features=generated.features,
        real_features=reference.features,
        discriminator_fake_p_fake=generated.discriminator_p_fake,
        discriminator_real_p_fake=real_discriminator,
        seed=config.seed,
        resamples=config.bootstrap,
        fake_inception=None if probe is None else probe.inception_features(generated.pixels),
        real_inception=reference.inception,
        fake_faces=None if probe is None else probe.faces_found(generated.pixels),
        nearest=nearest,
    )


def _nearest_reals(inputs: StressInputs, generated, scored: _Pass, epoch: int):
    """Each fake's nearest training and held-out real image (None when the check cannot be made); keeps the closest pairs."""
    from gan_lab.metrics.memorisation import closest_pairs, nearest_reals

    reals = inputs.memorisation
    if reals.training is None:
        return None
    nearest = nearest_reals(generated.pixels, reals.training, reals.held_out)
    pairs = closest_pairs(nearest, GALLERY_SIZE)
    scored.closest[epoch] = (
        generated.pixels[[fake for fake, _ in pairs]],
        reals.training[[training for _, training in pairs]],
    )
    return nearest


def _seed_rows(seeded: list, epoch: int, generated, config: StressConfig) -> list[dict]:
    """The seed runs on this epoch's fakes, each against its own real test images ((run, their P(fake)) in `seeded`)."""
    from gan_lab.stress.epoch_metrics import operating_points

    rows = []
    for each, real_p_fake in seeded:
        detector = each.detector
        fake_p_fake = detector.score(generated.pixels)
        rows.append(
            {
                "kind": "seed",
                "detector": each.label,
                "epoch": epoch,
                "seed": detector.config.get("seed", 0),
                "n_fake": len(fake_p_fake),
                "n_real": len(real_p_fake),
                "threshold": detector.threshold,
                **detection_figures(
                    fake_p_fake, real_p_fake, detector.threshold, [config.seed, epoch], config.bootstrap
                ),
                **operating_points(fake_p_fake, real_p_fake, detector.operating_thresholds),
            }
        )
    return rows


def with_seed_spread(epoch_rows: list[dict], seed_rows: list[dict]) -> list[dict]:
    """Each epoch row gains the mean and standard deviation (ddof 1) of its verdicts over itself and the seed runs."""
    from detector.base.runs import is_number

    for row in epoch_rows:
        runs = [row, *(other for other in seed_rows if other["epoch"] == row["epoch"])]
        if len(runs) < 2:
            continue
        row["seed_runs"] = len(runs)
        for key in SEED_SPREAD_KEYS:
            values = [run[key] for run in runs if is_number(run.get(key))]
            if len(values) == len(runs):
                row[f"{key}_seed_mean"] = float(np.mean(values))
                row[f"{key}_seed_sd"] = float(np.std(values, ddof=1))
    return epoch_rows


def with_holm_memorisation(rows: list[dict]) -> list[dict]:
    """The epoch rows' memorisation p-values Holm-adjusted across the epochs, as `memorisation_p_holm`."""
    from gan_lab.metrics.significance import holm_adjusted

    tested = [row for row in rows if "memorisation_p" in row]
    for row, adjusted in zip(tested, holm_adjusted([row["memorisation_p"] for row in tested])):
        row["memorisation_p_holm"] = float(adjusted)
    return rows


def _keep_first_pass_outputs(scored: _Pass, generated, epoch: int, config: StressConfig, layout) -> None:
    from gan_lab.metrics.spectra import power_spectrum

    scored.spectra[epoch] = power_spectrum(generated.pixels)
    lowest = np.argsort(generated.p_fake, kind="mergesort")[:GALLERY_SIZE]
    scored.fooled[epoch] = (generated.pixels[lowest], generated.p_fake[lowest])
    if config.export_fakes:
        export_fakes(generated.pixels, config.export_fakes, epoch, layout, config.seed)


def _generate_epoch(detector, inputs: StressInputs, config: StressConfig, epoch: int, scaling, bar):
    """One epoch's fresh fakes, stored as the reals are and scored in one fused pass; the discriminator on the reals."""
    from detector.inference.predict import compiled_forward, in_batches
    from detector.models.zoo import outputs_to_p_fake

    with scaling.scope():
        generator = load_generator(inputs.gan_dir, epoch)
        discriminator_model = load_discriminator(inputs.gan_dir, epoch)
    output_shape = tuple(generator.output_shape[1:])
    if output_shape != (detector.size, detector.size, 3):
        raise LabError(
            f"The generator of {inputs.gan_dir} (epoch {epoch}) makes {output_shape} images but the detector "
            f"{detector.run_dir} takes ({detector.size}, {detector.size}, 3)"
        )
    latents = seeded_latents(config.seed, epoch, config.n, int(generator.input_shape[-1]), SCORING_STREAM)
    check_not_grid(latents, inputs.gan_dir)
    scorer = build_fused_scorer(
        generator,
        detector.model,
        detector.feature_layer(),
        discriminator_model,
        config.jit,
        scaling.strategy,
        inputs.encoding,
    )
    outside = detector if detector.imported else None
    generated = generate_and_score(scorer, latents, detector.head, config.batch_size, bar, outside)
    real_logits = in_batches(compiled_forward(discriminator_model, detector.size), inputs.real, config.batch_size)
    return generated, outputs_to_p_fake(real_logits, "logit")


def _score_pass(detector, label: str, inputs: StressInputs, config: StressConfig, run_dir: Path, probe, progress: bool):
    """Generate and score every chosen epoch's fakes with one detector; write its scores files.

    probe: the detector-independent quality measures (first pass only), or None.
    """
    first_pass = probe is not None
    bar = None
    if progress:
        from detector.base.console import progress_bar

        bar = progress_bar(total=len(inputs.epochs) * config.n, unit="fake", desc=f"Scoring fakes ({label})")
    reference = _Reference(inputs.real, detector.score(inputs.real), detector.features(inputs.real))
    if first_pass:
        reference.inception = probe.inception_features(inputs.real)
    scored = _Pass(rows=[], spectra={}, fooled={}, latest_pixels=None)
    seeded = [(each, each.detector.score(each.reals.pixels)) for each in inputs.seed_runs] if first_pass else []
    scaling = Scaling.of(config)
    try:
        for epoch in inputs.epochs:
            generated, real_discriminator = _generate_epoch(detector, inputs, config, epoch, scaling, bar)
            nearest = _nearest_reals(inputs, generated, scored, epoch) if first_pass else None
            scores = _epoch_scores(config, detector, epoch, generated, reference, real_discriminator, probe, nearest)
            row = {"kind": "epoch", "detector": label, "epoch": epoch, "seed": detector.config.get("seed")}
            scored.rows.append({**row, **compute_metrics(scores)})
            scored.caught[epoch] = generated.p_fake >= detector.threshold
            write_scores_csv(
                run_dir / ("scores" if first_pass else f"scores-{label}") / f"epoch-{epoch:04d}.csv",
                reference.p_fake,
                generated.p_fake,
                real_discriminator,
                generated.discriminator_p_fake,
            )
            if first_pass:
                _keep_first_pass_outputs(scored, generated, epoch, config, inputs.index.layout)
                scored.seed_rows += _seed_rows(seeded, epoch, generated, config)
            if epoch == inputs.epochs[-1]:
                scored.latest_pixels = generated.pixels
    finally:
        if bar is not None:
            bar.close()
    with_holm_memorisation(scored.rows)
    with_seed_spread(scored.rows, scored.seed_rows)
    return scored


def _reals_row(detector, label: str, inputs: StressInputs, probe) -> dict:
    """The real comparison images' own figures: face-found rate and diversity, the references for the fakes'."""
    from gan_lab.metrics.diversity import mean_pairwise_distance
    from gan_lab.metrics.intervals import rate_with_interval

    row = {"kind": "real", "detector": label, "n_real": len(inputs.real)}
    features = detector.features(inputs.real)
    if features is not None:  # an imported detector's features are out of reach
        row["diversity"] = float(mean_pairwise_distance(features))
    faces = probe.faces_found(inputs.real) if probe is not None else None
    if faces is not None:
        row.update({**rate_with_interval("faces_found", faces), "n_faces": len(faces)})
    return {**row, **format_check(detector, inputs.real, inputs.encoding)}


def format_check(detector, real: np.ndarray, encoding) -> dict:
    """The real comparison images stored again as the fakes are, and how often the detector then calls them fake.

    If the detector keyed on the storage format, re-encoded reals would be called fake more often
    than the reals as read; the two-proportion test says whether they are.
    """
    from gan_lab.metrics.intervals import rate_with_interval
    from gan_lab.metrics.significance import two_proportion_p

    if encoding.kind == "float" or not len(real):
        return {}
    as_read = detector.score(real) >= detector.threshold
    reencoded = detector.score(np.asarray(encoding(real), dtype=np.float32)) >= detector.threshold
    return {
        **rate_with_interval("reencoded_reals_called_fake", reencoded),
        "reals_called_fake": float(as_read.mean()),
        "format_check_p": two_proportion_p(int(reencoded.sum()), len(real), int(as_read.sum()), len(real)),
    }


def sweep_rows(
    detector,
    label: str,
    real: np.ndarray,
    fakes: np.ndarray,
    epoch: int,
    seed: int = 0,
    points=None,
    resamples: int = 200,
) -> list[dict]:
    """Fakes caught, reals called fake and AP on perturbed real images and fakes, one row per (perturbation, level).

    Each row also tests its two rates against the same images unperturbed, image by image
    (McNemar): `sweep_fakes_p` and `sweep_reals_p`.
    """
    from gan_lab.metrics.significance import mcnemar_p
    from gan_lab.stress.perturb import DEFAULT_SWEEP, perturb

    clean_real, clean_fakes = detector.score(real) >= detector.threshold, detector.score(fakes) >= detector.threshold
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
                **detection_figures(fake_p_fake, real_p_fake, detector.threshold, [seed, epoch], resamples),
                "sweep_fakes_p": mcnemar_p(clean_fakes, fake_p_fake >= detector.threshold),
                "sweep_reals_p": mcnemar_p(clean_real, real_p_fake >= detector.threshold),
            }
        )
    return rows


def strongest_epoch(rows: list[dict]) -> int:
    """The epoch whose fakes the detector separated best from real images (AP, then fakes caught; earliest on ties)."""
    epochs = [row for row in rows if row["kind"] == "epoch"]
    return max(epochs, key=lambda row: (row["average_precision"], row["detection_rate"], -row["epoch"]))["epoch"]


def _fakes_of_epoch(inputs: StressInputs, config: StressConfig, epoch: int) -> np.ndarray:
    """The scored fakes of an epoch again (the same latents give the same images)."""
    from gan_lab.gan.sample import generate

    generator = load_generator(inputs.gan_dir, epoch)
    latents = seeded_latents(config.seed, epoch, config.n, int(generator.input_shape[-1]), SCORING_STREAM)
    return generate(generator, latents, config.batch_size)


def _sweeps(detector, label: str, inputs: StressInputs, config: StressConfig, scored: _Pass, sweep_epochs: list[int]):
    rows = []
    for epoch in sweep_epochs:
        fakes = scored.latest_pixels if epoch == inputs.epochs[-1] else _fakes_of_epoch(inputs, config, epoch)
        rows += sweep_rows(
            detector, label, inputs.real, fakes, epoch, config.seed, resamples=min(config.bootstrap, 200)
        )
    return rows


def _start_run_dir(config: StressConfig, inputs: StressInputs, runs_dir) -> tuple[Path, StressConfig, dict]:
    """The stress run directory with its config.json: (run_dir, resolved config, what was resolved besides)."""
    run_dir = create_run_dir("stress", config.name, runs_dir)
    resolved, context = inputs.resolved_config(config), inputs.context()
    write_json(run_dir / "config.json", {**dataclasses.asdict(resolved), "resolved": context})
    return run_dir, resolved, context


def _detector_rows(
    detector, label: str, inputs: StressInputs, config: StressConfig, run_dir: Path, probe, progress: bool
):
    """One detector's pass over every chosen epoch, then its robustness sweeps at the strongest and last epochs."""
    scored = _score_pass(detector, label, inputs, config, run_dir, probe, progress)
    rows = [*scored.rows, *scored.seed_rows]
    if probe is not None:
        rows.insert(0, _reals_row(detector, label, inputs, probe))
    return scored, rows


def paired_hardening_columns(original: dict[int, np.ndarray], hardened: dict[int, np.ndarray], trained_on) -> dict:
    """Per epoch, the same fakes' verdicts before and after hardening compared with McNemar's exact test.

    epoch -> {"paired_p", "newly_caught", "newly_missed", "trained_on"}: the fakes only the hardened
    detector catches and those only the original did, and whether hardening trained on that epoch's
    generator (its own fakes always come from another latent stream).
    """
    from gan_lab.metrics.significance import mcnemar_p

    columns = {}
    for epoch in sorted(set(original) & set(hardened)):
        before, after = original[epoch], hardened[epoch]
        columns[epoch] = {
            "paired_p": mcnemar_p(before, after),
            "newly_caught": int(np.sum(~before & after)),
            "newly_missed": int(np.sum(before & ~after)),
            "trained_on": epoch in trained_on,
        }
    return columns


def _harden(inputs: StressInputs, config: StressConfig, run_dir: Path, progress: bool):
    """(the hardened detector, what hardening did) after fine-tuning a copy on fresh fakes."""
    hardened_dir = harden_detector(
        inputs.detector.run_dir,
        inputs.gan_dir,
        list(inputs.harden_epochs),
        run_dir / "hardened",
        n=config.n,
        seed=config.seed,
        fine_tune_epochs=config.harden_fine_tune_epochs,
        batch_size=min(config.batch_size, 64),
        progress=progress,
    )
    hardening = {
        "run_dir": hardened_dir,
        "epochs": list(inputs.harden_epochs),
        "metrics": read_json(hardened_dir / "metrics.json"),
    }
    return load_detector(hardened_dir), hardening


def _spectra(inputs: StressInputs, per_epoch: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    from gan_lab.metrics.spectra import power_spectrum

    spectra = {"real (test split)": power_spectrum(inputs.real)}
    if len(inputs.training_fakes):
        spectra["detector's training fakes"] = power_spectrum(inputs.training_fakes)
    spectra.update({f"GAN epoch {epoch}": spectrum for epoch, spectrum in per_epoch.items()})
    return spectra


def _matrix_rows(inputs: StressInputs, config: StressConfig, hardened, progress: bool) -> list[dict]:
    """Every detector (and the hardened one) against every source: the generalisation matrix's cells."""
    from gan_lab.stress.matrix import SourceFakes, matrix_cell, with_means

    fakes = SourceFakes(config.n, config.seed, config.batch_size, inputs.indexes, inputs.encoding)
    detectors = [(each.label, each.detector, each.reals.pixels) for each in inputs.detectors]
    if hardened is not None:
        detectors.insert(1, (f"{detectors[0][0]} (hardened)", hardened, inputs.real))
    rows = []
    for position, (label, detector, real) in enumerate(detectors):
        real_p_fake = detector.score(real)
        for column, source in enumerate(inputs.sources):
            fake_p_fake = detector.score(fakes.for_detector(source, detector))
            seed = [config.seed, position, column]
            rows.append(
                matrix_cell(label, source, fake_p_fake, real_p_fake, detector.threshold, seed, config.bootstrap)
            )
    if progress:
        print(f"[stress] generalisation matrix: {len(detectors)} detectors x {len(inputs.sources)} sources", flush=True)
    return with_means(rows)


def run_stress(config: StressConfig, runs_dir: str | os.PathLike = "runs", progress: bool = True) -> Path:
    """Stress-test detector runs against fresh fakes from GAN runs' epochs (and other sources); returns the run directory."""
    from gan_lab.metrics.quality import open_probe

    inputs = resolve_inputs(config)
    run_dir, resolved, context = _start_run_dir(config, inputs, runs_dir)
    if progress:
        print(
            f"[stress] {Path(inputs.detector.run_dir).name} against {inputs.gan_dir.name}, epochs {inputs.epochs}, "
            f"{config.n} fakes each -> {run_dir}",
            flush=True,
        )
    probe = open_probe(
        config.inception, config.faces, config.inception_n, config.faces_n, inception_weights=config.inception_weights
    )
    context["quality"] = dict(probe.notes)
    write_json(run_dir / "config.json", {**dataclasses.asdict(resolved), "resolved": context})
    if progress:
        for note in probe.notes.values():
            print(f"[stress] {note}", flush=True)
    original, rows = _detector_rows(inputs.detector, "original", inputs, config, run_dir, probe, progress)
    sweep_epochs = sorted({strongest_epoch(rows), inputs.epochs[-1]})
    if config.sweeps:
        rows += _sweeps(inputs.detector, "original", inputs, config, original, sweep_epochs)
    hardening = hardened = None
    if config.harden:
        hardened, hardening = _harden(inputs, config, run_dir, progress)
        scored, hardened_rows = _detector_rows(hardened, "hardened", inputs, config, run_dir, None, progress)
        paired = paired_hardening_columns(original.caught, scored.caught, hardening["epochs"])
        rows += [{**row, **paired.get(row["epoch"], {})} if row["kind"] == "epoch" else row for row in hardened_rows]
        if config.sweeps:
            rows += _sweeps(hardened, "hardened", inputs, config, scored, sweep_epochs)
    matrix = _matrix_rows(inputs, config, hardened, progress)
    write_outputs(
        run_dir,
        resolved,
        rows,
        context,
        gan_dir=inputs.gan_dir,
        spectra=_spectra(inputs, original.spectra),
        size=inputs.detector.size,
        fooled=original.fooled,
        closest=original.closest,
        hardening=hardening,
        matrix=matrix,
    )
    if progress:
        print(f"[stress] wrote {run_dir / 'report.md'}", flush=True)
    return run_dir
