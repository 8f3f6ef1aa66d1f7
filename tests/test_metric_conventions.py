"""Metric conventions against their reference implementations (issue 14, "Metric conventions").

Each test computes the reference directly -- the original formula, or TF-GAN's own function --
and checks this package's metric against it:

* FID: TF-GAN's ``frechet_classifier_distance_from_activations`` (its SVD square root) on
  well-conditioned covariances (1e-10 relative), and the exact value of commuting
  ill-conditioned covariances, where TF-GAN's square root is off by ~1e-4 and ours by < 1e-7.
* Inception score: the original code's formula and splits (``i*N//splits``), every row used.
* Precision/recall/density/coverage: Naeem et al.'s ``prdc`` formulas (open balls, ``<``),
  including on a lattice where many points lie exactly on ball boundaries.
* Parzen: Goodfellow's ``parzen_ll.py`` standard error, ``std(ddof=0) / sqrt(n)``.
* SWD: TF-GAN's ``sliced_wasserstein_distance`` on images without flat patches (same seeds:
  the same draws), and finite values on digits with flat backgrounds where TF-GAN gives NaN.
"""

import os

import numpy as np
import pytest
import scipy.spatial
import scipy.special

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import tfgan_app.evaluation as E  # noqa: E402
from tfgan_app import _tfgan  # noqa: E402
from tfgan_app.data import load_digits_arrays  # noqa: E402
from tfgan_app.evaluation import metrics, swd  # noqa: E402


# ----------------------------------------------------------------------------- FID

def _tfgan_fid(a, b):
    return float(_tfgan.classifier_metrics().frechet_classifier_distance_from_activations(
        tf.constant(a, tf.float64), tf.constant(b, tf.float64)).numpy())


def test_fid_agrees_with_tfgan_on_well_conditioned_features():
    rng = np.random.default_rng(0)
    for n, d in ((500, 16), (2000, 64)):
        a = rng.normal(size=(n, d))
        b = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + 0.2
        ours, ref = E.frechet_distance(a, b), _tfgan_fid(a, b)
        assert abs(ours - ref) <= 1e-10 * ref, (ours, ref)
    x = rng.normal(size=(300, 8))
    assert abs(E.frechet_distance(x, x)) < 1e-9 and abs(_tfgan_fid(x, x)) < 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_trace_sqrt_product_exact_on_ill_conditioned_covariances(seed):
    # Commuting covariances (one eigenbasis): Tr((C1 C2)^(1/2)) = sum_i sqrt(l1_i l2_i) exactly.
    rng = np.random.default_rng(seed)
    d = 32
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    l1 = np.logspace(-14, 0, d)
    l2 = np.logspace(0, -14, d)[rng.permutation(d)]
    c1, c2 = (q * l1) @ q.T, (q * l2) @ q.T
    c1, c2 = (c1 + c1.T) / 2, (c2 + c2.T) / 2
    exact = np.sqrt(l1 * l2).sum()
    ours = metrics.trace_sqrt_product(c1, c2)
    tfgan = float(_tfgan.classifier_metrics().trace_sqrt_product(tf.constant(c1), tf.constant(c2)))
    assert abs(ours - exact) < 1e-7 * exact
    # TF-GAN leaves singular values below 1e-10 unrooted: close, but measurably biased.
    assert 1e-6 * exact < abs(tfgan - exact) < 1e-3 * exact
    # Well conditioned: the two square roots agree to round-off.
    w1, w2 = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    c1, c2 = (q * w1) @ q.T, (q * w2) @ q.T
    ref = float(_tfgan.classifier_metrics().trace_sqrt_product(tf.constant(c1), tf.constant(c2)))
    assert abs(metrics.trace_sqrt_product(c1, c2) - ref) < 1e-12 * ref


def test_fid_with_fewer_samples_than_features_agrees_with_tfgan():
    # Singular covariances (N < D), the usual ill-conditioned case in practice.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(40, 64)), rng.normal(size=(50, 64)) + 0.1
    ours, ref = E.frechet_distance(a, b), _tfgan_fid(a, b)
    assert abs(ours - ref) < 1e-6 * ref, (ours, ref)


# ----------------------------------------------------------------------------- Inception score

