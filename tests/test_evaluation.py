"""Tests for tfgan_app.evaluation (issue 4).

Tolerances, stated once:
* FID vs a float64 SciPy reference (``scipy.linalg.sqrtm``): 1e-6 relative.
* KID for one distribution: within 3 standard errors of zero (TF-GAN's estimate of the
  standard error; one draw is within 1 SE only ~68% of the time, so 3 SE is the honest bound);
  shifted distributions: more than 10 standard errors above zero.
* Parzen, 2-D standard Gaussian, 1,000 validation and 2,000 test points: the error against the
  exact mean log-density of the same test points shrinks as the sample grows
  (100 -> 1,000 -> 10,000 samples) and is below 0.02 nats at 10,000 (measured: 0.086, 0.021,
  0.0055).
* Mode coverage: exact samples are high quality with probability 1 - exp(-4.5) = 98.89% under
  the Euclidean 3-std criterion (99.73% is the 1-D rule; see coverage.py); asserted within 4
  binomial standard deviations.
"""

import json
import math
import os

import keras
import numpy as np
import pytest
import scipy.linalg

import tfgan_app.evaluation as E
from tfgan_app.data.toy import grid, ring
from tfgan_app.rundir import RunDir

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
if not os.path.isdir(MNIST_DIR):
    MNIST_DIR = "/work/shared/data/mnist"


def _scipy_fid(a, b):
    m1, m2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2.0 * covmean))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfgan_cache"))


@pytest.fixture(scope="module")
def digits_clf(cache_dir):
    return E.digits_classifier(cache_dir=cache_dir)


# ----------------------------------------------------------------------------- FID / KID / IS

def test_fid_matches_scipy_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16))
    b = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    ref = _scipy_fid(a, b)
    got = E.frechet_distance(a, b)
    assert abs(got - ref) / ref < 1e-6
    # float32 input is computed in float64 too
    assert abs(E.frechet_distance(a.astype(np.float32), b.astype(np.float32))
               - _scipy_fid(a.astype(np.float32).astype(np.float64),
                            b.astype(np.float32).astype(np.float64))) / ref < 1e-6


def test_fid_near_zero_for_two_halves_and_large_when_shifted():
    x = np.random.default_rng(1).normal(size=(20000, 32))
    same = E.frechet_distance(x[:10000], x[10000:])
    assert 0.0 <= same < 0.1  # finite-sample bias only (about D^2/N scale)
    shifted = E.frechet_distance(x[:10000], x[10000:] + 0.5)  # exact: 32 * 0.25 = 8
    assert abs(shifted - 8.0) < 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kid_zero_for_one_distribution(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(4000, 32)), rng.normal(size=(4000, 32))
    k = E.kernel_distance(x, y)
    assert k["num_subsets"] == 10 and k["subset_size"] == 400
    assert abs(k["kid"]) < 3.0 * k["kid_stderr"]
    assert math.isclose(k["kid_std"], k["kid_stderr"] * math.sqrt(10))


def test_kid_positive_for_shifted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4000, 32)), rng.normal(size=(4000, 32))
    for shift in (0.2, 0.5):
        k = E.kernel_distance(x, y + shift)
        assert k["kid"] > 10.0 * k["kid_stderr"]
    assert E.kernel_distance(x, y + 0.5)["kid"] > E.kernel_distance(x, y + 0.2)["kid"]


def test_classifier_score_bounds():
    k = 10
    uniform = np.zeros((1000, k))
    assert E.classifier_score(uniform)["is"] == pytest.approx(1.0, abs=1e-9)
    confident = np.eye(k)[np.arange(1000) % k] * 50.0  # sure and balanced: IS -> K
    s = E.classifier_score(confident)
    assert s["is"] == pytest.approx(k, rel=1e-6) and s["is_std"] < 1e-6
    collapsed = np.eye(k)[np.zeros(1000, int)] * 50.0  # sure but one class: IS -> 1
    assert E.classifier_score(collapsed)["is"] == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------- PRDC

