"""The notebooks run top to bottom in QUICK mode, sharing one runs folder as a user's would."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_detector", "02_dcgan", "03_stress_test", "04_arena")


def test_notebooks_are_committed_without_outputs():
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), name
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert "QUICK" in code[0].source


def _outputs(notebook, output_type):
    return [
        output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == output_type
    ]


def _bars(notebook) -> list[str]:
    """The text a saved notebook keeps of each progress widget (what a viewer without widgets shows)."""
    return [
        output.data["text/plain"]
        for output in _outputs(notebook, "display_data")
        if "application/vnd.jupyter.widget-view+json" in output.data
    ]


def _check_reads_cleanly(name: str, notebook, html: str) -> None:
    """Read after it ran: no TensorFlow start-up lines, no per-step or per-update lines, one finished bar per loop."""
    for text in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard"):
        assert text not in html, f"{name}: {text}"
    streams = "".join(output.text for output in _outputs(notebook, "stream"))
    assert "\r" not in streams and "\b" not in streams, f"{name}: a text progress bar was printed"
    assert "━" not in streams and "/step" not in streams, f"{name}: Keras's per-step bar was printed"
    for bar in _bars(notebook):
        assert "100%" in bar, f"{name}: a bar was saved unfinished: {bar}"
    assert all(bar.startswith(("SynthFaces:", "Training:", "Scoring")) for bar in _bars(notebook)), _bars(notebook)


@pytest.mark.slow
def test_notebooks_run_in_quick_mode_and_read_cleanly_when_exported(tmp_path):
    from nbconvert import HTMLExporter

    runs = tmp_path / "runs"
    bars = {}
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        # As papermill does: parameters appended to the tagged cell.
        parameters = next(cell for cell in notebook.cells if cell.cell_type == "code")
        parameters.source += f"\nQUICK = True\nRUNS_DIR = {str(runs)!r}\n"
        client = NotebookClient(
            notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        client.execute()  # raises CellExecutionError naming the failing cell
        assert not _outputs(notebook, "error"), name
        images = [output for output in _outputs(notebook, "display_data") if "image/png" in output.data]
        assert images, f"{name} showed no picture"
        html, _ = HTMLExporter().from_notebook_node(notebook)
        (tmp_path / f"{name}.html").write_text(html)
        _check_reads_cleanly(name, notebook, html)
        bars[name] = _bars(notebook)
    # 01 renders SynthFaces (240 images in QUICK mode) and trains; 02 trains the GAN (2 epochs).
    assert [bar for bar in bars["01_detector"] if bar.startswith("SynthFaces")] == [
        next(bar for bar in bars["01_detector"] if "240/240" in bar)
    ]
    assert sum(bar.startswith("Training:") for bar in bars["01_detector"]) == 1
    assert [bar.split("|")[2].split()[0] for bar in bars["02_dcgan"] if bar.startswith("Training:")] == ["2/2"]
