"""Differentiable augmentation (tfgan_app.augment): the ops, the hook on D's inputs, adaptive p."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan_app as tg
from tfgan_app import augment as A
from tfgan_app import builders

RGB_ONLY = {"hue", "saturation"}


def _images(channels=1, n=6, seed=0):
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 8, 8, channels)).astype(np.float32)
    return tf.constant(x)


def _fixed(values):
    """``uniform(k)`` returning the same row ``values[:k]`` for every image."""
    def uniform(k):
        return tf.tile(tf.constant([values[:k]], tf.float32), [6, 1])
    return uniform


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("op", A.OPS)
def test_each_op_keeps_shape_dtype_range_and_is_the_identity_at_p0(op, channels):
    x = _images(channels)
    for dtype in (tf.float32, tf.float16):
        xd = tf.cast(x, dtype)
        y0 = A.augment(xd, 0.0, (op,), A.seeded_uniform(6, 1))
        np.testing.assert_array_equal(y0.numpy(), xd.numpy())
        y1 = A.augment(xd, 1.0, (op,), A.seeded_uniform(6, 1))
        assert y1.shape == x.shape and y1.dtype == dtype
        assert float(tf.reduce_min(y1)) >= -1.0 and float(tf.reduce_max(y1)) <= 1.0
        changed = float(tf.reduce_max(tf.abs(tf.cast(y1 - xd, tf.float32))))
        if op in RGB_ONLY and channels == 1:
            assert changed == 0.0  # needs 3 channels: skipped on grayscale (documented)
        else:
            assert changed > 0.05, (op, channels)


def test_geometric_ops_do_what_they_say():
    x = _images(1)
    # gate drawn (u < p), then the parameter: xflip with u=0.9 -> flip
    np.testing.assert_allclose(A.augment(x, 1.0, ("xflip",), _fixed([0.0, 0.9, 0.0])),
                               x.numpy()[:, :, ::-1], atol=1e-6)
    # rotate90 by k = floor(0.3 * 4) = 1 quarter turn
    y = A.augment(x, 1.0, ("rotate90",), _fixed([0.0, 0.3, 0.0])).numpy()
    assert any(np.allclose(y, np.rot90(x.numpy(), k, axes=(1, 2)), atol=1e-5) for k in (1, 3))
    # xint: +1 pixel in x (round(0.125 * 8 * (2u - 1)) = 1 for u = 1), reflection padding
    y = A.augment(x, 1.0, ("xint",), _fixed([0.0, 0.999, 0.5])).numpy()
    np.testing.assert_allclose(y[:, :, :7], x.numpy()[:, :, 1:], atol=1e-6)
    # DiffAugment's translation: 1 pixel in x, zero padding
    y = A.augment(x, 1.0, ("translation",), _fixed([0.0, 0.999, 0.5])).numpy()
    np.testing.assert_allclose(y[:, :, 1:], x.numpy()[:, :, :7], atol=1e-6)
    np.testing.assert_array_equal(y[:, :, 0], 0.0)
    # cutout: a 4x4 square of zeros centred at (0.5, 0.5)
    y = A.augment(x, 1.0, ("cutout",), _fixed([0.0, 0.5, 0.5])).numpy()
    assert (y[:, 2:6, 2:6] == 0).all() and (y[:, 0] == x.numpy()[:, 0]).all()
    # the gate: u = 0.7 >= p = 0.5 leaves the image alone
    np.testing.assert_array_equal(A.augment(x, 0.5, ("xflip",), _fixed([0.7, 0.9, 0.0])), x)


class _FixedDraws(tg.GANModel):
    """Training noise and augmentation draws as fixed functions of (row, column, step): the
    same under XLA and without (stateless random ops draw differently under XLA)."""

    def _step(self):
        return tf.cast(self.d_optimizer.iterations, tf.float32)

    def augment_uniform(self, batch, k):
        i = tf.cast(tf.range(batch), tf.float32)[:, None]
        j = tf.range(k, dtype=tf.float32)[None, :]
        return tf.math.floormod(0.37 * i + 0.61 * j + 0.23 * self._step() + 0.1, 1.0)

    def sample_latent(self, batch):
        i = tf.cast(tf.range(batch), tf.float32)[:, None]
        j = tf.range(self.latent_dim, dtype=tf.float32)[None, :]
        return 1.5 * tf.sin(1.3 * i + 0.7 * j + 2.1 * self._step())


def test_ada_rotations_sandwich_the_anisotropic_scaling():
    """ADA's order: pre-rotation, aniso, post-rotation (a rotation alone where aniso is off)."""
    # draws: rotation [gate, angle, gate, angle], then aniso [gate, normal u, -]
    u = [0.0, 0.75, 0.0, 0.625, 0.0, 0.9, 0.0]
    m = A._geometric_matrix(("rotate", "aniso"), 1.0, A._dealer(_fixed(u), 7), (8, 8))

    def rot(u):
        t = (2 * u - 1) * np.pi
        return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    s = 2.0 ** (float(A._normal(tf.constant(0.9))) * 0.2)
    aniso = np.diag([s, 1 / s, 1.0])
    np.testing.assert_allclose(m.numpy()[0], rot(0.75) @ aniso @ rot(0.625), atol=1e-5)
    # the two rotations do not commute with aniso: the order is what is being checked
    assert not np.allclose(rot(0.75) @ aniso @ rot(0.625), rot(0.75) @ rot(0.625) @ aniso,
                           atol=1e-3)
    alone = A._geometric_matrix(("rotate",), 1.0, A._dealer(_fixed(u), 4), (8, 8))
    np.testing.assert_allclose(alone.numpy()[0], rot(0.75) @ rot(0.625), atol=1e-5)


