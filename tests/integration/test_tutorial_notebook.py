"""The tutorial notebook runs from top to bottom on small settings (``SPIKELOC_NOTEBOOK_QUICK=1``)."""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "tutorial.ipynb"


def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)  # committed clean
    monkeypatch.setenv("SPIKELOC_NOTEBOOK_QUICK", "1")  # the kernel inherits it
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # runs/ would go there
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "ideal observer test" in text and "hidden units silent" in text and "standard deviation" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 5  # stimuli, weights, errors, tuning curves, ablation