def _original_inception_score(logits, splits=10):
    """The original code's formula (Salimans et al. 2016) on softmax probabilities."""
    preds = scipy.special.softmax(np.asarray(logits, np.float64), axis=1)
    n, scores = len(preds), []
    for i in range(splits):
        part = preds[i * n // splits:(i + 1) * n // splits]
        kl = part * (np.log(part) - np.log(np.mean(part, 0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return np.mean(scores), np.std(scores)


def test_inception_score_uses_every_row_as_the_original_code():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1003, 10)) * 3.0          # 1003 = 10 * 100 + 3: uneven splits
    mean, std = _original_inception_score(logits)
    got = E.classifier_score(logits)
    assert got["is"] == pytest.approx(mean, rel=1e-10) and got["is_std"] == pytest.approx(std, rel=1e-8)
    # The last 3 rows count (they were dropped before).
    changed = logits.copy()
    changed[-3:] = np.eye(10)[:3] * 40.0
    assert E.classifier_score(changed)["is"] != pytest.approx(got["is"], rel=1e-6)
    assert E.classifier_score(changed)["is"] == pytest.approx(_original_inception_score(changed)[0], rel=1e-10)
    assert E.classifier_score(logits[:1000], num_splits=5)["is"] == pytest.approx(
        _original_inception_score(logits[:1000], 5)[0], rel=1e-10)


# ----------------------------------------------------------------------------- PRDC

def _prdc_reference(real, fake, k):
    """Naeem et al.'s ``prdc.compute_prdc``: radii = distance to the (k+1)-th smallest entry of
    each row of the within-set distances (the point itself first); strict ``<``."""
    d_rr, d_ff = scipy.spatial.distance.cdist(real, real), scipy.spatial.distance.cdist(fake, fake)
    d_rf = scipy.spatial.distance.cdist(real, fake)
    r_real = np.sort(d_rr, axis=1)[:, k]
    r_fake = np.sort(d_ff, axis=1)[:, k]
    return {"precision": (d_rf < r_real[:, None]).any(axis=0).mean(),
            "recall": (d_rf < r_fake[None, :]).any(axis=1).mean(),
            "density": (1.0 / k) * (d_rf < r_real[:, None]).sum(axis=0).mean(),
            "coverage": (d_rf.min(axis=1) < r_real).mean()}


def test_prdc_follows_the_prdc_package():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 5)), rng.normal(size=(250, 5)) * 1.2 + 0.1
    lattice_r = rng.integers(0, 4, (200, 3)).astype(float)   # many exact ties on ball boundaries
    lattice_f = rng.integers(0, 4, (180, 3)).astype(float)
    for r, f in ((real, fake), (lattice_r, lattice_f)):
        for k in (3, 5):
            got = E.prdc(r, f, k_pr=k, k_dc=k, batch_size=64)
            ref = _prdc_reference(r, f, k)
            for key in ref:
                assert got[key] == pytest.approx(ref[key], abs=1e-12), (k, key)


def test_prdc_identical_sets_give_density_one():
    x = np.random.default_rng(1).normal(size=(500, 8))
    got = E.prdc(x, x.copy(), k_pr=3, k_dc=5)
    # Closed balls counted each point's k-th neighbour too: density (k+1)/k = 1.2.
    assert got == {"precision": 1.0, "recall": 1.0, "density": pytest.approx(1.0, abs=1e-12), "coverage": 1.0}


# ----------------------------------------------------------------------------- Parzen

def test_parzen_standard_error_is_goodfellows_ddof0():
    rng = np.random.default_rng(0)
    samples, val, test = rng.normal(size=(400, 3)), rng.normal(size=(50, 3)), rng.normal(size=(37, 3))
    got = E.parzen_evaluate(samples, val, test, sigmas=[0.5])
    d2 = ((test[:, None, :] - samples[None]) ** 2).sum(-1)
    ll = scipy.special.logsumexp(-d2 / (2 * 0.25), axis=1) - np.log(400) - 1.5 * np.log(2 * np.pi * 0.25)
    assert got["parzen_ll"] == pytest.approx(ll.mean(), rel=1e-12)
    assert got["parzen_ll_stderr"] == pytest.approx(ll.std() / np.sqrt(37), rel=1e-10)
    assert got["parzen_ll_stderr"] != pytest.approx(ll.std(ddof=1) / np.sqrt(37), rel=1e-3)
    assert np.isnan(E.parzen_evaluate(samples, val, test[:1], sigmas=[0.5])["parzen_ll_stderr"])


# ----------------------------------------------------------------------------- SWD

def _mnist_like_digits():
    """scikit-learn's digits on a 28x28 background like MNIST's (most patches are flat)."""
    x, _ = load_digits_arrays("all")
    return np.pad(x, ((0, 0), (10, 10), (10, 10), (0, 0)), constant_values=-1.0)