def _image_gan(conditional=None, seed=0, cls=tg.GANModel, **compile_kw):
    keras.utils.set_random_seed(seed)
    if conditional is None:
        gen = builders.dcgan_generator(8, (8, 8, 1), base_filters=8)
        disc = builders.dcgan_discriminator((8, 8, 1), base_filters=8)
        gan = cls(gen, disc, latent_dim=8, seed=1)
    elif conditional == "projection":
        gen = builders.conditional_dcgan_generator(8, (8, 8, 1), 10, base_filters=8)
        disc = builders.conditional_dcgan_discriminator((8, 8, 1), 10, base_filters=8)
        gan = tg.GANModel(gen, disc, latent_dim=8, num_classes=10, seed=1)
    else:  # AC-GAN: D returns (logits, class_logits)
        gen = builders.conditional_dcgan_generator(8, (8, 8, 1), 10, base_filters=8)
        inp = keras.Input((8, 8, 1))
        h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inp))
        disc = keras.Model(inp, [keras.layers.Dense(1)(h), keras.layers.Dense(10)(h)])
        gan = tg.GANModel(gen, disc, latent_dim=8, num_classes=10, seed=1)
        compile_kw.setdefault("loss", "acgan")
    gan.compile(**{"jit_compile": False, **compile_kw})
    return gan


@pytest.mark.parametrize("op", A.OPS)
def test_the_generator_gradient_flows_through_each_op(op):
    gan = _image_gan(augment=op, augment_p=1.0)
    z = tf.random.stateless_normal([6, 8], seed=[1, 2])
    x = _images(1)

    def g_grad(aug):
        with tf.GradientTape() as tape:
            fake = gan.generator(z, training=True)
            fake = A.augment(fake, 1.0, (op,), A.seeded_uniform(6, 7)) if aug else fake
            loss = tf.reduce_mean(gan.discriminator(fake, training=True))
        return tape.gradient(loss, gan.generator.trainable_variables)

    grads = g_grad(True)
    assert all(g is not None for g in grads)
    norm = float(tf.linalg.global_norm(grads))
    assert norm > 0 and np.isfinite(norm)
    if op not in RGB_ONLY:  # the augmentation changed the gradient: it is inside the chain
        assert abs(norm - float(tf.linalg.global_norm(g_grad(False)))) > 1e-6 * norm
    # and the model's hook on D's inputs is that augmentation
    assert float(tf.reduce_max(tf.abs(gan._d_inputs(x) - x))) > 0 or op in RGB_ONLY


def _what_d_sees(gan, x, labels, training):
    seen = []

    def call(inputs):
        seen.append(inputs[0] if isinstance(inputs, list) else inputs)
        return gan.discriminator(inputs, training=training)

    gan._d_forward(x, labels, training, call)
    return seen[0].numpy()


def test_d_sees_augmented_inputs_only_in_training():
    x = _images(1)
    for kind in (None, "projection", "acgan"):
        labels = tf.range(6) % 10 if kind else None
        gan = _image_gan(kind, augment="cutout,translation", augment_p=1.0)
        assert np.abs(_what_d_sees(gan, x, labels, True) - x.numpy()).max() > 0.1, kind
        np.testing.assert_array_equal(_what_d_sees(gan, x, labels, False), x)
        gan0 = _image_gan(kind, augment="cutout,translation", augment_p=0.0)
        np.testing.assert_array_equal(_what_d_sees(gan0, x, labels, True), x)


