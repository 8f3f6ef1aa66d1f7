"""Sample-quality metrics computed from activations (feature vectors) or images.

All functions here take **precomputed** arrays; :mod:`tfgan_app.evaluation.extractors` turns
images into activations in batches. Conventions:

* activations: ``float`` array ``[N, D]`` (any float dtype; computed in ``float64``), finite,
  with ``N >= 2``;
* logits: ``float`` array ``[N, K]`` (unnormalised log-probabilities over ``K`` classes);
* images (the sliced Wasserstein distance, :mod:`.swd`): ``float`` ``[N, H, W, C]`` in
  ``[-1, 1]``.

KID and the classifier score are TF-GAN's own functions
(``tensorflow_gan/python/eval/classifier_metrics.py``, loaded through :mod:`tfgan_app._tfgan`),
run in ``float64``; FID is TF-GAN's formula with its matrix square root taken by
eigendecomposition in NumPy ``float64`` (``tests/test_metric_conventions.py`` keeps TF-GAN's
function as the reference). Precision/recall (Kynkäänniemi et al. 2019) and density/coverage
(Naeem et al. 2020) have no TF-GAN implementation and are computed here in NumPy ``float64``,
in blocks of rows so that memory stays ``O(block * N)`` rather than ``O(N^2)``. Where the
reference implementations differ, which convention each metric follows is in the README
("Evaluation", "Conventions").

"Streaming" in this package means: images are turned into activations batch by batch, so
besides the ``N`` images (for generated samples: the one set ``generate(N, seed)`` draws) only
the ``[N, D]`` activation matrices are held, never the network inputs of all ``N`` images at
once (e.g. their 299x299 Inception resizes). The metrics then run once on the accumulated
activations: FID needs only the means and covariances (``O(D^2)`` memory), KID
works in blocks of at most ``ceil(N / num_subsets)`` rows, and the k-NN metrics in row blocks.
For 10,000 samples of 64-D or 128-D features this needs a few tens of MiB.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "frechet_distance",
    "kernel_distance",
    "classifier_score",
    "precision_recall",
    "density_coverage",
    "prdc",
    "trace_sqrt_product",
    "check_activations",
]


# ----------------------------------------------------------------------------- validation

def check_activations(x, name: str = "activations", min_rows: int = 2) -> np.ndarray:
    """Validate and convert activations to ``float64 [N, D]``.

    Args:
      x: array-like ``[N, D]`` of real numbers (a 1-D array is *not* accepted: pass ``[N, 1]``).
      name: how the argument is named in error messages.
      min_rows: smallest allowed ``N``.

    Returns:
      ``np.ndarray`` ``float64 [N, D]``.

    Raises:
      ValueError: not 2-D, fewer than ``min_rows`` rows, zero columns, or non-finite values.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array of shape [N, D]; got {type(x).__name__}"
                         f" that cannot be converted to float ({err})") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [N, D] (2-D); got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows (samples); got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column (feature); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_pair(a, b, names=("activations1", "activations2"), min_rows=2):
    a = check_activations(a, names[0], min_rows)
    b = check_activations(b, names[1], min_rows)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same feature size D; "
                         f"got {a.shape[1]} and {b.shape[1]}")
    return a, b


def _cm():
    from tfgan_app import _tfgan

    return _tfgan.classifier_metrics()


_KID_FN = None


def _kid_fn():
    """TF-GAN's KID wrapped in one ``tf.function`` (its ``map_fn`` over blocks runs ~4x faster
    traced than eagerly: 0.3 s vs 1.4 s for 10,000 x 128-D on 2 CPU cores)."""
    global _KID_FN
    if _KID_FN is None:
        import tensorflow as tf

        _KID_FN = tf.function(_cm().kernel_classifier_distance_and_std_from_activations,
                              reduce_retracing=True)
    return _KID_FN


# ----------------------------------------------------------------------------- FID / KID / IS