def _brute_prdc(real, fake, k_pr, k_dc):
    d_rr = scipy.spatial.distance.cdist(real, real)
    d_ff = scipy.spatial.distance.cdist(fake, fake)
    d_rf = scipy.spatial.distance.cdist(real, fake)
    r_pr = np.sort(d_rr, axis=1)[:, k_pr]
    r_dc = np.sort(d_rr, axis=1)[:, k_dc]
    f_pr = np.sort(d_ff, axis=1)[:, k_pr]
    return {"precision": np.mean((d_rf < r_pr[:, None]).any(0)),
            "recall": np.mean((d_rf < f_pr[None, :]).any(1)),
            "density": (d_rf < r_dc[:, None]).sum() / (k_dc * len(fake)),
            "coverage": np.mean((d_rf < r_dc[:, None]).any(1))}


def test_prdc_matches_brute_force():
    import scipy.spatial  # noqa: F401

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 5)), rng.normal(size=(250, 5)) * 1.3 + 0.2
    got = E.prdc(real, fake, k_pr=3, k_dc=5, batch_size=64)  # several blocks
    ref = _brute_prdc(real, fake, 3, 5)
    for key in ref:
        assert got[key] == pytest.approx(ref[key], abs=1e-12), key


def test_prdc_identical_and_disjoint():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    same = E.prdc(x, y)
    assert same["precision"] > 0.9 and same["recall"] > 0.9
    assert abs(same["density"] - 1.0) < 0.1            # E[density] = 1 for equal laws
    assert abs(same["coverage"] - (1 - 0.5 ** 5)) < 0.03  # Naeem et al.: 1 - 1/2^k at M = N
    far = E.prdc(x, y + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    pr = E.precision_recall(x, y)
    dc = E.density_coverage(x, y)
    assert set(pr) == {"precision", "recall"} and set(dc) == {"density", "coverage"}


# ----------------------------------------------------------------------------- Parzen

def test_parzen_matches_direct_formula_and_is_stable():
    from scipy.special import logsumexp

    rng = np.random.default_rng(0)
    s, x = rng.normal(size=(300, 3)), rng.normal(size=(50, 3))
    sig = 0.3
    d2 = ((x[:, None, :] - s[None]) ** 2).sum(-1)
    ref = logsumexp(-d2 / (2 * sig**2), axis=1) - np.log(300) - 1.5 * np.log(2 * np.pi * sig**2)
    got = E.parzen_log_likelihood(s, x, sig, batch_size=7, sample_batch=64)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # far away points with a tiny sigma: naive exp underflows to log(0) = -inf; ours is finite
    far = E.parzen_log_likelihood(s, x + 50.0, 1e-3)
    assert np.all(np.isfinite(far)) and np.all(far < -1e6)


def test_parzen_approaches_analytic_gaussian_log_likelihood():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    val, test = rng.normal(size=(1000, 2)), rng.normal(size=(2000, 2))
    exact = multivariate_normal(np.zeros(2), np.eye(2)).logpdf(test).mean()
    errors = []
    for n in (100, 1000, 10000):
        r = E.parzen_evaluate(np.random.default_rng(n).normal(size=(n, 2)), val, test)
        assert r["parzen_sigma"] in set(np.round(E.PARZEN_SIGMAS, 12).tolist()) or \
            np.isclose(E.PARZEN_SIGMAS, r["parzen_sigma"]).any()
        assert 0 < r["parzen_ll_stderr"] < 0.05
        errors.append(abs(r["parzen_ll"] - exact))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.02


# ----------------------------------------------------------------------------- coverage

@pytest.mark.parametrize("name,num_modes", [("ring", 8), ("grid", 25)])
def test_mode_coverage_exact_and_collapsed(name, num_modes):
    pts, spec = {"ring": ring, "grid": grid}[name](E.VEEGAN_NUM_SAMPLES, seed=3)
    modes, std = E.toy_modes(spec)
    c = E.mode_coverage(pts, modes, std)
    assert c["modes_captured"] == num_modes == c["num_modes"]
    p = E.EXACT_HIGH_QUALITY_2D
    assert abs(c["high_quality"] - p) < 4 * math.sqrt(p * (1 - p) / len(pts))
    assert c["high_quality"] > 0.98
    # a collapsed sampler: everything near one mode
    rng = np.random.default_rng(0)
    collapsed = modes[3] + rng.normal(0, std, size=(2500, 2))
    cc = E.mode_coverage(collapsed, modes, std)
    assert cc["modes_captured"] == 1 and cc["mode_counts"][3] == sum(cc["mode_counts"])
    # points between modes are not high quality
    assert E.mode_coverage(np.zeros((10, 2)) + 10.0, modes, std)["high_quality"] == 0.0


def test_class_coverage():
    labels = np.arange(1000) % 10
    full = E.class_coverage(labels, np.ones(1000), 10)
    assert full["classes_covered"] == 10 and full["class_kl"] == pytest.approx(0.0)
    one = E.class_coverage(np.zeros(1000, int), np.ones(1000), 10)
    assert one["classes_covered"] == 1 and one["class_kl"] == pytest.approx(math.log(10))
    unsure = E.class_coverage(labels, np.full(1000, 0.5), 10)
    assert unsure["classes_covered"] == 0 and unsure["confident"] == 0.0


def test_confident_rate_is_the_one_threshold_of_class_coverage():
    conf = np.array([0.2, E.CONFIDENT, 0.95, 0.89999])
    assert E.confident_rate(conf) == 0.5  # "at least" the threshold
    probs = np.array([[0.95, 0.05], [0.5, 0.5], [0.1, 0.9], [0.3, 0.7]])
    assert E.confident_rate(probs) == 0.5  # [N, K]: the largest probability of each row
    labels = np.arange(4) % 2
    assert E.class_coverage(labels, conf, 2)["confident"] == E.confident_rate(conf)
    assert E.confident_rate(conf, threshold=0.2) == 1.0
    with pytest.raises(ValueError, match="non-empty"):
        E.confident_rate(np.zeros(0))


# ----------------------------------------------------------------------------- extractors

def test_digits_classifier_accuracy(digits_clf, cache_dir):
    info = E.classifier_info(digits_clf)
    x, y = E.load_digits_images("test")
    labels, conf = E.classify(x, digits_clf)
    acc = float(np.mean(labels == y))
    print(f"digits classifier held-out accuracy: {acc:.4f} ({len(y)} images)")
    assert acc > 0.95
    assert info["test_accuracy"] == pytest.approx(acc)
    assert labels.dtype == np.int64 and conf.dtype == np.float32
    assert np.all((conf > 0) & (conf <= 1))
    # cached on disk, atomically named, and reloaded identically
    files = os.listdir(cache_dir)
    assert any(f.endswith(".keras") for f in files) and not any(".tmp-" in f for f in files)
    E.classifiers._MEMO.clear()
    again = E.digits_classifier(cache_dir=cache_dir)
    np.testing.assert_allclose(again.predict(x[:20], verbose=0),
                               digits_clf.predict(x[:20], verbose=0), rtol=1e-5, atol=1e-5)


def test_extractor_batches_and_sampler_streaming(digits_clf):
    ext = E.classifier_extractor(digits_clf)
    x, _ = E.load_digits_images("test")
    a = ext(x[:300], batch_size=1000)
    b = ext(x[:300], batch_size=64)
    assert a.features.shape == (300, 64) and a.logits.shape == (300, 10)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-4, atol=1e-4)

    def sampler(n, seed):
        return np.random.default_rng(seed).uniform(-1, 1, (n, 8, 8, 1)).astype(np.float32)

    acts, imgs = ext.from_sampler(sampler, 250, batch_size=100, seed=5, keep_samples=True)
    assert acts.features.shape == (250, 64) and imgs.shape == (250, 8, 8, 1)
    np.testing.assert_array_equal(imgs, sampler(250, 5))  # one draw: exactly sampler(n, seed)
    np.testing.assert_allclose(ext(imgs).features, acts.features, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"expects images of shape \(8, 8, 1\)"):
        ext(np.zeros((4, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        ext(np.full((4, 8, 8, 1), 255.0))


def test_keras_extractor_softmax_output_gives_log_probs():
    inp = keras.Input((4, 4, 1))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(6, activation="relu")(h)
    out = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 4, 4, 1)).astype(np.float32)
    acts = E.keras_extractor(model)(x)
    assert acts.features.shape == (5, 6)
    np.testing.assert_allclose(np.exp(acts.logits), model.predict(x, verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_inception_extractor_from_local_weights(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        E.inception_extractor(str(tmp_path / "missing.h5"))
    model = keras.applications.InceptionV3(weights=None, classifier_activation=None)
    path = str(tmp_path / "inception.weights.h5")
    model.save_weights(path)
    ext = E.inception_extractor(path)
    imgs = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    acts = ext(imgs)
    assert acts.features.shape == (3, 2048) and acts.logits.shape == (3, 1000)
    # protocol: grayscale tiled to RGB, bilinear 299x299, [-1, 1]
    import tensorflow as tf

    rgb = tf.image.resize(np.repeat(imgs, 3, -1), (299, 299), method="bilinear")
    pool = keras.Model(model.inputs, model.get_layer("avg_pool").output)
    np.testing.assert_allclose(acts.features, pool.predict(rgb, verbose=0), rtol=1e-3,
                               atol=1e-4)


# ----------------------------------------------------------------------------- SWD

def test_sliced_wasserstein_orders_distributions():
    xtr, _ = E.load_digits_images("train")
    xte, _ = E.load_digits_images("test")
    rng = np.random.default_rng(0)
    real_real = E.sliced_wasserstein_distance(xtr[:400], xte[:400])["swd"]
    noise = E.sliced_wasserstein_distance(xtr[:400], rng.uniform(-1, 1, (400, 8, 8, 1)))["swd"]
    assert noise > 5 * real_real


# ----------------------------------------------------------------------------- run dirs

def _tiny_generator(latent_dim, out_shape, seed=0):
    z = keras.Input((latent_dim,))
    h = keras.layers.Dense(int(np.prod(out_shape)), activation="tanh",
                           kernel_initializer=keras.initializers.GlorotUniform(seed))(z)
    return keras.Model(z, keras.layers.Reshape(out_shape)(h))


def _write_run(run_dir, config, generator, ema_generator=None):
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, RunDir.CONFIG), "w") as fh:
        json.dump(config, fh)
    generator.save(os.path.join(run_dir, RunDir.GENERATOR))
    if ema_generator is not None:
        ema_generator.save(os.path.join(run_dir, RunDir.EMA_GENERATOR))


def _conditional_generator(latent_dim, num_classes, out_shape):
    z = keras.Input((latent_dim,))
    y = keras.Input((), dtype="int32")
    h = keras.layers.Concatenate()([z, keras.layers.Flatten()(
        keras.layers.Embedding(num_classes, 3)(y))])
    h = keras.layers.Dense(int(np.prod(out_shape)), activation="tanh")(h)
    return keras.Model([z, y], keras.layers.Reshape(out_shape)(h))


def test_as_sampler_draws_latents_through_the_one_sampler():
    from tfgan_app import sampling

    gen = _tiny_generator(4, (2,))
    got = E.as_sampler(gen)(300, 11)
    np.testing.assert_array_equal(got, sampling.generate(gen, 4, 300, seed=11))
    z = sampling.latent_vectors(300, 4, 11)
    np.testing.assert_allclose(got, gen(z, training=False).numpy(), rtol=1e-6, atol=1e-6)
    cond = _conditional_generator(5, 3, (8, 8, 1))
    with pytest.raises(ValueError, match="needs num_classes"):
        E.as_sampler(cond)
    np.testing.assert_array_equal(E.as_sampler(cond, num_classes=3)(10, 2),
                                  sampling.Sampler(cond, 5, 3).generate(10, seed=2))
    with pytest.raises(ValueError, match="expected a GANModel"):
        E.as_sampler(42)


def test_evaluator_kinds_and_default_metrics():
    _, spec = ring(10, seed=0)
    d2l = {"mean": [1.0, 2.0], "covariance": [[1.0, 0.5], [0.5, 2.0]]}
    ev = E.Evaluator(spec)
    assert isinstance(ev, E.PointEvaluator) and isinstance(ev, E.Evaluator)
    assert ev.kind.name == "points" and ev.metrics == E.DEFAULT_POINT_METRICS
    assert E.Evaluator(d2l).metrics == E.default_metrics(d2l) == ("frechet",)
    with pytest.raises(ValueError, match="mixture of modes"):
        E.Evaluator(d2l, metrics="mode_coverage,frechet")
    x, _ = E.load_digits_images("test")
    img = E.Evaluator(x[:100], metrics=["fid"], extractor=keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]))
    assert isinstance(img, E.ImageEvaluator) and img.kind.is_image
    assert img.floor() == {} and img.num_samples == 1000
    with pytest.raises(ValueError, match="held-out"):
        E.Evaluator(x[:100], metrics=["parzen"], extractor=img.extractor)
    with pytest.raises(ValueError, match="needs a toy spec"):
        E.PointEvaluator({"name": "digits"})