def test_adaptive_rule_moves_p_up_when_d_overfits_and_down_when_not():
    gan = _image_gan(augment="ada", augment_p=0.5, ada_target=0.6, ada_interval=2, ada_kimg=1)
    confident = tf.fill([64, 1], 3.0)   # sign +1 everywhere: r_t = 1 > 0.6
    mixed = tf.concat([tf.fill([16, 1], 1.0), tf.fill([48, 1], -1.0)], 0)  # r_t = -0.5
    gan.d_optimizer.iterations.assign(1)
    gan.update_augment_p(confident)      # step 1: not due (interval 2): only counted
    assert gan.augment_probability == 0.5
    gan.d_optimizer.iterations.assign(2)
    gan.update_augment_p(confident)      # due: 128 images / (1 x 1000) up
    np.testing.assert_allclose(gan.augment_probability, 0.5 + 0.128, rtol=1e-6)
    for it in (3, 4):
        gan.d_optimizer.iterations.assign(it)
        gan.update_augment_p(mixed)
    np.testing.assert_allclose(gan.augment_probability, 0.5, rtol=1e-6)
    for it in range(5, 25):               # keeps falling, clipped at 0
        gan.d_optimizer.iterations.assign(it)
        gan.update_augment_p(mixed)
    assert gan.augment_probability == 0.0
    # the logged r_t is the mean sign of the real logits seen
    np.testing.assert_allclose(gan.r_t_tracker.result(), (2 * 1.0 + 22 * -0.5) / 24, rtol=1e-5)
    # a fixed p (no ada_target) never moves
    fixed = _image_gan(augment="ada", augment_p=0.3)
    fixed.d_optimizer.iterations.assign(4)
    fixed.update_augment_p(confident)
    np.testing.assert_allclose(fixed.augment_probability, 0.3, rtol=1e-6)


def _digits_ds(labels=False, n=256):
    x, y = tg.data.load_digits_arrays("train")
    items = (x[:n], y[:n]) if labels else x[:n]
    return tf.data.Dataset.from_tensor_slices(items).batch(32, drop_remainder=True)


def test_training_logs_aug_p_and_r_t_and_p_adapts_under_jit_and_steps_per_execution():
    gan = _image_gan(augment="ada,diffaugment", ada_target=0.6, ada_interval=1, ada_kimg=0.5,
                     jit_compile=True, steps_per_execution=4, cls=_FixedDraws)
    hist = gan.fit(_digits_ds(), epochs=2, verbose=0).history
    assert len(hist["aug_p"]) == 2 and len(hist["r_t"]) == 2
    assert all(-1 <= r <= 1 for r in hist["r_t"])
    # starts at 0 (adaptive default); p moves by 32/500 per step in the direction of r_t - 0.6
    assert gan.augment_probability > 0 or max(hist["r_t"]) < 0.6
    assert 0 <= gan.augment_probability <= 1
    # the same run (same draws) without XLA and with one step per call: the same p
    gan2 = _image_gan(augment="ada,diffaugment", ada_target=0.6, ada_interval=1, ada_kimg=0.5,
                      cls=_FixedDraws)
    gan2.fit(_digits_ds(), epochs=2, verbose=0)
    np.testing.assert_allclose(gan2.augment_probability, gan.augment_probability, atol=1e-5)


def test_conditional_and_acgan_train_with_augmentation():
    for kind in ("projection", "acgan"):
        gan = _image_gan(kind, augment="diffaugment", augment_p=0.5)
        hist = gan.fit(_digits_ds(labels=True), epochs=1, verbose=0).history
        assert np.isfinite(hist["d_loss"][0]) and hist["aug_p"] == [pytest.approx(0.5)]


def test_mixed_precision_training_with_augmentation():
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        gan = _image_gan(augment="ada,cutout", augment_p=0.5)
    finally:
        keras.config.set_dtype_policy(old)
    hist = gan.fit(_digits_ds(), epochs=1, verbose=0).history
    assert np.isfinite(hist["d_loss"][0]) and np.isfinite(hist["g_loss"][0])


def test_save_and_load_keep_p(tmp_path):
    gan = _image_gan(augment="ada", augment_p=0.5, ada_target=0.6, ada_interval=1,
                     ada_kimg=0.5)
    gan.fit(_digits_ds(), epochs=1, verbose=0)
    p = gan.augment_probability
    assert p != 0.5
    path = os.path.join(tmp_path, "gan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.augment_probability == pytest.approx(p)  # not reset by compile_from_config
    assert loaded.options.augment == "ada" and loaded.options.ada_target == 0.6
    weights = os.path.join(tmp_path, "gan.weights.h5")
    gan.save_weights(weights)
    fresh = _image_gan(augment="ada", augment_p=0.5, ada_target=0.6, ada_interval=1,
                       ada_kimg=0.5)
    assert fresh.augment_probability == 0.5
    fresh.load_weights(weights)
    assert fresh.augment_probability == pytest.approx(p)
    # files saved before augmentation existed (no augment_state) still load
    import h5py

    with h5py.File(weights, "a") as f:
        del f["vars/augment_state"]
    older = _image_gan(augment="ada", augment_p=0.25)
    older.load_weights(weights)
    assert older.augment_probability == 0.25


def test_bad_augmentation_options_are_clear_errors():
    with pytest.raises(ValueError, match=r"augment: unknown augmentation\(s\) \['blur'\]"):
        _image_gan(augment="ada,blur")
    with pytest.raises(ValueError, match="set augment"):
        _image_gan(ada_target=0.6)
    with pytest.raises(ValueError, match="augment_p"):
        _image_gan(augment="ada", augment_p=1.5)
    toy = tg.GANModel(builders.toy_generator(2), builders.toy_discriminator(), latent_dim=2)
    with pytest.raises(ValueError, match=r"needs images \[H, W, C\]"):
        toy.compile(augment="diffaugment")
