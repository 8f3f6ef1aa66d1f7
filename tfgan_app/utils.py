"""Small shared helpers: atomic file writes and their temporary names, JSON, the one
non-finite check (:func:`non_finite_logs`, :func:`non_finite_variables`), Gaussian Fréchet
distance."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import re
import shutil
import socket
import tempfile

import numpy as np

#: Every temporary file or directory the package writes starts with this prefix.
TEMP_PREFIX = ".tmp-"
# ".tmp-<pid>-<host tag>-...": which process wrote it, so that a later run can tell a
# temporary left by a killed writer from one still being written.
_TAGGED = re.compile(r"^\.tmp-(\d+)-([0-9a-f]{8})-")


def host_tag() -> str:
    """8 hex digits naming this machine (in temporary names)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def temp_prefix(tag: str = "") -> str:
    """The prefix of this process's temporary names: ``.tmp-<pid>-<host tag>-<tag>``."""
    return f"{TEMP_PREFIX}{os.getpid()}-{host_tag()}-{tag}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_stale_temporary(name: str, legacy: bool = False) -> bool:
    """Whether ``name`` is a temporary left by a killed write of this package: tagged with a
    process of this machine that no longer runs, or -- with ``legacy`` -- an untagged
    ``.tmp-*`` name (written before names carried their writer; only safe to remove when no
    other process can be writing there). Other names, user files included, are never stale."""
    if not name.startswith(TEMP_PREFIX):
        return False
    m = _TAGGED.match(name)
    if m is None:
        return legacy
    pid, host = int(m.group(1)), m.group(2)
    return host == host_tag() and pid != os.getpid() and not pid_alive(pid)


def remove_stale_temporaries(directory: str, legacy: bool = False) -> list[str]:
    """Remove the stale temporaries (:func:`is_stale_temporary`) directly inside
    ``directory``; returns their paths (``[]`` for a missing directory)."""
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in names:
        if is_stale_temporary(name, legacy):
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On an exception the temporary file (or directory) is removed and ``path`` is untouched, so
    a reader never sees a half-written file. ``suffix`` keeps the extension Keras insists on
    (e.g. ``".keras"``). The temporary's name starts with :func:`temp_prefix`, so one left by
    a killed process is recognised (:func:`remove_stale_temporaries`).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=suffix, dir=directory)
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


class NonFiniteError(FloatingPointError):
    """Training produced NaN or infinite losses or weights (see
    :class:`tfgan_app.callbacks.TrainingGuard`). ``epoch`` (1-based) and ``quantities``
    (``{name: value}``) say where."""

    def __init__(self, message: str, epoch: int | None = None, quantities: dict | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.quantities = dict(quantities or {})


def non_finite_logs(logs, skip_prefix: str | None = None) -> dict:
    """The entries of a Keras ``logs`` dict that are NaN or infinite numbers (``{key: value}``),
    skipping keys that start with ``skip_prefix``."""
    return {k: float(v) for k, v in (logs or {}).items()
            if not (skip_prefix and k.startswith(skip_prefix))
            and isinstance(v, numbers.Real) and not isinstance(v, bool)
            and not math.isfinite(float(v))}


def non_finite_variables(variables) -> list[str]:
    """Names (``.path``, else ``.name``) of the variables holding a NaN or an infinity.

    ``variables``: Keras/TF variables or ``(name, array)`` pairs. Integer variables (step
    counters, seed states) are skipped.
    """
    bad = []
    for v in variables:
        name, value = v if isinstance(v, tuple) else (
            getattr(v, "path", None) or getattr(v, "name", "?"), v)
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if arr.dtype.kind in "biuOSU":  # counters, seed states, flags
            continue
        if arr.dtype.kind not in "fc":  # e.g. bfloat16
            arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            bad.append(str(name))
    return bad


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
