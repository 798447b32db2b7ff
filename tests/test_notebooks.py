"""The notebooks run top to bottom in QUICK mode, sharing one runs folder as a user's would."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_detector", "02_dcgan", "03_stress_test")


def test_notebooks_are_committed_without_outputs():
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), name
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert "QUICK" in code[0].source


@pytest.mark.slow
def test_notebooks_run_in_quick_mode(tmp_path):
    runs = tmp_path / "runs"
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        # As papermill does: parameters appended to the tagged cell.
        parameters = next(cell for cell in notebook.cells if cell.cell_type == "code")
        parameters.source += f"\nQUICK = True\nRUNS_DIR = {str(runs)!r}\n"
        client = NotebookClient(
            notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        client.execute()  # raises CellExecutionError naming the failing cell
        errors = [
            output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"
        ]
        assert not errors, name
        images = [
            output
            for cell in notebook.cells
            for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})
        ]
        assert images, f"{name} showed no picture"
