"""GANModel: Algorithm 1's k steps, logging, determinism, .keras round trip, conditional, errors."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan_app as tg
from tfgan_app import builders


def _points(n=256, seed=0):
    x, _ = tg.data.gaussian(n, seed=seed)
    return x


def _ds(x, batch=16, labels=None):
    items = x if labels is None else (x, labels)
    return tf.data.Dataset.from_tensor_slices(items).batch(batch, drop_remainder=True)


def _toy_gan(**compile_kw):
    gan = tg.GANModel(builders.toy_generator(2), builders.toy_discriminator(), latent_dim=2,
                      seed=3)
    kw = dict(d_optimizer=keras.optimizers.Adam(0.01), g_optimizer=keras.optimizers.Adam(0.005))
    kw.update(compile_kw)
    gan.compile(**kw)
    return gan


@pytest.mark.parametrize("k", [1, 3, 5])
def test_d_steps_gives_exactly_k_discriminator_updates_per_generator_update(k):
    gan = _toy_gan(d_steps=k)
    x = _points(16 * 15)  # 15 batches per epoch, a multiple of 3 and 5
    hist = gan.fit(_ds(x), epochs=2, verbose=0)
    d_it = int(gan.d_optimizer.iterations.numpy())
    g_it = int(gan.g_optimizer.iterations.numpy())
    assert d_it == 30
    assert d_it == k * g_it
    assert set(hist.history) == {"d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm"}


def test_d_steps_under_jit_and_steps_per_execution():
    gan = _toy_gan(d_steps=2, jit_compile=True, steps_per_execution=5)
    hist = gan.fit(_ds(_points(16 * 10)), epochs=3, verbose=0)
    assert int(gan.d_optimizer.iterations) == 30 and int(gan.g_optimizer.iterations) == 15
    assert all(np.isfinite(v).all() for v in hist.history.values())


def _fit_weights(make_gan, ds, epochs, fused: bool):
    """Weights and history of ``make_gan()`` fitted on ``ds``, with each execution as one XLA
    program (``fused``) or through Keras' own steps_per_execution loop."""
    from tfgan_app import keras_workarounds as kw
    keras.utils.set_random_seed(0)
    gan = make_gan()
    original = kw.one_program_per_execution
    if not fused:
        kw.one_program_per_execution = lambda step, steps, keras_function: keras_function
    try:
        hist = gan.fit(ds, epochs=epochs, verbose=0)
    finally:
        kw.one_program_per_execution = original
    fused_function = gan.train_function.__qualname__.startswith("one_program_per_execution")
    assert fused_function == fused
    return gan, [w.numpy() for w in gan.weights], hist.history


def _conditional_gan(**compile_kw):
    k = 3
    gan = tg.GANModel(builders.mlp_generator(4, (2,), hidden_units=(16,), num_classes=k),
                      builders.mlp_discriminator((2,), hidden_units=(16,), num_classes=k),
                      latent_dim=4, num_classes=k, seed=1)
    gan.compile(loss="modified", **compile_kw)
    return gan


@pytest.mark.parametrize("conditional", [False, True])
def test_each_execution_as_one_xla_program_is_bit_identical_to_keras_loop(conditional):
    # 10 batches per epoch with steps_per_execution=4: executions of 4, 4 and a short 2.
    x = _points(16 * 10)
    if conditional:
        y = (np.arange(len(x)) % 3).astype(np.int32)
        ds, make = _ds(x, labels=y), lambda: _conditional_gan(jit_compile=True,
                                                              steps_per_execution=4)
    else:
        ds, make = _ds(x), lambda: _toy_gan(d_steps=2, jit_compile=True, steps_per_execution=4)
    gan, fused, h_fused = _fit_weights(make, ds, 3, fused=True)
    _, keras_loop, h_keras = _fit_weights(make, ds, 3, fused=False)
    assert int(gan.d_optimizer.iterations) == 30  # every batch trained on, the short tail too
    assert all(np.array_equal(a, b) for a, b in zip(fused, keras_loop))
    assert h_fused == h_keras


