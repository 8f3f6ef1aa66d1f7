"""Each remedy changes what it claims to change."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan_app as tg
from tfgan_app import builders, remedies


def _ring_ds(n=512, batch=64):
    x, _ = tg.data.ring(n, seed=0)
    return tf.data.Dataset.from_tensor_slices(x).batch(batch, drop_remainder=True)


def _gan(disc=None, **compile_kw):
    keras.utils.set_random_seed(0)
    gen = builders.mlp_generator(2, (2,), hidden_units=(16,))
    disc = disc or builders.mlp_discriminator((2,), hidden_units=(16,))
    gan = tg.GANModel(gen, disc, latent_dim=2, seed=0)
    kw = dict(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    kw.update(compile_kw)
    gan.compile(**kw)
    return gan


def _same_start(plain, *others):
    """Give ``others`` the weights and noise stream of ``plain``."""
    for g in others:
        g.generator.set_weights(plain.generator.get_weights())
        g.discriminator.set_weights(plain.discriminator.get_weights())
        g.seed_generator.state.assign(plain.seed_generator.state)


def test_weight_clipping_keeps_discriminator_weights_in_range():
    gan = _gan(loss="wasserstein", weight_clip=0.01, d_optimizer=keras.optimizers.SGD(1.0))
    gan.fit(_ring_ds(), epochs=1, verbose=0)
    top = max(float(tf.reduce_max(tf.abs(v))) for v in gan.discriminator.trainable_variables)
    assert top <= 0.01 + 1e-7
    # and without clipping the same large steps leave the range
    free = _gan(loss="wasserstein", d_optimizer=keras.optimizers.SGD(1.0))
    free.fit(_ring_ds(), epochs=1, verbose=0)
    assert max(float(tf.reduce_max(tf.abs(v)))
               for v in free.discriminator.trainable_variables) > 0.01


def test_r1_and_l2_terms_are_added_exactly():
    real = tf.constant(tg.data.ring(64, seed=1)[0])
    plain = _gan()
    with_r1 = _gan(r1_gamma=3.0)
    with_l2 = _gan(d_l2=0.5)
    _same_start(plain, with_r1, with_l2)
    state = plain.seed_generator.state.numpy()
    base, _, _ = plain.discriminator_loss(real, None)
    r1_loss, _, _ = with_r1.discriminator_loss(real, None)
    expected_r1 = tg.losses.r1_penalty(with_r1.discriminator, real, gamma=3.0)
    np.testing.assert_allclose(float(r1_loss) - float(base), float(expected_r1), rtol=1e-4,
                               atol=1e-6)
    with_l2.seed_generator.state.assign(state)
    l2_loss, _, _ = with_l2.discriminator_loss(real, None)
    kernels = [w for w in with_l2.discriminator.trainable_weights if len(w.shape) == 2]
    direct = 0.5 * sum(float(np.sum(np.square(np.asarray(k)))) for k in kernels)
    np.testing.assert_allclose(float(l2_loss) - float(base), direct, rtol=1e-5)


def test_lazy_r1_weighs_n_gamma_every_nth_discriminator_step_and_zero_between():
    """StyleGAN2's lazy R1: the term is N x gamma's on steps that are multiples of N, absent
    on the others, and its gradient reaches D through the compiled step's condition."""
    real = tf.constant(tg.data.ring(64, seed=1)[0])
    plain, lazy = _gan(), _gan(r1_gamma=3.0, r1_interval=4)
    _same_start(plain, lazy)
    state = plain.seed_generator.state.numpy()
    base, _, _ = plain.discriminator_loss(real, None)
    every_fourth = 4 * float(tg.losses.r1_penalty(lazy.discriminator, real, gamma=3.0))
    assert every_fourth > 1e-4

    @tf.function
    def loss_and_grads():
        with tf.GradientTape() as tape:
            loss, _, _ = lazy.discriminator_loss(real, None)
        return loss, tape.gradient(loss, lazy.discriminator.trainable_variables)

    plain.seed_generator.state.assign(state)
    with tf.GradientTape() as tape:
        plain_loss, _, _ = plain.discriminator_loss(real, None)
    plain_grads = tape.gradient(plain_loss, plain.discriminator.trainable_variables)
    for step, expected in [(0, every_fourth), (1, 0.0), (3, 0.0), (8, every_fourth)]:
        lazy.d_optimizer.iterations.assign(step)
        lazy.seed_generator.state.assign(state)
        loss, grads = loss_and_grads()
        np.testing.assert_allclose(float(loss) - float(base), expected, rtol=1e-4, atol=1e-6)
        same = all(np.allclose(a, b, atol=1e-7) for a, b in zip(grads, plain_grads))
        assert same == (expected == 0.0), step