def test_evaluate_draws_the_sample_set_once_with_n_and_seed(cache_dir, digits_clf):
    calls = []
    _, spec = ring(10, seed=0)

    def exact(n, seed):
        calls.append((n, seed))
        return E.sample_toy_points(spec, n, seed + 100)

    ev = E.Evaluator(spec, metrics="mode_coverage,frechet,kid,precision_recall")
    res = ev.evaluate(exact, seed=7)
    assert calls == [(2500, 7)]
    # the expectation, computed from the one sample set the sampler gave
    pts = E.sample_toy_points(spec, 2500, 107).astype(np.float64)
    assert res["frechet"] == pytest.approx(E.frechet_distance(ev.reference, pts), rel=1e-12)
    assert res["modes_captured"] == E.mode_coverage(pts, ev.modes, ev.std)["modes_captured"]
    assert res["precision"] == E.prdc(ev.reference, pts)["precision"]
    # images: one call for the metrics, one more (seed + 1) for Parzen's sample set
    x, _ = E.load_digits_images("test")
    calls.clear()

    def real_test(n, seed):
        calls.append((n, seed))
        return x[np.random.default_rng(seed).integers(0, len(x), n)]

    ev = E.Evaluator("digits", metrics=["fid", "parzen"], num_samples=100,
                     parzen_samples=300, cache_dir=cache_dir)
    ev.evaluate(real_test, seed=3)
    assert calls == [(100, 3), (300, 4)]


