"""InfoGAN's categorical code (tfgan_app.builders.infogan, GANModel's mutual-information term)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan_app as tg
from tfgan_app import builders, sampling, train


def _pair(k=4, latent=6, img=False):
    if img:
        gen = builders.dcgan_generator(latent, (8, 8, 1), base_filters=8)
        disc = builders.dcgan_discriminator((8, 8, 1), base_filters=8)
    else:
        gen = keras.Sequential([keras.Input((latent,)), keras.layers.Dense(8, activation="tanh"),
                                keras.layers.Dense(2)])
        inp = keras.Input((2,))
        h = keras.layers.Dense(8, activation="tanh")(inp)
        disc = keras.Model(inp, keras.layers.Dense(1)(h))
    return builders.with_categorical_code(gen, k), builders.with_code_head(disc, k)


def test_the_code_is_uniform_and_replaces_the_first_entries_by_its_one_hot():
    z = sampling.latent_vectors(40_000, 12, seed=3)
    codes = sampling.categorical_code(z, 10).numpy()
    shares = np.bincount(codes, minlength=10) / len(codes)
    # each share within 5 standard errors of 1/10 (sd = sqrt(0.1 * 0.9 / 40000) = 0.0015)
    assert np.abs(shares - 0.1).max() < 0.0075, shares
    out = builders.CategoricalCode(10)(z[:5]).numpy()
    np.testing.assert_array_equal(out[:, :10], np.eye(10)[codes[:5]])
    np.testing.assert_array_equal(out[:, 10:], z[:5, 10:].numpy())
    chosen = sampling.with_code(z[:4], [7, 0, 3, 9], 10)
    np.testing.assert_array_equal(sampling.categorical_code(chosen, 10).numpy(), [7, 0, 3, 9])
    np.testing.assert_array_equal(chosen[:, 10:].numpy(), z[:4, 10:].numpy())
    with pytest.raises(ValueError, match=r"codes in \[0, 10\)"):
        sampling.with_code(z[:2], [1, 10], 10)


def test_balanced_codes_stratify_the_code_and_keep_each_vector_gaussian():
    z = sampling.latent_vectors(20_000, 12, seed=4)
    b = sampling.balanced_codes(z, 10)
    codes = sampling.categorical_code(b, 10).numpy()
    first = int(sampling.categorical_code(z[:1], 10)[0])
    np.testing.assert_array_equal(codes, (first + np.arange(20_000)) % 10)
    # each row is a permutation of its own entries (two code entries swapped at most), the
    # continuous entries untouched, and the rows keep z's N(0, 1) entries
    np.testing.assert_array_equal(np.sort(b.numpy(), 1), np.sort(z.numpy(), 1))
    np.testing.assert_array_equal(b[:, 10:].numpy(), z[:, 10:].numpy())
    changed = (b.numpy() != z.numpy()).sum(1)
    assert set(changed) <= {0, 2} and (changed == 0).mean() == pytest.approx(0.1, abs=0.01)
    head = b[:, :10].numpy()
    assert abs(head.mean()) < 0.02 and abs(head.std() - 1) < 0.02
    # n = 1: the code is the vector's own, so different seeds draw different codes
    ones = [int(sampling.categorical_code(sampling.balanced_codes(
        sampling.latent_vectors(1, 12, s), 10), 10)[0]) for s in range(60)]
    assert len(set(ones)) == 10
    # under tf.function (the exported signature's graph), including an empty batch
    graph = tf.function(lambda v: sampling.balanced_codes(v, 10))
    np.testing.assert_array_equal(graph(z[:37]).numpy(), b[:37].numpy())
    assert graph(z[:0]).shape == (0, 12)


def test_generate_and_the_export_balance_the_code_like_labels(tmp_path):
    """``generate`` draws every code ``n / K`` times (the policy of a conditional generator's
    default labels); the images are the generator's on the balanced vectors."""
    g, _ = _pair(k=4, img=True)
    gan = tg.GANModel(g, builders.with_code_head(builders.dcgan_discriminator(
        (8, 8, 1), base_filters=8), 4), latent_dim=6, seed=0)
    x = gan.generate(40, seed=3)
    z = sampling.balanced_codes(sampling.latent_vectors(40, 6, 3), 4)
    np.testing.assert_allclose(x, g(z, training=False), atol=1e-6)
    # vs the i.i.d. codes of the same latent vectors: not all equal
    assert not np.allclose(x, g(sampling.latent_vectors(40, 6, 3), training=False), atol=1e-4)
    # the exported `sample` signature draws the same balanced codes (TF Serving = generate)
    from tfgan_app import export

    exp = export.load_exported(export.export_generator(gan, str(tmp_path)))
    out = exp.signatures["sample"](num_samples=tf.constant(40), seed=tf.constant(3, tf.int64))
    expected = np.round(np.clip((x + 1.0) * 127.5, 0, 255))
    assert np.abs(out["images"].numpy().astype(int) - expected).max() <= 1


def test_the_generator_reads_its_code_and_the_discriminator_predicts_it():
    g, d = _pair(img=True)
    assert builders.code_size(g) == 4 and len(g.inputs) == 1
    z = sampling.latent_vectors(6, 6, seed=0)
    same_code = sampling.with_code(z, [2] * 6, 4)
    # only the argmax of z[:, :4] reaches the network: moving those entries without changing
    # it leaves the image unchanged; changing it changes the image
    moved = tf.concat([same_code[:, :4] * 0.5, same_code[:, 4:]], -1)
    np.testing.assert_allclose(g(same_code), g(moved), atol=1e-6)
    assert np.abs(g(same_code) - g(sampling.with_code(z, [3] * 6, 4))).max() > 1e-4
    logits, code_logits = d(g(z))
    assert logits.shape == (6, 1) and code_logits.shape == (6, 4)


