"""One latent sampler: the same seed gives the same latent vectors, hence the same samples, in
GANModel.generate, tfgan-app evaluate, tfgan-app sample and the exported `sample` signature."""

import numpy as np
import pytest
import tensorflow as tf

from tfgan_app import sampling, train
from tfgan_app.rundir import RunDir, RunDirError

N, SEED = 300, 7


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    settings = train.resolve_settings("d2l-gaussian", overrides={"epochs": 1, "ema_decay": 0.9})
    train.train(settings, str(out), verbose=0)
    return str(out)


@pytest.fixture
def recorded(monkeypatch):
    """Every (n, seed) -> samples drawn through tfgan_app.sampling.generate."""
    calls = []
    real_generate = sampling.generate

    def spy(generator, latent_dim, n, **kw):
        out = real_generate(generator, latent_dim, n, **kw)
        calls.append((n, kw.get("seed"), out))
        return out

    monkeypatch.setattr(sampling, "generate", spy)
    return calls


def _expected(run_dir):
    gan = RunDir(run_dir).load_gan()
    assert gan.ema_generator is not None  # every entry point must pick the EMA copy
    return gan.generate(N, seed=SEED)


def test_latent_vectors_are_stateless_normal_of_the_seed():
    z = sampling.latent_vectors(5, 3, 11)
    expected = tf.random.stateless_normal([5, 3], seed=tf.constant([11, 0], tf.int64))
    np.testing.assert_array_equal(z.numpy(), expected.numpy())


def test_generate_and_run_sampler_agree(run_dir):
    expected = _expected(run_dir)
    np.testing.assert_allclose(RunDir(run_dir).sampler().generate(N, seed=SEED), expected,
                               rtol=1e-6, atol=1e-6)


def test_evaluate_draws_the_same_samples(run_dir, recorded):
    from tfgan_app.evaluation import evaluate_run

    expected = _expected(run_dir)
    recorded.clear()
    evaluate_run(run_dir, metrics=["frechet"], num_samples=N, seed=SEED, write=False)
    drawn = [out for n, seed, out in recorded if n == N and seed == SEED]
    assert drawn, f"evaluate did not sample (n={N}, seed={SEED}) through tfgan_app.sampling"
    np.testing.assert_allclose(drawn[0], expected, rtol=1e-6, atol=1e-6)


def test_cli_sample_draws_the_same_samples(run_dir, recorded, tmp_path):
    from tfgan_app.cli import main

    expected = _expected(run_dir)
    recorded.clear()
    out = tmp_path / "s.png"
    assert main(["sample", run_dir, "-n", str(N), "--seed", str(SEED), "--out", str(out)]) == 0
    assert out.is_file()
    drawn = [o for n, seed, o in recorded if n == N and seed == SEED]
    assert drawn, "tfgan-app sample did not sample through tfgan_app.sampling"
    np.testing.assert_allclose(drawn[0], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_exported_sample_signature_gives_the_same_samples(run_dir, tmp_path):
    from tfgan_app.export import export_generator

    expected = _expected(run_dir)
    path = export_generator(run_dir, str(tmp_path / "export"))
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["sample"](num_samples=tf.constant(N, tf.int32),
                                      seed=tf.constant(SEED, tf.int64))
    np.testing.assert_allclose(out["samples"].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_run_dir_errors_are_one_clear_type(tmp_path):
    with pytest.raises(RunDirError, match="run directory not found"):
        RunDir(tmp_path / "nope").config
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="not valid JSON"):
        RunDir(tmp_path).config
    (tmp_path / "config.json").write_text('{"latent_dim": 2, "data": {"name": "gaussian"}}')
    with pytest.raises(RunDirError, match="generator.keras' not found"):
        RunDir(tmp_path).sampler()
    (tmp_path / "generator.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RunDirError, match="could not be loaded"):
        RunDir(tmp_path).sampler()
    assert issubclass(RunDirError, FileNotFoundError) and issubclass(RunDirError, ValueError)
