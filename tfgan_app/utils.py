"""Small shared helpers: atomic file writes, JSON, Gaussian Fréchet distance."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On an exception the temporary file (or directory) is removed and ``path`` is untouched, so
    a reader never sees a half-written file. ``suffix`` keeps the extension Keras insists on
    (e.g. ``".keras"``).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    os.remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str, obj, *, sort_keys: bool = False, allow_nan: bool = True) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (numpy values converted).

    ``allow_nan=False`` refuses NaN/inf (strict JSON) instead of writing ``NaN``.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, default=_default, sort_keys=sort_keys,
                      allow_nan=allow_nan)
            f.write("\n")


def read_json(path: str):
    """Read JSON from ``path``, with a clear error when the file is missing or corrupt."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def gaussian_frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet (2-Wasserstein squared) distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``.

    ``||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1^{1/2} cov2 cov1^{1/2})^{1/2})``, in float64
    (the same formula as FID, on raw coordinates). ``mu``: ``[D]``, ``cov``: ``[D, D]``.
    """
    from scipy import linalg

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    s1 = linalg.sqrtm(cov1)
    covmean = linalg.sqrtm(s1 @ cov2 @ s1)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2.0 * covmean))


def sample_frechet_to_gaussian(samples, mu, cov) -> float:
    """Fréchet distance between the Gaussian fit of ``samples`` ``[N, D]`` and ``N(mu, cov)``."""
    samples = np.asarray(samples, np.float64)
    return gaussian_frechet_distance(samples.mean(0), np.cov(samples, rowvar=False), mu, cov)