def test_one_program_per_execution_falls_back_to_keras_for_unknown_batch_shapes():
    # A last batch of 4 (no drop_remainder): elements cannot be stacked, so Keras' loop runs.
    ds = tf.data.Dataset.from_tensor_slices(_points(16 * 5 + 4)).batch(16)
    gan = _toy_gan(jit_compile=True, steps_per_execution=4)
    hist = gan.fit(ds, epochs=2, verbose=0)
    assert int(gan.d_optimizer.iterations) == 12
    assert all(np.isfinite(v).all() for v in hist.history.values())


def test_compiled_metric_reset_and_result_match_keras():
    gan = _toy_gan(jit_compile=True, steps_per_execution=5)
    gan.fit(_ds(_points(16 * 10)), epochs=1, verbose=0)
    ours = gan.get_metrics_result()
    assert ours == keras.Model.get_metrics_result(gan) and len(ours) == 5
    assert ours["d_loss"] != 0.0
    gan.reset_metrics()
    assert all(float(v.numpy()) == 0.0 for m in gan.metrics for v in m.variables)


def test_logged_discriminator_outputs_are_probabilities_for_sigmoid_losses():
    gan = _toy_gan(loss="modified")
    h = gan.fit(_ds(_points()), epochs=1, verbose=0).history
    assert 0 < h["d_real"][0] < 1 and 0 < h["d_fake"][0] < 1
    # d_loss equals TF-GAN's discriminator loss on the same logits (spot check on one batch)
    real = tf.constant(_points(16))
    loss, d_real, d_fake = gan.discriminator_loss(real, None)
    expected = tg.losses.get("modified").discriminator_loss(d_real, d_fake)
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-6)


def test_discriminator_learns_to_separate_when_generator_is_frozen():
    """With G fixed (lr 0) D's outputs move apart: D(real) > 0.5 > D(fake) after training."""
    gan = _toy_gan(g_optimizer=keras.optimizers.SGD(0.0), loss="modified",
                   loss_options={"label_smoothing": 0.0})
    h = gan.fit(_ds(_points(512)), epochs=5, verbose=0).history
    assert h["d_real"][-1] > 0.7 and h["d_fake"][-1] < 0.3


def test_generate_is_deterministic_for_a_seed():
    gan = _toy_gan()
    a, b, c = gan.generate(64, seed=7), gan.generate(64, seed=7), gan.generate(64, seed=8)
    assert a.shape == (64, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a, gan.generator(tg.latent_vectors(64, 2, 7)), rtol=1e-6)