def test_evaluate_run_digits(tmp_path, cache_dir, digits_clf):
    run = str(tmp_path / "run")
    _write_run(run, {"preset": "digits-dcgan", "latent_dim": 8, "num_classes": None,
                     "data": {"name": "digits:train", "source": "digits", "split": "train"}},
               _tiny_generator(8, (8, 8, 1)))
    res = E.evaluate_run(run, num_samples=400, cache_dir=cache_dir)
    with open(os.path.join(run, "eval.json")) as fh:
        on_disk = json.load(fh)
    assert on_disk == json.loads(json.dumps(res))
    assert not [f for f in os.listdir(run) if ".tmp-" in f]
    expected = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density",
                "coverage", "class_coverage", "classes_covered"}
    assert expected <= set(res["metrics"]) and expected <= set(res["floor"])
    assert res["num_samples"] == 400 and res["preset"] == "digits-dcgan"
    assert res["extractor"]["test_accuracy"] > 0.95
    # an untrained generator is far worse than the real-vs-real floor
    assert res["metrics"]["fid"] > 10 * res["floor"]["fid"]
    assert res["floor"]["classes_covered"] == 10
    assert res["floor"]["precision"] > 0.8 and res["metrics"]["precision"] < 0.5
    table = E.format_table(res)
    for word in ("fid", "kid", "is", "precision", "recall", "class_coverage", "real floor"):
        assert word in table


