"""Parzen-window (Gaussian kernel density) log-likelihood, the original GAN paper's protocol.

Goodfellow et al. (2014), following Breuleux et al. (2011): fit an isotropic Gaussian KDE to
**10,000 generated samples**, choose the bandwidth ``sigma`` on a validation set from
``logspace(-1, 0, 10)``, and report the mean log-likelihood of the test set ± its standard
error (``std / sqrt(n_test)``, ``std`` with ``ddof=0`` as Goodfellow's ``parzen_ll.py``). The
paper worked on MNIST pixels in ``[0, 1]``; for images, :func:`parzen_evaluate` callers should
map ``[-1, 1]`` images to ``[0, 1]`` first (:func:`images_to_parzen_space` does it) so that the
sigma grid means the same thing.

The estimate (in nats, per test point, ``D`` the data dimension, ``N`` samples):

    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - (D/2) log(2 pi sigma^2)

computed in ``float64`` with log-sum-exp, in blocks of test points x samples (memory
``O(batch_size * sample_batch)``), and for all sigmas from one set of distances.

Known caveat (Theis et al. 2016): Parzen estimates are poor likelihood estimates in high
dimensions; report them for comparability with older papers, not as a quality measure.
"""

from __future__ import annotations

import math

import numpy as np

from tfgan_app.evaluation.metrics import check_activations

__all__ = ["PARZEN_SIGMAS", "parzen_log_likelihood", "parzen_evaluate", "images_to_parzen_space"]

PARZEN_SIGMAS = np.logspace(-1.0, 0.0, 10)
"""The paper's bandwidth grid: 10 values from 0.1 to 1, log-spaced."""


def images_to_parzen_space(images) -> np.ndarray:
    """Flatten ``[-1, 1]`` images ``[N, H, W, C]`` to ``float64 [N, H*W*C]`` in ``[0, 1]``."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"images must have shape [N, ...]; got {x.shape}")
    return (x.reshape(len(x), -1) + 1.0) / 2.0


def _check_sigmas(sigmas):
    s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"sigmas must be a non-empty list of positive numbers; got {sigmas!r}")
    return s


def parzen_log_likelihood(samples, points, sigmas, batch_size: int = 256,
                          sample_batch: int = 4096) -> np.ndarray:
    """Per-point Parzen-window log-likelihoods for one or several bandwidths.

    Args:
      samples: ``float [N, D]`` kernel centres (generated samples).
      points: ``float [M, D]`` points to score.
      sigmas: a positive ``float`` or ``float [S]`` bandwidths.
      batch_size: points per block; sample_batch: samples per block.

    Returns:
      ``float64 [S, M]`` log-likelihoods in nats (``[M]`` if ``sigmas`` is a scalar).

    Raises:
      ValueError: bad shapes, non-finite values or non-positive sigmas.
    """
    scalar = np.ndim(sigmas) == 0
    sig = _check_sigmas(sigmas)
    s = check_activations(samples, "samples", min_rows=1)
    x = check_activations(points, "points", min_rows=1)
    if s.shape[1] != x.shape[1]:
        raise ValueError(f"samples and points must have the same dimension D; got "
                         f"{s.shape[1]} and {x.shape[1]}")
    n, d = s.shape
    inv2s2 = 1.0 / (2.0 * sig ** 2)                       # [S]
    const = -math.log(n) - 0.5 * d * np.log(2.0 * np.pi * sig ** 2)  # [S]
    s_sq = np.einsum("ij,ij->i", s, s)
    out = np.empty((len(sig), len(x)))
    for p0 in range(0, len(x), batch_size):
        xb = x[p0:p0 + batch_size]
        xb_sq = np.einsum("ij,ij->i", xb, xb)
        acc = np.full((len(sig), len(xb)), -np.inf)
        for s0 in range(0, n, sample_batch):
            sb = s[s0:s0 + sample_batch]
            d2 = xb_sq[:, None] + s_sq[None, s0:s0 + sample_batch] - 2.0 * (xb @ sb.T)
            np.maximum(d2, 0.0, out=d2)                     # [b, n_b]
            for j, c in enumerate(inv2s2):
                a = -d2 * c
                m = a.max(axis=1)
                lse = m + np.log(np.exp(a - m[:, None]).sum(axis=1))
                acc[j] = np.logaddexp(acc[j], lse)
        out[:, p0:p0 + batch_size] = acc + const[:, None]
    return out[0] if scalar else out


def parzen_evaluate(samples, validation, test, sigmas=None, batch_size: int = 256) -> dict:
    """The full protocol: pick sigma on ``validation``, report ``test`` mean ± standard error.

    Args:
      samples: ``float [N, D]`` generated samples (the paper: N = 10,000), in the data space
        the sigma grid refers to (``[0, 1]`` pixels for images, see
        :func:`images_to_parzen_space`).
      validation: ``float [V, D]`` real validation points (choose sigma).
      test: ``float [T, D]`` real test points (report).
      sigmas: bandwidth grid, default :data:`PARZEN_SIGMAS` (``logspace(-1, 0, 10)``).
      batch_size: points per block.

    Returns:
      ``{"parzen_ll": mean test log-likelihood (nats), "parzen_ll_stderr": std(ddof=0) /
      sqrt(T) (the paper's code; NaN for one test point), "parzen_sigma": chosen sigma,
      "num_samples": N, "validation_ll": {sigma: mean}}``.
    """
    sig = _check_sigmas(PARZEN_SIGMAS if sigmas is None else sigmas)
    val_ll = parzen_log_likelihood(samples, validation, sig, batch_size).mean(axis=1)
    best = float(sig[int(np.argmax(val_ll))])
    ll = parzen_log_likelihood(samples, test, best, batch_size)
    stderr = float(ll.std(ddof=0) / math.sqrt(len(ll))) if len(ll) > 1 else float("nan")
    return {"parzen_ll": float(ll.mean()), "parzen_ll_stderr": stderr, "parzen_sigma": best,
            "num_samples": int(np.shape(samples)[0]),
            "validation_ll": {f"{s:.6g}": float(v) for s, v in zip(sig, val_ll)}}