def _tfgan_swd(real, fake, seed, **kw):
    np.random.seed(seed)
    tf.random.set_seed(seed)
    to255 = lambda x: tf.constant(np.repeat((x + 1.0) * 127.5, 3, axis=-1).astype(np.float32))  # noqa: E731
    levels = _tfgan.sliced_wasserstein().sliced_wasserstein_distance(to255(real), to255(fake), **kw)
    return [(float(r), float(f)) for r, f in levels]


def test_swd_is_finite_on_digits_with_flat_backgrounds():
    x = _mnist_like_digits()
    real, other = x[:300], x[300:600]
    noisy = np.clip(x[600:900] + np.random.default_rng(0).normal(0, 0.3, real.shape), -1, 1)
    assert np.isnan(_tfgan_swd(real, other, seed=0)[0][1])       # TF-GAN: 0/0 on flat patches
    same, far = E.sliced_wasserstein_distance(real, other), E.sliced_wasserstein_distance(real, noisy)
    assert np.isfinite([same["swd"], same["swd_real"], same["swd_stderr"], far["swd"]]).all()
    assert [lv["resolution"] for lv in same["levels"]] == [28]   # one level, the full 28x28
    assert same["flat_patches"]["real"] > 0.5 and far["flat_patches"]["fake"] < 0.05
    assert far["swd"] > 5 * same["swd"]
    chan = E.sliced_wasserstein_distance(real, other, normalize="channel", scale=1e3)
    assert np.isfinite(chan["swd"])


def test_swd_matches_tfgan_where_tfgan_is_defined():
    x, _ = load_digits_arrays("all")
    rng = np.random.default_rng(0)
    x = np.clip(tf.image.resize(x, (32, 32)).numpy() + rng.normal(0, 0.05, (len(x), 32, 32, 1)), -1, 1)
    real, fake = x[:200].astype(np.float32), x[200:400].astype(np.float32)
    for count in (1, 4):
        ref = _tfgan_swd(real, fake, seed=5, random_sampling_count=count)
        got = E.sliced_wasserstein_distance(real, fake, random_sampling_count=count, seed=5)
        assert got["flat_patches"] == {"real": 0.0, "fake": 0.0}
        assert [lv["resolution"] for lv in got["levels"]] == [32, 16]
        for lv, (r, f) in zip(got["levels"], ref):
            assert lv["real"] == pytest.approx(r, rel=1e-5) and lv["fake"] == pytest.approx(f, rel=1e-5)
        assert np.isnan(got["swd_stderr"]) == (count == 1)
    scaled = E.sliced_wasserstein_distance(real, fake, seed=5, scale=1e3)
    unscaled = E.sliced_wasserstein_distance(real, fake, seed=5)
    assert scaled["swd"] == pytest.approx(1e3 * unscaled["swd"], rel=1e-12)
    assert scaled["swd_stderr"] == pytest.approx(1e3 * unscaled["swd_stderr"], rel=1e-9)


def test_swd_descriptors_follow_both_conventions():
    rng = np.random.default_rng(0)
    patches = rng.normal(50, 20, size=(40, 7, 7, 3)).astype(np.float32)
    patches[:5] = 17.0                                            # flat patches
    flat = swd.swd_descriptors(patches, "patch").numpy()
    p = patches.astype(np.float64)
    ref = (p - p.mean(axis=(1, 2, 3), keepdims=True)) / np.where(
        p.std(axis=(1, 2, 3), keepdims=True) == 0, np.inf, p.std(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(flat, ref.reshape(40, -1), atol=1e-5)
    assert not flat[:5].any()
    # Karras et al.'s finalize_descriptors: per channel over all patches (axes N, H, W).
    chan = swd.swd_descriptors(patches, "channel").numpy()
    ref = (p - p.mean(axis=(0, 1, 2), keepdims=True)) / p.std(axis=(0, 1, 2), keepdims=True)
    np.testing.assert_allclose(chan, ref.reshape(40, -1), atol=1e-4)
    with pytest.raises(ValueError, match="normalize must be"):
        swd.swd_descriptors(patches, "image")
    images = np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="normalize must be"):
        E.sliced_wasserstein_distance(images, images, normalize="karras")
    with pytest.raises(ValueError, match="scale must be a positive number"):
        E.sliced_wasserstein_distance(images, images, scale=0)