def test_evaluate_run_toy_ring(tmp_path):
    _, spec = ring(10, seed=0)
    run = str(tmp_path / "ring")
    # the data entry as `tfgan-app train` writes it: the toy spec under "spec"
    _write_run(run, {"preset": "ring-mlp", "latent_dim": 4,
                     "data": {"name": "ring", "source": "toy", "spec": spec}},
               _tiny_generator(4, (2,)))
    res = E.evaluate_run(run)
    assert res["kind"] == "points" and res["num_samples"] == 2500
    assert set(res["protocol"]) == {"floor", "mode_coverage", "frechet"}
    assert set(res["metrics"]) >= {"modes_captured", "high_quality", "frechet"}
    assert res["floor"]["modes_captured"] == 8 and res["floor"]["high_quality"] > 0.98
    assert res["floor"]["frechet"] < 1e-2
    assert res["metrics"]["high_quality"] < 0.5  # tanh(Wz) is not on the ring modes
    assert "8" in E.format_table(res)
    # the run's samples are its sampler's (RunDir: the EMA copy when the run kept one)
    _write_run(run, {"preset": "ring-mlp", "latent_dim": 4,
                     "data": {"name": "ring", "source": "toy", "spec": spec}},
               _tiny_generator(4, (2,)), ema_generator=_tiny_generator(4, (2,), seed=1))
    res = E.evaluate_run(run, metrics="frechet", seed=5, write=False)
    expected = E.Evaluator(spec, metrics="frechet").evaluate(RunDir(run).sampler(), seed=5)
    assert res["metrics"]["frechet"] == pytest.approx(expected["frechet"], rel=1e-12)
    # the exact sampler scores the floor
    ev = E.Evaluator(spec)
    exact = ev.evaluate(lambda n, seed: E.sample_toy_points(spec, n, seed + 100))
    assert exact["modes_captured"] == 8 and exact["frechet"] < 1e-2