def trace_sqrt_product(sigma1, sigma2) -> float:
    """``Tr((sigma1 sigma2)^(1/2))`` for symmetric positive semi-definite matrices.

    TF-GAN's reduction (``trace_sqrt_product``): with ``A = sigma1^(1/2)``, the eigenvalues
    of ``sigma1 sigma2`` are those of the symmetric ``A sigma2 A``, so the trace is the sum of
    their square roots. Here ``A`` comes from ``numpy.linalg.eigh`` and the last step needs
    eigenvalues only (``eigvalsh``); eigenvalues below zero by round-off count as zero. TF-GAN
    takes both square roots by SVD and leaves singular values below 1e-10 unrooted, a small
    bias on ill-conditioned covariances (e.g. fewer samples than features).
    """
    w, v = np.linalg.eigh(sigma1)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = root @ sigma2 @ root
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None)).sum())


def frechet_distance(activations1, activations2) -> float:
    """Fréchet distance between Gaussians fitted to two sets of activations (FID when the
    activations are Inception pool features).

    ``||m1 - m2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))`` with unbiased sample covariances
    (``1/(N-1)``), in ``float64``: TF-GAN's ``frechet_classifier_distance_from_activations``
    with the square root of :func:`trace_sqrt_product` (the same value to ~1e-12 relative on
    well-conditioned covariances, closer to the exact value on ill-conditioned ones).

    Args:
      activations1: ``float [N1, D]``, e.g. real-data features; ``N1 >= 2``.
      activations2: ``float [N2, D]``, e.g. generated-data features; ``N2 >= 2``.

    Returns:
      Python ``float >= 0`` (up to round-off). The estimator is biased upwards for small
      ``N``: compare values only at equal sample sizes.

    Raises:
      ValueError: bad shapes, mismatched ``D`` or non-finite values.
    """
    a, b = _check_pair(activations1, activations2)
    c1 = np.atleast_2d(np.cov(a, rowvar=False))
    c2 = np.atleast_2d(np.cov(b, rowvar=False))
    mean_term = float(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2))
    return mean_term + float(np.trace(c1) + np.trace(c2)) - 2.0 * trace_sqrt_product(c1, c2)


def kernel_distance(activations1, activations2, num_subsets: int = 10,
                    max_subset_size: int | None = None, seed: int | None = 0) -> dict:
    """Kernel distance (KID when on Inception features): unbiased squared MMD with the cubic
    polynomial kernel ``k(x, y) = (x.y / D + 1)^3`` (Bińkowski et al. 2018).

    Computed by TF-GAN's ``kernel_classifier_distance_and_std_from_activations`` in
    ``float64``: both sets are split into ``B`` disjoint blocks ("subsets") of at most
    ``ceil(max(N1, N2) / num_subsets)`` rows, the unbiased MMD^2 is computed in each block,
    and the mean over blocks is reported with the spread over blocks. TF-GAN's block estimator
    assumes rows in random order, so both sets are shuffled first (with ``seed``; ``None``
    keeps the given order).

    Args:
      activations1: ``float [N1, D]``; ``N1 >= 2 * num_subsets`` recommended.
      activations2: ``float [N2, D]``.
      num_subsets: number of blocks ``B`` (>= 2 so that a spread can be estimated). With
        10,000 samples the default gives blocks of 1,000, the KID paper's subset size.
      max_subset_size: optional upper bound on the block size (more blocks if smaller).
      seed: shuffle seed (``int``) or ``None`` for no shuffle.

    Returns:
      ``{"kid": mean over blocks, "kid_std": standard deviation over blocks,
      "kid_stderr": standard error of the mean (= kid_std / sqrt(B), TF-GAN's estimate),
      "num_subsets": B, "subset_size": block size}`` -- Python floats/ints. ``kid`` may be
      slightly negative (the estimator is unbiased).

    Raises:
      ValueError: bad shapes/values, ``num_subsets < 2`` or blocks smaller than 2 rows.
    """
    import tensorflow as tf

    a, b = _check_pair(activations1, activations2)
    if not isinstance(num_subsets, (int, np.integer)) or num_subsets < 2:
        raise ValueError(f"num_subsets must be an integer >= 2; got {num_subsets!r}")
    n_big = max(len(a), len(b))
    block = math.ceil(n_big / num_subsets)
    if max_subset_size is not None:
        if max_subset_size < 2:
            raise ValueError(f"max_subset_size must be >= 2; got {max_subset_size!r}")
        block = min(block, int(max_subset_size))
    n_blocks = math.ceil(n_big / block)
    if min(len(a), len(b)) // n_blocks < 2:
        raise ValueError(
            f"too few samples for {n_blocks} KID subsets: got {len(a)} and {len(b)} rows; "
            f"each subset needs at least 2 rows from each set (lower num_subsets)")
    if seed is not None:
        rng = np.random.default_rng(seed)
        a = a[rng.permutation(len(a))]
        b = b[rng.permutation(len(b))]
    mean, stderr = _kid_fn()(tf.constant(a, tf.float64), tf.constant(b, tf.float64),
                             max_block_size=block)
    mean, stderr = float(mean.numpy()), float(stderr.numpy())
    return {"kid": mean, "kid_std": stderr * math.sqrt(n_blocks), "kid_stderr": stderr,
            "num_subsets": int(n_blocks), "subset_size": int(block)}