def test_invalid_combinations_are_clear_errors():
    gen = builders.dcgan_generator(4, (8, 8, 1), base_filters=8)
    with pytest.raises(ValueError, match="latent_dim > 4"):
        builders.with_categorical_code(gen, 4)
    with pytest.raises(ValueError, match="integer >= 2"):
        builders.with_categorical_code(gen, 1)
    with pytest.raises(ValueError, match="unconditional"):
        builders.build("generator", {"builder": "dcgan"}, data_shape=(8, 8, 1), latent_dim=12,
                       num_classes=10, categorical_code=4)
    with pytest.raises(ValueError, match="PacGAN"):
        builders.build("discriminator", {"builder": "dcgan", "pack": 2}, data_shape=(8, 8, 1),
                       categorical_code=4)
    g, d = _pair()
    plain_d = builders.dcgan_discriminator((8, 8, 1), base_filters=8)
    with pytest.raises(ValueError, match=r"code_logits \[B, 4\]"):
        tg.GANModel(g, plain_d, latent_dim=6)
    with pytest.raises(ValueError, match="info_weight .* categorical code"):
        tg.GANModel(builders.toy_generator(2), builders.toy_discriminator(),
                    latent_dim=2).compile(info_weight=1.0)
    with pytest.raises(ValueError, match="categorical_code"):
        train.resolve_settings("digits-dcgan", categorical_code=-1)


def test_the_doctors_collapse_remedy_does_not_pack_a_discriminator_with_a_code_head():
    from tfgan_app.doctor import rules

    with_code = train.resolve_settings("digits-dcgan", categorical_code=10, latent_dim=42)
    fix = rules.remedy("mode_collapse", rules.context_from_settings(with_code))
    assert fix and "discriminator.pack" not in fix
    plain = train.resolve_settings("digits-dcgan", categorical_code=0, latent_dim=32)
    assert rules.remedy("mode_collapse", rules.context_from_settings(plain))[
        "discriminator.pack"] == 2


def test_the_mutual_information_term_trains_both_networks():
    """The code's cross-entropy is in both losses (weighted by info_weight) and its gradient
    reaches G's weights through the generated images and D's code head."""
    g, d = _pair()
    gan = tg.GANModel(g, d, latent_dim=6, seed=0)
    real = tf.random.normal([32, 2])
    losses = {}
    for weight in (0.0, 1.0, 3.0):
        gan.compile(info_weight=weight)
        gan.seed_generator = keras.random.SeedGenerator(1)
        with tf.GradientTape(persistent=True) as tape:
            d_loss = gan.discriminator_loss(real, None)[0]
            gan.seed_generator = keras.random.SeedGenerator(1)
            g_loss = gan.generator_loss(real, None)
        head = [v for v in d.trainable_variables if "code_logits" in v.path]
        assert head and all(x is not None for x in tape.gradient(d_loss, head))
        g_grads = tape.gradient(g_loss, g.trainable_variables)
        losses[weight] = (float(d_loss), float(g_loss), g_grads)
    ce = losses[1.0][0] - losses[0.0][0]
    assert ce > 0.5  # about log 4 = 1.39 for an untrained head
    assert losses[3.0][0] - losses[0.0][0] == pytest.approx(3 * ce, rel=1e-4)
    assert losses[3.0][1] - losses[0.0][1] == pytest.approx(3 * ce, rel=1e-4)
    diff = [np.abs(a - b).max() for a, b in zip(losses[1.0][2], losses[0.0][2])]
    assert max(diff) > 1e-4  # the term moves G's gradient


def test_save_and_load_keep_the_code_and_its_weight(tmp_path):
    g, d = _pair(img=True)
    gan = tg.GANModel(g, d, latent_dim=6, seed=0)
    gan.compile(info_weight=0.5)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    gan.fit(tg.data.from_arrays(x, batch_size=32, seed=0), epochs=1, verbose=0)
    path = os.path.join(tmp_path, "gan.keras")
    gan.save(path)
    back = keras.models.load_model(path)
    assert back.code_size == 4 and back.options.info_weight == 0.5
    z = sampling.latent_vectors(5, 6, seed=2)
    np.testing.assert_allclose(back.generator(z), gan.generator(z), atol=1e-6)


@pytest.mark.slow
def test_digits_codes_become_digit_classes(tmp_path):
    """The default preset's recipe (a 20-value code), shortened: the code's cross-entropy falls
    far below log 20 (D's head reads the code off the images) and each code draws mostly one
    digit class, by the offline classifier (no labels were used in training)."""
    from tfgan_app.evaluation import classify, digits_classifier

    settings = train.resolve_settings("digits-dcgan", epochs=60, seed=0, doctor="off",
                                      plot_every=1000, backup_every=1000)
    k = settings["categorical_code"]
    assert k == 20
    result = train.train(settings, str(tmp_path / "run"), verbose=0)
    info = result["history"]["info_loss"]
    assert info[0] > 1.0 and info[-1] < 0.25 * np.log(k), info[::10]
    gan = result["gan"]
    z = sampling.latent_vectors(4000, gan.latent_dim, seed=5)
    codes = sampling.categorical_code(z, k).numpy()
    pred, _ = classify(gan.sampling_generator.predict(z, verbose=0), digits_classifier())

    def purity(groups):  # the share of samples in their group's commonest class
        return sum(np.bincount(pred[groups == c], minlength=10).max()
                   for c in range(k)) / len(groups)

    # control: the same samples in k random groups (about 0.15)
    chance = purity(np.random.default_rng(0).permutation(codes))
    assert purity(codes) > max(0.3, 2 * chance), (purity(codes), chance)