def test_evaluate_run_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        E.evaluate_run(str(tmp_path))
    run = str(tmp_path / "r")
    _write_run(run, {"latent_dim": 4, "data": {"name": "nope"}}, _tiny_generator(4, (8, 8, 1)))
    with pytest.raises(ValueError, match="no real-image source for dataset 'nope'"):
        E.evaluate_run(run)
    _, spec = grid(10)
    with pytest.raises(ValueError, match="unknown metric"):
        E.Evaluator(spec, metrics=["fid"])


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match=r"shape \[N, D\]"):
        E.frechet_distance(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="same feature size"):
        E.frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        E.kernel_distance(np.full((50, 2), np.nan), np.zeros((50, 2)))
    with pytest.raises(ValueError, match="subsets"):
        E.kernel_distance(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="k_pr"):
        E.prdc(np.zeros((3, 2)), np.zeros((3, 2)), k_pr=0)
    with pytest.raises(ValueError, match="sigmas"):
        E.parzen_log_likelihood(np.zeros((3, 2)), np.zeros((3, 2)), -1.0)
    with pytest.raises(ValueError, match="std"):
        E.mode_coverage(np.zeros((3, 2)), np.zeros((2, 2)), 0.0)


# ----------------------------------------------------------------------------- callback

def test_evaluation_callback_logs_and_checkpoint(tmp_path, digits_clf, cache_dir):
    xte, _ = E.load_digits_images("test")
    quality = {"noise": 1.0}

    def sampler(n, seed):  # gets better every epoch, so val_fid should fall
        rng = np.random.default_rng(seed)
        x = xte[rng.integers(0, len(xte), n)] + rng.normal(0, quality["noise"], (n, 8, 8, 1))
        quality["noise"] *= 0.5
        return np.clip(x, -1, 1).astype(np.float32)

    cb = E.EvaluationCallback("digits", every=2, metrics=["fid", "kid"], num_samples=200,
                              sampler=sampler, cache_dir=cache_dir)
    ckpt = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="val_fid",
                                           mode="min", save_best_only=True)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    hist = model.fit(np.zeros((8, 2)), np.zeros((8, 1)), epochs=5, verbose=0,
                     callbacks=[cb, ckpt])
    assert [e for e, _ in cb.history] == [1, 3, 4]  # every 2nd epoch and the last
    assert {"val_fid", "val_kid", "val_kid_std"} <= set(cb.last)
    # epoch 0 has no value yet; epoch 2 carries epoch 1's forward
    assert len(hist.history["val_fid"]) == 4
    assert hist.history["val_fid"][0] == hist.history["val_fid"][1]
    fids = [m["val_fid"] for _, m in cb.history]
    assert fids[0] > fids[1] > fids[2]
    assert os.path.isfile(tmp_path / "best.keras")


