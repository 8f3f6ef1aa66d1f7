"""DCGAN and conditional DCGAN builders: shapes, structure, errors, .keras round trip, XLA."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from tfgan_app.builders.conditional import (
    conditional_dcgan_discriminator,
    conditional_dcgan_generator,
)
from tfgan_app.builders.dcgan import dcgan_discriminator, dcgan_generator, num_upsamples

SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_dcgan_shapes_and_ranges(shape):
    g = dcgan_generator(16, shape)
    d = dcgan_discriminator(shape)
    z = tf.random.normal([3, 16], seed=1)
    x = g(z, training=True)
    assert tuple(x.shape) == (3, *shape) and x.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(x))) <= 1.0
    logits = d(x, training=True)
    assert tuple(logits.shape) == (3, 1) and logits.dtype == tf.float32
    assert g.name == "dcgan_generator" and d.name == "dcgan_discriminator"


def test_geometry():
    assert [num_upsamples(h, h) for h in (8, 28, 32, 64, 12)] == [2, 2, 3, 4, 2]
    assert num_upsamples(64, 32) == 3


def test_radford_structure():
    g = dcgan_generator(16, (32, 32, 3))
    d = dcgan_discriminator((32, 32, 3))
    gtypes = [type(l).__name__ for l in g.layers]
    dtypes = [type(l).__name__ for l in d.layers]
    for types in (gtypes, dtypes):
        assert not any("Pooling" in t for t in types)
    assert gtypes.count("Conv2DTranspose") == 3 and gtypes.count("BatchNormalization") == 3
    assert g.layers[-1].get_config()["activation"] == "tanh"
    assert all(l.strides == (2, 2) for l in g.layers if isinstance(l, keras.layers.Conv2DTranspose))
    convs = [l for l in d.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 3 and all(c.strides == (2, 2) for c in convs)
    slopes = {l.negative_slope for l in d.layers if isinstance(l, keras.layers.LeakyReLU)}
    assert slopes == {0.2}
    assert d.layers[-1].get_config()["activation"] == "linear"  # logits


def test_tutorial_variant_matches_tensorflow_tutorial():
    g = dcgan_generator(100, (28, 28, 1), variant="tutorial")
    d = dcgan_discriminator((28, 28, 1), variant="tutorial")
    # Parameter counts of the TensorFlow DCGAN tutorial's make_generator_model /
    # make_discriminator_model.
    assert [l.count_params() for l in g.layers if l.count_params()] == [
        1_254_400, 50_176, 819_200, 512, 204_800, 256, 1_600]
    assert [l.count_params() for l in d.layers if l.count_params()] == [1_664, 204_928, 6_273]
    drops = [l.rate for l in d.layers if isinstance(l, keras.layers.Dropout)]
    assert drops == [0.3, 0.3]
    assert tuple(g(tf.zeros([2, 100])).shape) == (2, 28, 28, 1)


@pytest.mark.parametrize("shape,match", [
    ((30, 30, 1), "divisible by 4"),
    ((28, 26, 1), "divisible by 4"),
    ((28, 28, 2), "1 or 3 channels"),
    ((28, 28), "three positive ints"),
    ((0, 28, 1), "three positive ints"),
])
def test_unsupported_shapes(shape, match):
    for build in (lambda: dcgan_generator(8, shape), lambda: dcgan_discriminator(shape),
                  lambda: conditional_dcgan_generator(8, shape, 10),
                  lambda: conditional_dcgan_discriminator(shape, 10)):
        with pytest.raises(ValueError, match=match):
            build()


def test_bad_options():
    with pytest.raises(ValueError, match="norm"):
        dcgan_discriminator((8, 8, 1), norm="instance")
    with pytest.raises(ValueError, match="variant"):
        dcgan_generator(8, (8, 8, 1), variant="big")
    with pytest.raises(ValueError, match="latent_dim"):
        dcgan_generator(0, (8, 8, 1))
    with pytest.raises(ValueError, match="conditioning"):
        conditional_dcgan_discriminator((8, 8, 1), 10, conditioning="film")
    with pytest.raises(ValueError, match="num_upsamples"):
        dcgan_generator(8, (28, 28, 1), num_upsamples=3)


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_conditional_models_use_the_label(conditioning):
    shape, k = (32, 32, 3), 10
    g = conditional_dcgan_generator(16, shape, k)
    d = conditional_dcgan_discriminator(shape, k, conditioning=conditioning)
    assert [i.dtype for i in g.inputs][1] == "int32" and len(d.inputs) == 2
    z = tf.random.normal([4, 16], seed=2)
    y1 = tf.constant([0, 1, 2, 3], tf.int32)
    y2 = tf.constant([5, 6, 7, 8], tf.int32)
    x1, x2 = g([z, y1], training=False), g([z, y2], training=False)
    assert tuple(x1.shape) == (4, *shape)
    assert float(tf.reduce_max(tf.abs(x1 - x2))) > 1e-4  # the label changes the image
    l1, l2 = d([x1, y1], training=False), d([x1, y2], training=False)
    assert tuple(l1.shape) == (4, 1) and l1.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(l1 - l2))) > 1e-6  # ... and the logit


def test_acgan_discriminator():
    d = conditional_dcgan_discriminator((28, 28, 1), 10, acgan=True)
    assert len(d.inputs) == 1 and d.name == "acgan_discriminator"
    logits, class_logits = d(tf.zeros([5, 28, 28, 1]), training=False)
    assert tuple(logits.shape) == (5, 1) and tuple(class_logits.shape) == (5, 10)
    assert class_logits.dtype == tf.float32


@pytest.mark.parametrize("which", ["cgan", "acgan", "spectral"])
def test_keras_round_trip(tmp_path, which):
    lab = tf.constant([1, 4], tf.int32)
    x = tf.random.normal([2, 8, 8, 1], seed=3)
    if which == "cgan":
        models = [(conditional_dcgan_generator(4, (8, 8, 1), 5), [tf.random.normal([2, 4]), lab]),
                  (conditional_dcgan_discriminator((8, 8, 1), 5), [x, lab])]
    elif which == "acgan":
        models = [(conditional_dcgan_discriminator((8, 8, 1), 5, acgan=True), x)]
    else:
        models = [(dcgan_discriminator((8, 8, 1), norm="spectral"), x),
                  (dcgan_generator(4, (8, 8, 1), variant="tutorial"), tf.random.normal([2, 4]))]
    for i, (m, inp) in enumerate(models):
        # Move batch-norm statistics away from their initial values first.
        m(inp, training=True)
        path = str(tmp_path / f"m{i}.keras")
        m.save(path)
        m2 = keras.saving.load_model(path)  # safe_mode: built-in layers only
        assert m2.name == m.name
        for a, b in zip(keras.tree.flatten(m(inp, training=False)),
                        keras.tree.flatten(m2(inp, training=False))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_jit_compiled_training_step():
    g = conditional_dcgan_generator(8, (8, 8, 1), 3)
    d = conditional_dcgan_discriminator((8, 8, 1), 3, norm="layer")
    opt = keras.optimizers.Adam(1e-3)
    opt.build(g.trainable_variables + d.trainable_variables)
    lab = tf.constant([0, 1, 2, 0], tf.int32)

    @tf.function(jit_compile=True)
    def step(z):
        with tf.GradientTape() as tape:
            logits = d([g([z, lab], training=True), lab], training=True)
            loss = tf.reduce_mean(tf.nn.softplus(-logits))
        variables = g.trainable_variables + d.trainable_variables
        opt.apply(tape.gradient(loss, variables), variables)
        return loss

    z = tf.random.normal([4, 8], seed=4)
    before = [v.numpy().copy() for v in g.trainable_variables]
    assert np.isfinite(float(step(z)))
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, g.trainable_variables))


def test_outputs_float32_under_mixed_precision():
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        g = dcgan_generator(8, (8, 8, 1))
        d = conditional_dcgan_discriminator((8, 8, 1), 3)
        a = conditional_dcgan_discriminator((8, 8, 1), 3, acgan=True)
        x = g(tf.zeros([2, 8]))
        assert x.dtype == tf.float32
        assert d([x, tf.constant([0, 1])]).dtype == tf.float32
        assert all(o.dtype == tf.float32 for o in a(x))
    finally:
        keras.config.set_dtype_policy(old)
