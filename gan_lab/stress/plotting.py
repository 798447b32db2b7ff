"""Matplotlib without a display, and figures saved atomically as PNG: shared by the stress test's plots."""

from __future__ import annotations

import io
from pathlib import Path

from detector.base.runs import atomic_write_bytes


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path, dpi: int = 110) -> Path:
    """Lay out, write as PNG atomically, close; returns the path."""
    plt = pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
