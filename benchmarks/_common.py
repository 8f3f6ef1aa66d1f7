"""Shared benchmark helpers: a Markdown table printer and a JSON writer."""

from __future__ import annotations

import json
import os
import tempfile
import platform
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
#: The real MNIST test set (IDX files) beside the repository, for benchmarks only.
MNIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                         "data", "mnist")
#: Its two files, and the ``idx:IMAGES,LABELS`` dataset name that runs the MNIST presets on them.
MNIST_IMAGES = os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")
MNIST_LABELS = os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz")
MNIST_IDX = f"idx:{MNIST_IMAGES},{MNIST_LABELS}"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), to state beside every figure."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next((ln.split(":", 1)[1].strip() for ln in fh
                         if ln.startswith("model name")), "?")
    except OSError:
        return "?"


def machine() -> dict:
    import tensorflow as tf

    return {"cpu": cpu_name(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def table(rows: list[dict], columns: list[str]) -> str:
    """Markdown table of ``rows`` (dicts) in ``columns`` order; floats to 4 significant digits."""
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write(name: str, payload: dict, quick: bool = False) -> str:
    """Write ``payload`` (plus machine info) to ``benchmarks/results/<name>.json``; a
    ``quick`` smoke run to ``<tempdir>/<name>.quick.json`` instead (it records nothing)."""
    folder = tempfile.gettempdir() if quick else RESULTS
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.quick.json" if quick else f"{name}.json")
    tmp = f"{path}.{os.getpid()}.tmp"  # one per process: two writers never share it
    with open(tmp, "w") as f:
        json.dump({"machine": machine(), **payload}, f, indent=2)
    os.replace(tmp, path)
    return path


def read(name: str) -> dict:
    """``benchmarks/results/<name>.json`` as written by :func:`write`, or ``{}``."""
    path = os.path.join(RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
