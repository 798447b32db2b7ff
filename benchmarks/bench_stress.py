"""Fakes generated and scored per second: the stress harness's fused pass against bare forward passes.

bare: the generator's and the detector's forward passes, each its own tf.function, run one
after the other per batch (what any harness must do at least). harness: gan_lab.stress.run's
one-graph scorer (latents -> generator -> detector P(fake) + penultimate features), with
and without the epoch's discriminator, through `generate_and_score`. harness + measures: the
same, then every registered per-epoch metric (rates with Wilson intervals, AP/ROC-AUC/balanced
accuracy with 1000 bootstrap resamples, KID and diversity in the detector's features, against
--reals real images), Inception off; and once more with MTCNN's face test on every fake. Last, the
same cnn3 exported to ONNX and imported (`gan-lab detector import`), through the harness against
the generator and a bare onnxruntime session on the same fakes.
Untrained weights: speed does not depend on them (MTCNN's own weights ship with it).

    .venv/bin/python benchmarks/bench_stress.py --size 64 --n 1024
"""

from __future__ import annotations

import argparse
import functools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _call(model, inputs):
    return model(inputs, training=False)


def best_rate(function, n: int, repeats: int) -> float:
    """Images per second of `function()` (which handles n images), best of `repeats` after a warm-up."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return n / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=1024, help="fakes per timed run")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: default)")
    parser.add_argument("--reals", type=int, default=400, help="real images the per-epoch measures compare with")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from detector.models.zoo import build_model, outputs_to_p_fake
    from gan_lab.gan.dcgan import build_discriminator, build_generator
    from gan_lab.gan.latents import SCORING_STREAM, seeded_latents
    from gan_lab.stress.epoch_metrics import EpochScores, compute_metrics
    from gan_lab.stress.run import build_fused_scorer, generate_and_score

    generator = build_generator(size=args.size)
    detector = build_model("cnn3", size=args.size)
    discriminator = build_discriminator("cnn3", size=args.size)
    latent_dim = int(generator.input_shape[-1])
    latents = seeded_latents(0, 1, args.n, latent_dim, SCORING_STREAM)
    image_spec = tf.TensorSpec((None, args.size, args.size, 3), tf.float32)
    generate = tf.function(
        functools.partial(_call, generator), input_signature=[tf.TensorSpec((None, latent_dim), tf.float32)]
    )
    score = tf.function(functools.partial(_call, detector), input_signature=[image_spec])

    def bare_generator():
        for start in range(0, args.n, args.batch_size):
            np.asarray(generate(latents[start : start + args.batch_size]))

    def bare_generator_and_detector():
        for start in range(0, args.n, args.batch_size):
            pixels = np.asarray(generate(latents[start : start + args.batch_size]))
            outputs_to_p_fake(np.asarray(score(pixels)), "probability")

    fused = build_fused_scorer(generator, detector)
    fused_with_discriminator = build_fused_scorer(generator, detector, discriminator=discriminator)

    # Stand-ins for the real images' scores and features: the same shapes, which is all speed depends on.
    real_latents = seeded_latents(1, 1, args.reals, latent_dim, SCORING_STREAM)
    real_scored = generate_and_score(fused, real_latents, "probability", args.batch_size)

    def harness_with_measures(faces=None, scorer=fused_with_discriminator):
        generated = generate_and_score(scorer, latents, "probability", args.batch_size)
        scores = EpochScores(
            epoch=1,
            threshold=0.5,
            fake_p_fake=generated.p_fake,
            real_p_fake=real_scored.p_fake,
            fake_features=generated.features,
            real_features=real_scored.features,
            discriminator_fake_p_fake=generated.discriminator_p_fake,
            discriminator_real_p_fake=None if generated.discriminator_p_fake is None else real_scored.p_fake,
            fake_faces=None if faces is None else faces.found(generated.pixels),
        )
        compute_metrics(scores)

    rates = {
        "bare generator only": best_rate(bare_generator, args.n, args.repeats),
        "bare generator + detector": best_rate(bare_generator_and_detector, args.n, args.repeats),
        "harness (P(fake) + features)": best_rate(
            lambda: generate_and_score(fused, latents, "probability", args.batch_size), args.n, args.repeats
        ),
        "harness (+ discriminator)": best_rate(
            lambda: generate_and_score(fused_with_discriminator, latents, "probability", args.batch_size),
            args.n,
            args.repeats,
        ),
    }
    # The bare rate runs no discriminator: this row compares like with like, the next adds the discriminator.
    rates["harness + measures, no discriminator"] = best_rate(
        lambda: harness_with_measures(scorer=fused), args.n, args.repeats
    )
    rates["harness + measures (Inception off)"] = best_rate(harness_with_measures, args.n, args.repeats)
    from gan_lab.metrics.faces import FaceFinder

    finder = FaceFinder()
    rates["harness + measures + MTCNN faces"] = best_rate(lambda: harness_with_measures(finder), args.n, args.repeats)
    reference = rates["bare generator + detector"]
    print(f"size {args.size} px, n {args.n}, batch {args.batch_size}, best of {args.repeats}")
    for name, rate in rates.items():
        print(f"{name:38s} {rate:9.1f} fakes/s  ({rate / reference:6.1%} of bare generator + detector)")
    onnx_rates = imported_onnx_rates(generator, detector, generate, latents, args)
    print("An imported ONNX detector (the cnn3 above, exported), on the same fakes (goal: at least 90%):")
    bare = onnx_rates["bare generator + onnxruntime"]
    for name, rate in onnx_rates.items():
        print(f"{name:38s} {rate:9.1f} fakes/s  ({rate / bare:6.1%} of bare generator + onnxruntime)")


def imported_onnx_rates(generator, detector_model, generate, latents, args) -> dict[str, float]:
    """The harness with an imported ONNX detector against generator + onnxruntime with nothing around them."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import onnxruntime

    from detector.inference.imported import ImportConfig, import_detector
    from detector.inference.predict import load_detector
    from detector.models.interchange import export_model
    from gan_lab.stress.run import build_fused_scorer, generate_and_score

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = export_model(detector_model, "probability", Path(folder) / "cnn3.onnx", "onnx")
        run = import_detector(ImportConfig(model=str(onnx_path), size=args.size), runs_dir=Path(folder) / "runs")
        imported = load_detector(run)
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        pixels_only = build_fused_scorer(generator, None)

        def bare():
            for start in range(0, args.n, args.batch_size):
                pixels = np.asarray(generate(latents[start : start + args.batch_size]))
                session.run(None, {name: pixels})

        def harness():
            generate_and_score(pixels_only, latents, "probability", args.batch_size, detector=imported)

        return {
            "bare generator + onnxruntime": best_rate(bare, args.n, args.repeats),
            "harness, imported ONNX detector": best_rate(harness, args.n, args.repeats),
        }


if __name__ == "__main__":
    main()
