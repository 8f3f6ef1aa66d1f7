"""Toy 2-D distributions: the d2l two-Gaussian example, the 8-mode ring and the 25-mode grid.

Every sampler returns ``float32`` arrays of shape ``[n, 2]`` and a ``spec`` dict (JSON-ready)
describing the distribution exactly -- the run's ``config.json`` records it so that an
evaluation can be reproduced from the run directory alone.

* ``gaussian``: the d2l.ai GAN chapter's data ``X @ A + b`` with ``X ~ N(0, I_2)``,
  ``A = [[1, 2], [-0.1, 0.5]]``, ``b = [1, 2]``; its law is ``N(b, A^T A)``.
* ``ring``: 8 isotropic Gaussians with means equally spaced on a circle of radius 1
  (angles ``2*pi*k/8``), standard deviation 0.01 each (PacGAN's setting; VEEGAN used 0.02 on a
  radius-2 circle).
* ``grid``: 25 isotropic Gaussians with means on the grid ``{-4,-2,0,2,4}^2`` (spacing 2),
  standard deviation 0.05 each (PacGAN's setting).

The mixtures choose each mode with equal probability.
"""

from __future__ import annotations

import numpy as np

D2L_A = np.array([[1.0, 2.0], [-0.1, 0.5]], dtype=np.float64)
D2L_B = np.array([1.0, 2.0], dtype=np.float64)

RING_RADIUS = 1.0
RING_STD = 0.01
RING_MODES = 8
GRID_SPACING = 2.0
GRID_STD = 0.05
GRID_SIDE = 5


def ring_modes(num_modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """Mode centres of the ring, ``float64 [num_modes, 2]``, angle ``2*pi*k/num_modes``."""
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def grid_modes(side: int = GRID_SIDE, spacing: float = GRID_SPACING) -> np.ndarray:
    """Mode centres of the grid, ``float64 [side*side, 2]``, centred on the origin."""
    ticks = (np.arange(side) - (side - 1) / 2.0) * spacing
    xx, yy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def _check_n(n) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"number of samples must be a positive integer, got {n!r}")
    return int(n)


def gaussian(n: int = 1000, seed: int = 0):
    """The d2l two-Gaussian data: ``n`` points ``X @ A + b``, ``X ~ N(0, I)``.

    Returns ``(points float32 [n, 2], spec)``; the target law is ``N(b, A^T A)``.
    """
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(n, 2)) @ D2L_A + D2L_B
    spec = {
        "name": "gaussian",
        "num_points": n,
        "seed": seed,
        "A": D2L_A.tolist(),
        "b": D2L_B.tolist(),
        "mean": D2L_B.tolist(),
        "covariance": (D2L_A.T @ D2L_A).tolist(),
    }
    return x.astype(np.float32), spec


def _mixture(modes: np.ndarray, std: float, n: int, seed: int):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(modes), size=n)
    pts = modes[idx] + rng.normal(0.0, std, size=(n, 2))
    return pts.astype(np.float32)


def _named_mixture(name, modes, std, n, seed, **geometry):
    """``(points, spec)`` of an equal-weight mixture, the spec JSON-ready."""
    n = _check_n(n)
    spec = {"name": name, "num_points": n, "seed": seed, "std": std, **geometry,
            "modes": modes.tolist()}
    return _mixture(modes, std, n, seed), spec


def ring(n: int = 100_000, seed: int = 0, std: float = RING_STD, radius: float = RING_RADIUS,
         num_modes: int = RING_MODES):
    """Mixture of ``num_modes`` Gaussians (std ``std``) on a circle of radius ``radius``.

    Returns ``(points float32 [n, 2], spec)`` with ``spec["modes"]`` and ``spec["std"]``.
    """
    return _named_mixture("ring", ring_modes(num_modes, radius), std, n, seed, radius=radius)


def grid(n: int = 100_000, seed: int = 0, std: float = GRID_STD, spacing: float = GRID_SPACING,
         side: int = GRID_SIDE):
    """Mixture of ``side*side`` Gaussians (std ``std``) on a grid with spacing ``spacing``.

    Returns ``(points float32 [n, 2], spec)`` with ``spec["modes"]`` and ``spec["std"]``.
    """
    return _named_mixture("grid", grid_modes(side, spacing), std, n, seed, spacing=spacing)


TOY_DISTRIBUTIONS = {"gaussian": gaussian, "ring": ring, "grid": grid}


def sample_toy(name: str, n: int | None = None, seed: int = 0, **kwargs):
    """Sample a toy distribution by name (``gaussian``, ``ring``, ``grid``)."""
    if name not in TOY_DISTRIBUTIONS:
        raise ValueError(
            f"unknown toy distribution {name!r}; expected one of {sorted(TOY_DISTRIBUTIONS)}")
    fn = TOY_DISTRIBUTIONS[name]
    return fn(seed=seed, **kwargs) if n is None else fn(n, seed=seed, **kwargs)

