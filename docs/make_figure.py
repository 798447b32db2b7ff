"""Make the README's example figure from a quickstart run.

    python docs/make_figure.py runs/NNNNN-quickstart [--out docs/quickstart-example.png]

Three panels: the sample grid of the GAN epoch with the most faces (the run's faces_found
watch; the last epoch where it has none), the detector's and the discriminator's detection
rate on fresh fakes per GAN epoch, and the detector's test metrics.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from detector.base.runs import atomic_write_bytes, read_json, require_run_dir  # noqa: E402
from gan_lab.gan.report import best_faces_epoch, read_history  # noqa: E402

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def make_figure(quickstart_dir: str | Path) -> bytes:
    """The figure as PNG bytes."""
    run_dir = require_run_dir(quickstart_dir, "quickstart")
    state = read_json(run_dir / "state.json")
    detector_dir, gan_dir, stress_dir = (Path(state[key]) for key in ("detector", "gan", "stress"))
    metrics = read_json(detector_dir / "metrics.json")
    rows = [
        row
        for row in read_json(stress_dir / "results.json")
        if row["kind"] == "epoch" and row["detector"] == "original"
    ]
    best = best_faces_epoch(read_history(gan_dir))
    epoch = best["epoch"] if best else max(row["epoch"] for row in rows)
    title = f"DCGAN samples, epoch {epoch}" + (f" ({100 * best['faces_found']:.0f}% faces)" if best else "")

    figure = Figure(figsize=(12, 3.8), dpi=100, layout="constrained")
    grid_axes, rate_axes, metric_axes = figure.subplots(1, 3, width_ratios=(1.0, 1.3, 1.0))

    grid_axes.imshow(Image.open(gan_dir / "samples" / f"epoch-{epoch:04d}.png").convert("RGB"))
    grid_axes.set_title(title)
    grid_axes.axis("off")

    epochs = [row["epoch"] for row in rows]
    rate_axes.plot(epochs, [row["detection_rate"] for row in rows], "o-", label="detector: fakes caught")
    rate_axes.plot(epochs, [row["roc_auc"] for row in rows], "s--", label="detector: ROC-AUC")
    rate_axes.plot(epochs, [row["disc_detection_rate"] for row in rows], "^:", label="discriminator: fakes caught")
    rate_axes.set_ylim(-0.03, 1.03)
    rate_axes.set_xlabel("GAN epoch")
    rate_axes.set_title("Fresh fakes, scored per GAN epoch")
    rate_axes.xaxis.get_major_locator().set_params(integer=True)
    rate_axes.legend(fontsize=8, loc="lower left")
    rate_axes.grid(alpha=0.3)

    values = [metrics[name] for name in METRICS]
    bars = metric_axes.barh(METRICS[::-1], values[::-1], color="#4c72b0")
    metric_axes.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
    metric_axes.set_xlim(0, 1.15)
    metric_axes.set_title("Detector, SynthFaces test split")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a runs/NNNNN-quickstart directory")
    parser.add_argument("--out", default=str(Path(__file__).with_name("quickstart-example.png")))
    args = parser.parse_args()
    print(atomic_write_bytes(args.out, make_figure(args.run_dir)))


if __name__ == "__main__":
    main()