def classifier_score(logits, num_splits: int = 10) -> dict:
    """Classifier score (Inception Score when the logits are Inception's):
    ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016), by TF-GAN's
    ``classifier_score_from_logits`` in ``float64``, on each of ``num_splits`` consecutive
    splits, reported as mean and standard deviation over the splits. Split ``i`` holds rows
    ``i*N//num_splits`` to ``(i+1)*N//num_splits``: every row is used, as in the original
    Inception Score code and torch-fidelity (``N mod num_splits`` splits are one row longer).

    Args:
      logits: ``float [N, K]`` unnormalised log-probabilities (log-probabilities also work);
        ``N >= 2 * num_splits``.
      num_splits: number of splits (default 10).

    Returns:
      ``{"is": mean, "is_std": std over splits (ddof=0), "num_splits": num_splits}``; the
      score lies in ``[1, K]``.

    Raises:
      ValueError: bad shape/values or too few rows for the splits.
    """
    import tensorflow as tf

    x = check_activations(logits, "logits")
    if not isinstance(num_splits, (int, np.integer)) or num_splits < 1:
        raise ValueError(f"num_splits must be a positive integer; got {num_splits!r}")
    if len(x) // num_splits < 2:
        raise ValueError(f"classifier score needs at least {2 * num_splits} logits rows for "
                         f"{num_splits} splits; got {len(x)}")
    cm = _cm()
    bounds = [i * len(x) // num_splits for i in range(num_splits + 1)]
    scores = [float(cm.classifier_score_from_logits(tf.constant(x[lo:hi], tf.float64)).numpy())
              for lo, hi in zip(bounds[:-1], bounds[1:])]
    return {"is": float(np.mean(scores)), "is_std": float(np.std(scores)),
            "num_splits": int(num_splits)}


# ----------------------------------------------------------------------------- k-NN metrics

def _sq_norms(x):
    return np.einsum("ij,ij->i", x, x)


def _sq_dists(a, a_sq, b, b_sq):
    d = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    np.maximum(d, 0.0, out=d)
    return d


def _kth_nn_sq_radii(x, x_sq, ks, batch_size):
    """Squared distance from each row of x to its k-th nearest *other* row, for each k in ks."""
    kmax = max(ks)
    out = {k: np.empty(len(x)) for k in ks}
    for s in range(0, len(x), batch_size):
        d = _sq_dists(x[s:s + batch_size], x_sq[s:s + batch_size], x, x_sq)
        # Column 0 of the sorted row is the point itself (distance 0), so the k-th other
        # neighbour is at sorted position k (as in the reference implementations).
        part = np.partition(d, kmax, axis=1)[:, :kmax + 1]
        part.sort(axis=1)
        for k in ks:
            out[k][s:s + batch_size] = part[:, k]
    return out


def prdc(real_features, fake_features, k_pr: int = 3, k_dc: int = 5,
         batch_size: int = 1024) -> dict:
    """Improved precision/recall and density/coverage in one pass over the distances.

    With ``B_k(x)`` the ball around ``x`` whose radius is the distance to ``x``'s k-th
    nearest neighbour within its own set (Euclidean):

    * precision (Kynkäänniemi et al. 2019): fraction of fake samples inside at least one
      real ball ``B_{k_pr}(x_i)``; recall: fraction of real samples inside at least one fake
      ball ``B_{k_pr}(y_j)``.
    * density (Naeem et al. 2020): ``1/(k_dc M) sum_j sum_i 1[y_j in B_{k_dc}(x_i)]`` (expected
      value 1 when fake and real are identically distributed; can exceed 1); coverage: fraction
      of real samples whose ball ``B_{k_dc}(x_i)`` contains at least one fake sample.

    Balls are open (a point on the boundary is outside: strict ``<``, as Naeem et al.'s
    ``prdc`` package), so identical sets give density exactly 1 (closed balls: ``(k+1)/k``).
    Computed in ``float64`` in blocks of ``batch_size`` rows (memory
    ``O(batch_size * max(N, M))``).

    Args:
      real_features: ``float [N, D]``, ``N > max(k_pr, k_dc)``.
      fake_features: ``float [M, D]``, ``M > k_pr``.
      k_pr: neighbourhood size for precision/recall (paper: 3).
      k_dc: neighbourhood size for density/coverage (paper: 5).
      batch_size: rows per block.

    Returns:
      ``{"precision", "recall", "density", "coverage"}`` as Python floats; precision, recall
      and coverage in ``[0, 1]``, density in ``[0, N/k_dc]``.

    Raises:
      ValueError: bad shapes/values or ``k`` not smaller than the sample counts.
    """
    for name, k in (("k_pr", k_pr), ("k_dc", k_dc)):
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{name} must be a positive integer; got {k!r}")
    real, fake = _check_pair(real_features, fake_features, ("real_features", "fake_features"))
    if len(real) <= max(k_pr, k_dc):
        raise ValueError(f"real_features needs more than max(k_pr, k_dc)={max(k_pr, k_dc)} rows; "
                         f"got {len(real)}")
    if len(fake) <= k_pr:
        raise ValueError(f"fake_features needs more than k_pr={k_pr} rows; got {len(fake)}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    r_sq, f_sq = _sq_norms(real), _sq_norms(fake)
    r_rad = _kth_nn_sq_radii(real, r_sq, sorted({k_pr, k_dc}), batch_size)
    f_rad = _kth_nn_sq_radii(fake, f_sq, [k_pr], batch_size)[k_pr]
    fake_in_real_pr = np.zeros(len(fake), dtype=bool)   # precision
    fake_ball_count = np.zeros(len(fake), dtype=np.int64)  # density
    recall_hits = 0
    coverage_hits = 0
    for s in range(0, len(real), batch_size):
        d = _sq_dists(real[s:s + batch_size], r_sq[s:s + batch_size], fake, f_sq)  # [b, M]
        fake_in_real_pr |= np.any(d < r_rad[k_pr][s:s + batch_size, None], axis=0)
        inside_dc = d < r_rad[k_dc][s:s + batch_size, None]
        fake_ball_count += inside_dc.sum(axis=0)
        coverage_hits += int(np.any(inside_dc, axis=1).sum())
        recall_hits += int(np.any(d < f_rad[None, :], axis=1).sum())
    return {
        "precision": float(fake_in_real_pr.mean()),
        "recall": recall_hits / len(real),
        "density": float(fake_ball_count.sum() / (k_dc * len(fake))),
        "coverage": coverage_hits / len(real),
    }


def precision_recall(real_features, fake_features, k: int = 3, batch_size: int = 1024) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls, ``k=3``.

    Args:
      real_features: ``float [N, D]``; fake_features: ``float [M, D]``; both with more than
        ``k`` rows. batch_size: rows per distance block.

    Returns:
      ``{"precision": float in [0, 1], "recall": float in [0, 1]}``. See :func:`prdc`.
    """
    out = prdc(real_features, fake_features, k_pr=k, k_dc=k, batch_size=batch_size)
    return {"precision": out["precision"], "recall": out["recall"]}


def density_coverage(real_features, fake_features, k: int = 5, batch_size: int = 1024) -> dict:
    """Density and coverage (Naeem et al. 2020) with k-NN balls around real samples, ``k=5``.

    Args:
      real_features: ``float [N, D]`` (more than ``k`` rows); fake_features: ``float [M, D]``
        (more than ``k`` rows); batch_size: rows per distance block.

    Returns:
      ``{"density": float >= 0 (about 1 for identical distributions),
      "coverage": float in [0, 1]}``. See :func:`prdc`.
    """
    out = prdc(real_features, fake_features, k_pr=k, k_dc=k, batch_size=batch_size)
    return {"density": out["density"], "coverage": out["coverage"]}