# ----------------------------------------------------------------------------- MNIST IDX

@pytest.mark.skipif(not os.path.isfile(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")),
                    reason="shared MNIST IDX files not present")
def test_mnist_idx_loader():
    x, y = E.load_mnist_idx(MNIST_DIR, "test")
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert y.shape == (10000,) and set(np.unique(y)) == set(range(10))
    real = E.real_images({"name": "mnist", "idx_dir": MNIST_DIR})
    assert len(real.reference) == 5000 and len(real.heldout) == 5000
    with pytest.raises(ValueError, match="not found"):
        E.load_mnist_idx(MNIST_DIR, "train")


def test_evaluator_parzen_and_swd_on_digits(cache_dir, digits_clf):
    ev = E.Evaluator("digits", metrics=["parzen", "swd"], parzen_samples=2000,
                     cache_dir=cache_dir)
    xtr, _ = E.load_digits_images("train")

    def noisy(n, seed):
        rng = np.random.default_rng(seed)
        x = xtr[rng.integers(0, len(xtr), n)] + rng.normal(0, 0.5, (n, 8, 8, 1))
        return np.clip(x, -1, 1).astype(np.float32)

    gen, floor = ev.evaluate(noisy), ev.floor()
    assert set(gen) == set(floor) == {"parzen_ll", "parzen_ll_stderr", "parzen_sigma", "swd",
                                      "swd_stderr"}
    assert 0 < gen["swd_stderr"] < 0.1 * gen["swd"]
    assert floor["parzen_ll"] > gen["parzen_ll"]  # real train digits explain test digits better
    assert gen["swd"] > floor["swd"]
    assert np.isclose(E.PARZEN_SIGMAS, gen["parzen_sigma"]).any()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")),
                    reason="shared MNIST IDX files not present")
def test_mnist_classifier_accuracy(cache_dir):
    model = E.mnist_classifier(MNIST_DIR, cache_dir=cache_dir)
    info = E.classifier_info(model)
    print(f"MNIST classifier accuracy on t10k[5000:]: {info['test_accuracy']:.4f}")
    assert info["num_train"] == 5000 and info["test_accuracy"] > 0.97
    ext = E.classifier_extractor(model)
    acts = ext(np.zeros((3, 28, 28, 1), np.float32))
    assert acts.features.shape == (3, 128) and acts.logits.shape == (3, 10)
