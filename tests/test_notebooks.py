"""The notebooks in notebooks/ run end to end (with small settings) and are committed executed.

Each notebook has one cell tagged ``parameters`` (papermill's convention) holding the
full-run defaults; the committed notebooks carry the outputs of a full run. In CI every
notebook is executed with nbclient (not papermill): a cell that overrides the parameters with
the small values of :data:`SMALL` is inserted right after the parameters cell, the kernel runs
in a temporary working directory, and ``WORK_DIR`` (where a notebook writes its runs and
exports) points into it. A failing cell raises ``CellExecutionError`` with its traceback.
Small mode changes only sizes (epochs, samples, trials), so every code path still runs.

The kernel is this interpreter (``sys.executable``, via a kernelspec written by ipykernel into
a temporary ``JUPYTER_PATH``), so the notebooks see the same installed ``tfgan_app`` as the
tests, whatever other ``python3`` kernels the machine has.
"""

from __future__ import annotations

import ast
import copy
import os
import sys
import time

import nbformat
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(REPO, "notebooks")
KERNEL_NAME = "tfgan-app-notebooks"
CELL_TIMEOUT = 600          # seconds per cell
MAX_NOTEBOOK_BYTES = 1_000_000

#: Small settings per notebook (CI); the parameters cells hold the full-run defaults.
SMALL = {
    "01_two_gaussians.ipynb": {"EPOCHS": 2},
    "02_digits_dcgan.ipynb": {"EPOCHS": 2, "PLOT_EVERY": 1, "N_LATENT": 200},
    "03_losses_and_mode_collapse.ipynb": {"D_STEPS": 20, "EPOCHS": 2, "N_POINTS": 2560},
    "04_conditional_gan.ipynb": {"EPOCHS": 2, "PLOT_EVERY": 1, "N_PER_CLASS": 20},
    "05_evaluation.ipynb": {"EPOCHS": 2, "EVAL_EVERY": 1, "PARZEN_SAMPLES": 500},
    "06_tuning.ipynb": {"MAX_TRIALS": 2, "EPOCHS": 2},
    "07_export_and_serving.ipynb": {"EPOCHS": 1},
    "08_distributed.ipynb": {"EPOCHS": 2},
    "09_image_to_image.ipynb": {"EPOCHS": 1, "BASE_FILTERS": 8},
    "10_cyclegan.ipynb": {"EPOCHS": 1},
}


def _read(name):
    return nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)


def _parameters_index(nb) -> int:
    found = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(found) == 1, f"expected exactly one cell tagged 'parameters', found {found}"
    return found[0]


def _assigned_names(source: str) -> set:
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def with_parameters(nb, values: dict):
    """A copy of ``nb`` without outputs and with a cell assigning ``values`` inserted right
    after the parameters cell (tagged ``injected-parameters``, as papermill would)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    source = "# Injected by tests/test_notebooks.py: small settings\n" + "\n".join(
        f"{k} = {v!r}" for k, v in values.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(_parameters_index(nb) + 1, cell)
    return nb


def test_every_notebook_has_small_settings():
    on_disk = sorted(f for f in os.listdir(NOTEBOOKS) if f.endswith(".ipynb"))
    assert on_disk == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_parameters_cell_declares_the_small_settings(name):
    nb = _read(name)
    declared = _assigned_names(nb.cells[_parameters_index(nb)].source)
    assert set(SMALL[name]) | {"WORK_DIR"} <= declared, declared


@pytest.mark.parametrize("name", sorted(SMALL))
def test_committed_notebook_is_executed_without_errors(name):
    """The committed file carries a full run's outputs: every code cell ran, in order, and
    none failed; and it stays small enough to review."""
    nb = _read(name)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert None not in counts, "some code cells were not executed"
    assert counts == sorted(counts), "cells were executed out of order"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors, errors[0].get("ename")
    assert os.path.getsize(os.path.join(NOTEBOOKS, name)) < MAX_NOTEBOOK_BYTES


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory):
    """A JUPYTER_PATH whose kernelspec runs ipykernel in this interpreter."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(str(root / "kernels" / KERNEL_NAME),
                      overrides={"display_name": "tfgan_app tests"})
    return str(root)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs_with_small_settings(name, tmp_path, jupyter_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", jupyter_path)
    assert KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
    nb = with_parameters(_read(name), {**SMALL[name], "WORK_DIR": str(tmp_path / "work")})
    before = sorted(os.listdir(NOTEBOOKS))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(tmp_path)}})
    t0 = time.time()
    client.execute()  # raises CellExecutionError (with the traceback) when a cell fails
    print(f"{name}: {time.time() - t0:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # Everything went to the temporary directory, nothing into the repository's notebooks/.
    assert sorted(os.listdir(NOTEBOOKS)) == before
    assert os.listdir(tmp_path / "work"), "the notebook wrote nothing to WORK_DIR"