def test_keras_round_trip_same_samples_and_optimizer_state(tmp_path):
    gan = _toy_gan(d_steps=2, loss="wasserstein", gradient_penalty=5.0, ema_decay=0.9)
    data = _ds(_points())
    gan.fit(data, epochs=2, verbose=0)
    path = os.path.join(tmp_path, "gan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, tg.GANModel)
    np.testing.assert_allclose(loaded.generate(100, seed=1), gan.generate(100, seed=1), rtol=1e-6)
    assert loaded.options.d_steps == 2 and loaded.gan_loss.name == "wasserstein"
    assert loaded.options.gradient_penalty == 5.0 and loaded.options.ema_decay == 0.9
    for a, b in ((gan.d_optimizer, loaded.d_optimizer), (gan.g_optimizer, loaded.g_optimizer)):
        assert int(a.iterations) == int(b.iterations) > 0
        for va, vb in zip(a.variables, b.variables):
            np.testing.assert_allclose(np.asarray(va), np.asarray(vb), rtol=1e-6)
    # training resumes where it stopped: one more epoch from both gives the same weights
    keras.utils.set_random_seed(5)
    gan.seed_generator.state.assign(loaded.seed_generator.state)
    gan.fit(data, epochs=1, verbose=0)
    keras.utils.set_random_seed(5)
    loaded.fit(data, epochs=1, verbose=0)
    assert int(loaded.d_optimizer.iterations) == int(gan.d_optimizer.iterations)
    for wa, wb in zip(gan.generator.weights, loaded.generator.weights):
        np.testing.assert_allclose(np.asarray(wa), np.asarray(wb), rtol=1e-5, atol=1e-6)


def test_ema_generator_trails_the_raw_generator():
    gan = _toy_gan(ema_decay=0.9)
    init = [np.asarray(w) for w in gan.generator.weights]
    gan.fit(_ds(_points()), epochs=2, verbose=0)
    raw = [np.asarray(w) for w in gan.generator.weights]
    ema = [np.asarray(w) for w in gan.ema_generator.weights]
    for r, e, i in zip(raw, ema, init):
        assert not np.allclose(r, e)
        # the average lies between the start and the current raw weights (per coordinate,
        # on the whole): closer to the raw ones than the initial weights are
        assert np.linalg.norm(e - r) < np.linalg.norm(i - r)
    np.testing.assert_allclose(gan.generate(10, seed=0),
                               gan.ema_generator(tg.latent_vectors(10, 2, 0)), rtol=1e-6)


def test_conditional_and_acgan_training_runs_and_uses_labels():
    k = 3
    x = np.concatenate([_points(96, s) + 3 * s for s in range(k)]).astype(np.float32)
    y = np.repeat(np.arange(k), 96).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(288, seed=0).batch(
        32, drop_remainder=True)
    gen = builders.mlp_generator(4, (2,), hidden_units=(16,), num_classes=k)
    disc = builders.mlp_discriminator((2,), hidden_units=(16,), num_classes=k)
    gan = tg.GANModel(gen, disc, latent_dim=4, num_classes=k)
    gan.compile(loss="modified")
    h = gan.fit(ds, epochs=1, verbose=0).history
    assert np.isfinite(h["d_loss"][0])
    out = gan.generate(6, labels=[0, 1, 2, 0, 1, 2], seed=0)
    assert out.shape == (6, 2)
    with pytest.raises(ValueError, match="labels must be in"):
        gan.generate(2, labels=[0, 5])
    # ACGAN: a discriminator with (logits, class_logits)
    inp = keras.Input((2,))
    hdn = keras.layers.Dense(16, activation="relu")(inp)
    acd = keras.Model(inp, [keras.layers.Dense(1)(hdn), keras.layers.Dense(k)(hdn)])
    gan2 = tg.GANModel(builders.mlp_generator(4, (2,), hidden_units=(16,), num_classes=k), acd,
                       latent_dim=4, num_classes=k)
    gan2.compile(loss="acgan")
    h2 = gan2.fit(ds, epochs=1, verbose=0).history
    assert np.isfinite(h2["d_loss"][0]) and np.isfinite(h2["g_loss"][0])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="latent vectors of size 2"):
        tg.GANModel(builders.toy_generator(2), builders.toy_discriminator(), latent_dim=3)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        _toy_gan(loss="nope")
    with pytest.raises(ValueError, match="d_steps"):
        _toy_gan(d_steps=0)
    with pytest.raises(ValueError, match="acgan"):
        _toy_gan(loss="acgan")
    gan = _toy_gan()
    bad = tf.data.Dataset.from_tensor_slices(np.zeros((32, 3), np.float32)).batch(16)
    with pytest.raises(ValueError, match=r"shape \(3,\) but the generator produces \(2,\)"):
        gan.fit(bad, epochs=1, verbose=0)
    ints = tf.data.Dataset.from_tensor_slices(np.zeros((32, 2), np.int32)).batch(16)
    with pytest.raises(ValueError, match="floating point"):
        gan.fit(ints, epochs=1, verbose=0)