def test_instance_noise_anneals_linearly_to_zero_and_reaches_the_discriminator():
    assert float(remedies.instance_noise_std(0, 0.2, 100)) == pytest.approx(0.2)
    assert float(remedies.instance_noise_std(50, 0.2, 100)) == pytest.approx(0.1)
    assert float(remedies.instance_noise_std(100, 0.2, 100)) == 0.0
    assert float(remedies.instance_noise_std(500, 0.2, 100)) == 0.0
    gan = _gan(instance_noise=0.5, instance_noise_steps=1000)
    real = tf.constant(tg.data.ring(64, seed=1)[0])
    # the same real batch scored twice differs only through the noise on D's inputs
    a = gan._d_inputs(real)
    b = gan._d_inputs(real)
    assert float(tf.reduce_mean(tf.abs(a - real))) == pytest.approx(0.5 * np.sqrt(2 / np.pi),
                                                                     rel=0.15)
    assert not np.allclose(a, b)
    gan.d_optimizer.iterations.assign(1000)  # annealed away
    np.testing.assert_array_equal(gan._d_inputs(real), real)


def test_unrolled_generator_loss_looks_through_k_discriminator_steps():
    k, lr = 3, 0.05
    gan = _gan(unrolled_steps=k, unrolled_lr=lr)
    real = tf.constant(tg.data.ring(64, seed=1)[0])
    z = tf.constant(np.random.default_rng(0).normal(size=(64, 2)), tf.float32)
    gan.sample_latent = lambda batch: z  # the same noise everywhere
    before = [np.copy(w) for w in gan.discriminator.get_weights()]
    # a manual, non-differentiable unroll on a copy of D
    d_copy = keras.models.clone_model(gan.discriminator)
    d_copy.set_weights(gan.discriminator.get_weights())
    fake = gan.generator(z, training=True)
    for _ in range(k):
        with tf.GradientTape() as tape:
            loss = gan.gan_loss.discriminator_loss(d_copy(real, training=True),
                                                   d_copy(fake, training=True))
        for v, g in zip(d_copy.trainable_variables,
                        tape.gradient(loss, d_copy.trainable_variables)):
            v.assign_sub(lr * g)
    expected = gan.gan_loss.generator_loss(None, d_copy(fake, training=True))
    got = gan.generator_loss(real, None)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-5)
    # the discriminator itself is untouched by the unrolling
    for a, b in zip(gan.discriminator.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    # gradients flow through the unrolling: they differ from treating the unrolled D as fixed
    with tf.GradientTape() as tape:
        through = gan.generator_loss(real, None)
    g_through = tape.gradient(through, gan.generator.trainable_variables)
    with tf.GradientTape() as tape:
        fixed = gan.gan_loss.generator_loss(None, d_copy(gan.generator(z, training=True),
                                                         training=True))
    g_fixed = tape.gradient(fixed, gan.generator.trainable_variables)
    diff = sum(float(tf.reduce_sum(tf.abs(a - b))) for a, b in zip(g_through, g_fixed))
    assert diff > 1e-6


def test_spectral_normalization_bounds_the_largest_singular_value():
    gan = _gan(disc=builders.mlp_discriminator((2,), hidden_units=(16,), spectral_norm=True))
    gan.fit(_ring_ds(), epochs=3, verbose=0)
    for layer in gan.discriminator.layers:
        if isinstance(layer, keras.layers.SpectralNormalization):
            w = np.asarray(layer.layer.kernel)
            sigma = np.linalg.svd(w, compute_uv=False)[0]
            assert sigma == pytest.approx(1.0, abs=0.1)


def test_one_sided_label_smoothing_changes_only_the_real_side():
    real = tf.constant([[2.0], [1.0]])
    fake = tf.constant([[-1.0], [0.5]])
    plain = tg.losses.get("modified", label_smoothing=0.0)
    smooth = tg.losses.get("modified", label_smoothing=0.2)
    diff = float(smooth.discriminator_loss(real, fake) - plain.discriminator_loss(real, fake))
    # the real targets move from 1 to 0.9: the difference is 0.1 * mean(logit) on the real side
    assert diff == pytest.approx(0.1 * float(tf.reduce_mean(real)), rel=1e-5)
    assert float(smooth.generator_loss(real, fake)) == float(plain.generator_loss(real, fake))


def test_packing_puts_m_consecutive_samples_side_by_side():
    x = np.arange(16 * 2, dtype="float32").reshape(16, 2)
    packed = np.asarray(builders.Pack(4)(x))
    assert packed.shape == (4, 8)
    np.testing.assert_array_equal(packed[1], x[4:8].reshape(-1))
    img = np.random.default_rng(0).random((6, 4, 4, 3)).astype("float32")
    packed = np.asarray(builders.Pack(3)(img))
    assert packed.shape == (2, 4, 4, 9)
    for j in range(3):  # pack 1 = images 3, 4, 5 stacked along the channels
        np.testing.assert_array_equal(packed[1, ..., 3 * j:3 * j + 3], img[3 + j])


def test_packed_discriminator_judges_each_pack_jointly(tmp_path):
    d = builders.build("discriminator", {"builder": "mlp", "hidden_units": [16], "pack": 4},
                       data_shape=(2,))
    x = tf.constant(tg.data.ring(16, seed=0)[0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = d(x)
        first = out[0, 0]
    assert tuple(out.shape) == (4, 1)  # one logit per pack of 4
    grad = tape.gradient(first, x).numpy()
    # the first pack's logit depends on all four of its samples and on nothing else
    assert np.all(np.abs(grad[:4]).sum(axis=1) > 0)
    assert np.all(grad[4:] == 0)
    d.save(tmp_path / "d.keras")
    again = keras.saving.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(again(x), out, rtol=1e-6)
    with pytest.raises(ValueError, match="unconditional"):
        builders.build("discriminator", {"builder": "mlp", "pack": 2}, data_shape=(2,),
                       num_classes=10)
    with pytest.raises(ValueError, match="discriminator option"):
        builders.build("generator", {"builder": "mlp", "pack": 2}, data_shape=(2,), latent_dim=2)


def test_packed_gan_trains_and_batch_must_divide(tmp_path):
    from tfgan_app import train

    settings = train.resolve_settings("ring", epochs=1, seed=0, overrides=[
        "discriminator.pack=4", "generator.batch_norm=true", "batch_size=64",
        "jit_compile=false", "steps_per_execution=1", "lr_decay=linear", "dataset_options.n=6400"])
    result = train.train(settings, str(tmp_path / "run"), verbose=0)
    gan = result["gan"]
    assert isinstance(gan.discriminator.get_layer("pack"), builders.Pack)
    assert any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in gan.generator.layers)
    assert np.isfinite(result["history"]["d_loss"][-1])
    # lr_decay=linear: both learning rates reach lr * lr_decay_floor at the run's last step
    steps = 6400 // 64
    assert int(gan.d_optimizer.iterations) == int(gan.g_optimizer.iterations) == steps
    for opt, lr in ((gan.d_optimizer, settings["d_lr"]), (gan.g_optimizer, settings["g_lr"])):
        assert float(opt.learning_rate) == pytest.approx(lr * settings["lr_decay_floor"])
    # ring/grid runs report VEEGAN's mode coverage of 2,500 samples (report.json)
    report = result["report"]
    assert report["num_modes"] == 8 and report["num_samples"] == 2500
    assert sum(report["mode_counts"]) == round(report["high_quality"] * 2500)
    settings["batch_size"] = 66
    with pytest.raises(ValueError, match="divisible by 4"):
        train.train(settings, str(tmp_path / "bad"), verbose=0)


def test_mixture_presets_default_to_the_best_measured_configuration():
    """benchmarks/results/mode_collapse.json (5 seeds, VEEGAN protocol): on each mixture the
    row with the most modes captured, then the most high-quality samples, is the preset's."""
    import json
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "benchmarks", "results", "mode_collapse.json")
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    assert result["seeds"] == 5
    for dataset in ("ring", "grid"):
        measured = [r for r in result["rows"] if r["dataset"] == dataset and "modes_mean" in r]
        assert len(measured) >= 7, [r["configuration"] for r in measured]
        best = max(measured, key=lambda r: (r["modes_mean"], r["hq_mean"]))
        assert best["configuration"] == "preset default", (dataset, best)


def test_dragan_penalty_is_the_gradient_penalty_around_perturbed_real_data():
    """DRAGAN adds exactly weight * mean((||grad D(x_hat)|| - 1)^2) at x_hat = x + alpha (x_p - x),
    x_p = x + c std(x) u, with u and alpha drawn from the model's saved random stream."""
    real = tf.constant(tg.data.ring(64, seed=1)[0])
    plain = _gan()
    dragan = _gan(dragan=10.0, dragan_c=0.5)
    _same_start(plain, dragan)
    state = plain.seed_generator.state.numpy()
    base, _, _ = plain.discriminator_loss(real, None)
    total, _, _ = dragan.discriminator_loss(real, None)
    # replay the draws: latent noise (one seed), then u, then alpha (one seed each)
    dragan.seed_generator.state.assign(state)
    dragan.next_seed()
    u = tf.random.stateless_uniform(tf.shape(real), seed=dragan.next_seed())
    alpha = tf.random.stateless_uniform([64, 1], seed=dragan.next_seed())
    x_hat = real + alpha * (0.5 * float(np.std(real.numpy())) * u)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        out = dragan.discriminator(x_hat, training=True)
    norms = tf.norm(tape.gradient(out, x_hat), axis=1)
    direct = 10.0 * float(tf.reduce_mean(tf.square(norms - 1.0)))
    np.testing.assert_allclose(float(total) - float(base), direct, rtol=1e-4, atol=1e-6)
    assert direct > 0


def test_dragan_trains_and_is_a_setting():
    from tfgan_app import presets, train

    assert presets.defaults()["dragan"] == 0.0  # off in every preset unless set
    settings = train.resolve_settings("ring", overrides=["dragan=10", "epochs=1"])
    assert settings["dragan"] == 10.0
    gan = _gan(dragan=10.0)
    hist = gan.fit(_ring_ds(), epochs=2, verbose=0).history
    assert all(np.isfinite(hist["d_loss"])) and gan.get_compile_config()["dragan"] == 10.0
