"""Mode coverage for the 2-D mixtures and class coverage for labelled images.

**Mode coverage** (VEEGAN, Srivastava et al. 2017): draw 2,500 samples; a sample is *high
quality* when its Euclidean distance to the nearest mode centre is at most ``3 * std`` (the
mixture components' standard deviation); a mode is *captured* when at least one high-quality
sample is nearest to it.

What "about 99.7%" means here: 99.73% is the 1-D three-sigma rule. For an isotropic 2-D
Gaussian the distance to the centre is Rayleigh-distributed, so exact samples from the mixture
are within ``3 std`` with probability ``1 - exp(-9/2) = 98.89%`` (:data:`EXACT_HIGH_QUALITY_2D`)
-- that is what an exact sampler scores under the Euclidean criterion. (Requiring each
coordinate within 3 std would give ``0.9973^2 = 99.46%``.) We keep the published Euclidean
criterion and test against 98.89%.

**Class coverage** for labelled images: classify generated images with the offline
classifier; a sample counts when the classifier's confidence is at least ``threshold``
(:data:`CONFIDENT`, 0.9: the one threshold of every "confident rate" in the package, the
doctor's and the benchmarks', :func:`confident_rate`); a class is *covered* when it receives
at least ``min_fraction`` (10%) of the confident samples a uniform class distribution would
give it.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "VEEGAN_NUM_SAMPLES",
    "EXACT_HIGH_QUALITY_2D",
    "mode_coverage",
    "toy_modes",
    "class_coverage",
    "CONFIDENT",
    "confident_rate",
]

VEEGAN_NUM_SAMPLES = 2500
EXACT_HIGH_QUALITY_2D = 1.0 - math.exp(-4.5)
#: A classified sample is *confident* when the classifier's largest softmax probability is at
#: least this.
CONFIDENT = 0.9


def confident_rate(confidences, threshold: float = CONFIDENT) -> float:
    """The fraction of samples classified with confidence at least ``threshold``.

    ``confidences``: ``float [N]`` largest softmax probabilities (what
    :func:`tfgan_app.evaluation.classify` returns second), or ``[N, K]`` class probabilities.
    """
    c = np.asarray(confidences, dtype=np.float64)
    if c.ndim == 2:
        c = c.max(-1)
    if c.ndim != 1 or len(c) == 0:
        raise ValueError(f"confidences must be a non-empty [N] or [N, K] array; got shape "
                         f"{c.shape}")
    return float(np.mean(c >= threshold))


def toy_modes(spec: dict):
    """Mode centres and component std from a toy spec (``config["data"]`` of a toy run).

    Args:
      spec: a dict with ``"modes"`` (list of ``[x, y]``) and ``"std"``, as written by
        :func:`tfgan_app.data.toy.ring` / ``grid``; or ``{"name": "ring"|"grid", ...}`` with the
        generator's keyword arguments (``std``, ``radius``/``spacing``, ...).

    Returns:
      ``(modes float64 [K, 2], std float)``.

    Raises:
      ValueError: the spec describes no mixture (e.g. the d2l Gaussian).
    """
    from tfgan_app.data.toy import (GRID_SIDE, GRID_SPACING, GRID_STD, RING_MODES, RING_RADIUS,
                                    RING_STD, grid_modes, ring_modes)

    if not isinstance(spec, dict):
        raise ValueError(f"spec must be a dict; got {type(spec).__name__}")
    if "modes" in spec and "std" in spec:
        modes = np.asarray(spec["modes"], dtype=np.float64)
        std = float(spec["std"])
    elif spec.get("name") == "ring":
        modes = ring_modes(int(spec.get("num_modes", RING_MODES)),
                           float(spec.get("radius", RING_RADIUS)))
        std = float(spec.get("std", RING_STD))
    elif spec.get("name") == "grid":
        modes = grid_modes(int(spec.get("side", GRID_SIDE)),
                           float(spec.get("spacing", GRID_SPACING)))
        std = float(spec.get("std", GRID_STD))
    else:
        raise ValueError(f"spec {spec.get('name', spec)!r} is not a mixture of modes: expected "
                         "'modes' and 'std' keys or name 'ring' / 'grid'")
    if modes.ndim != 2 or len(modes) == 0 or std <= 0:
        raise ValueError(f"bad mixture spec: modes shape {modes.shape}, std {std}")
    return modes, std


def mode_coverage(points, modes, std: float, threshold: float = 3.0) -> dict:
    """VEEGAN mode coverage and high-quality fraction.

    Args:
      points: ``float [N, D]`` samples (VEEGAN: N = 2,500, D = 2).
      modes: ``float [K, D]`` mode centres.
      std: the components' standard deviation (> 0).
      threshold: high quality when ``||x - nearest mode|| <= threshold * std``.

    Returns:
      ``{"modes_captured": int in 0..K, "num_modes": K, "high_quality": fraction in [0, 1],
      "mode_counts": list of K ints (high-quality samples per mode)}``.

    Raises:
      ValueError: bad shapes/values or ``std <= 0``.
    """
    from tfgan_app.evaluation.metrics import check_activations

    x = check_activations(points, "points", min_rows=1)
    m = check_activations(modes, "modes", min_rows=1)
    if x.shape[1] != m.shape[1]:
        raise ValueError(f"points and modes must have the same dimension; got {x.shape[1]} "
                         f"and {m.shape[1]}")
    if not (np.isfinite(std) and std > 0):
        raise ValueError(f"std must be a positive number; got {std!r}")
    counts = np.zeros(len(m), dtype=np.int64)
    hq = 0
    for s in range(0, len(x), 8192):
        d2 = ((x[s:s + 8192, None, :] - m[None, :, :]) ** 2).sum(-1)  # [b, K]
        nearest = np.argmin(d2, axis=1)
        good = d2[np.arange(len(nearest)), nearest] <= (threshold * std) ** 2
        hq += int(good.sum())
        counts += np.bincount(nearest[good], minlength=len(m))
    return {"modes_captured": int((counts > 0).sum()), "num_modes": int(len(m)),
            "high_quality": hq / len(x), "mode_counts": counts.tolist()}


def class_coverage(labels, confidences, num_classes: int, threshold: float = CONFIDENT,
                   min_fraction: float = 0.1) -> dict:
    """Class coverage of classified samples.

    Args:
      labels: ``int [N]`` predicted classes in ``0..num_classes-1``.
      confidences: ``float [N]`` classifier confidence (max softmax probability) in ``[0, 1]``.
      num_classes: ``K``.
      threshold: confidence needed for a sample to count.
      min_fraction: a class is covered with at least ``min_fraction * n_confident / K``
        confident samples (and at least one).

    Returns:
      ``{"classes_covered": int, "class_coverage": classes_covered / K, "confident": fraction
      of samples with confidence >= threshold, "class_kl": KL(class histogram of confident
      samples || uniform) in nats (0 = perfectly balanced, log K = one class), "class_counts":
      list of K ints}``.
    """
    y = np.asarray(labels).reshape(-1)
    c = np.asarray(confidences, dtype=np.float64).reshape(-1)
    if len(y) != len(c) or len(y) == 0:
        raise ValueError(f"labels and confidences must be non-empty and equally long; got "
                         f"{len(y)} and {len(c)}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must be integers in 0..{num_classes - 1}")
    keep = c >= threshold
    counts = np.bincount(y[keep], minlength=num_classes)
    n_conf = int(keep.sum())
    need = max(1.0, min_fraction * n_conf / num_classes)
    covered = int((counts >= need).sum()) if n_conf else 0
    if n_conf:
        p = counts / n_conf
        nz = p > 0
        kl = float(np.sum(p[nz] * np.log(p[nz] * num_classes)))
    else:
        kl = float("nan")
    return {"classes_covered": covered, "class_coverage": covered / num_classes,
            "confident": n_conf / len(y), "class_kl": kl, "class_counts": counts.tolist()}
