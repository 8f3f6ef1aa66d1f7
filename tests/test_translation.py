"""Paired image-to-image translation: builders, paired data, TranslationGAN."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_app import builders, kinds, losses
from tfgan_app.data import paired
from tfgan_app.translation import TranslationGAN, image_quality


def _nets(shape=(16, 16, 1), source_shape=None, **g):
    keras.utils.set_random_seed(0)
    gen = builders.build("generator", {"builder": "unet", "base_filters": 8, **g},
                         data_shape=shape, source_shape=source_shape)
    disc = builders.build("discriminator", {"builder": "patchgan", "base_filters": 8,
                                            "receptive_field": 16},
                          data_shape=shape, source_shape=source_shape)
    return gen, disc


def _pairs(n=64, task=None, size=16):
    targets = paired.offline_images("digits", "train", image_size=size)[:n]
    sources = paired.derive(**(task or {"task": "inpaint"}), targets=targets)
    return sources, targets


def test_unet_and_patchgan_shapes_and_errors():
    gen = builders.unet_generator((32, 32, 3), 1, base_filters=8, norm="instance")
    assert gen.output_shape == (None, 32, 32, 3) and gen.input_shape == (None, 32, 32, 1)
    out = gen(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype("float32"))
    assert float(tf.reduce_max(tf.abs(out))) <= 1.0
    for rf, patches in ((16, 16), (34, 8), (70, 4)):
        d = builders.patchgan_discriminator((32, 32, 3), (32, 32, 1), receptive_field=rf,
                                            base_filters=8)
        assert d.output_shape == (None, patches, patches, 1)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*3 = 8"):
        builders.unet_generator((20, 20, 1), depth=3)
    with pytest.raises(ValueError, match="receptive_field must be one of"):
        builders.patchgan_discriminator((32, 32, 1), receptive_field=50)
    sr = builders.srgan_generator((32, 32, 3), (8, 8, 3), num_blocks=1, filters=8)
    assert sr(np.zeros((1, 8, 8, 3), "float32")).shape == (1, 32, 32, 3)
    with pytest.raises(ValueError, match="by 2 or 4"):
        builders.srgan_generator((32, 32, 3), (16, 8, 3))
    with pytest.raises(ValueError, match="has no discriminator"):
        builders.build("discriminator", {"builder": "unet"}, data_shape=(16, 16, 1))


def test_derived_tasks():
    t = paired.offline_images("digits", "test", image_size=16)
    assert t.shape == (359, 16, 16, 1) and t.min() >= -1 and t.max() <= 1
    sr = paired.derive("superres", t, factor=4)
    assert sr.shape == (359, 4, 4, 1)
    np.testing.assert_allclose(sr.mean(), t.mean(), atol=0.05)  # antialiased: mean kept
    inp = paired.derive("inpaint", t)
    assert np.all(inp[:, 4:12, 4:12] == 0) and np.array_equal(inp[:, :4], t[:, :4])
    edges = paired.derive("edges", t)
    assert edges.shape == t.shape and edges.max() == pytest.approx(1.0)
    photos = paired.offline_images("photos", "test", image_size=16, num_patches=8)
    assert paired.derive("colorize", photos).shape == (8, 16, 16, 1)
    with pytest.raises(ValueError, match="unknown task"):
        paired.derive("blur", t)
    with pytest.raises(ValueError, match="must be in \\[-1, 1\\]"):
        paired.from_pairs(t * 3, t)
    with pytest.raises(ValueError, match="pairs must align"):
        paired.from_pairs(t[:10], t[:11])


def test_combine_adversarial_loss_is_tfgans_and_balances_gradients():
    v = tf.Variable([1.0, 2.0])

    @tf.function
    def combined(ratio):
        main = tf.reduce_sum(v ** 2)          # gradient 2v: norm 2 * sqrt(5)
        adv = 3.0 * tf.reduce_sum(v)          # gradient 3: norm 3 * sqrt(2)
        return losses.combine_adversarial_loss(main, adv, gradient_ratio=ratio, variables=[v])

    coeff = (2 * np.sqrt(5) / (3 * np.sqrt(2))) / 2.0
    assert float(combined(2.0)) == pytest.approx(5.0 + coeff * 9.0, rel=1e-5)
    assert float(losses.combine_adversarial_loss(tf.constant(5.0), tf.constant(9.0),
                                                 weight_factor=0.5)) == pytest.approx(9.5)
    with pytest.raises(RuntimeError, match="graph mode"):
        losses.combine_adversarial_loss(tf.constant(1.0), tf.constant(1.0), gradient_ratio=1.0,
                                        variables=[v])


@pytest.mark.slow
def test_translation_gan_learns_inpainting_better_than_the_masked_input(tmp_path):
    sources, targets = _pairs(None, size=16)  # the 1,438 training digits
    val_t = paired.offline_images("digits", "test", image_size=16)
    val_s = paired.derive("inpaint", val_t)
    gen, disc = _nets()
    gan = TranslationGAN(gen, disc, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5), jit_compile=False)
    ds = paired.from_pairs(sources, targets, batch_size=32)
    val = paired.from_pairs(val_s, val_t, batch_size=64, shuffle=False)
    hist = gan.fit(ds, epochs=5, validation_data=val, verbose=0).history
    for key in ("d_loss", "g_loss", "g_adversarial", "g_reconstruction", "val_psnr",
                "val_ssim", "val_l1"):
        assert key in hist and np.all(np.isfinite(hist[key])), key
    assert "psnr" not in hist  # quality is measured on held-out pairs only
    assert hist["g_reconstruction"][-1] < hist["g_reconstruction"][0]
    baseline = image_quality(val_t, val_s)  # the masked input itself
    assert hist["val_psnr"][-1] > float(tf.reduce_mean(baseline["psnr"])) + 1.0
    assert hist["val_l1"][-1] < float(tf.reduce_mean(baseline["l1"]))
    # save/load keeps the model, its options and its outputs
    path = os.path.join(tmp_path, "t.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TranslationGAN) and loaded.reconstruction_weight == 100.0
    np.testing.assert_allclose(loaded.translate(val_s[:8]), gan.translate(val_s[:8]),
                               atol=1e-5)
    with pytest.raises(TypeError, match="translate"):
        gan.generate(4)
    with pytest.raises(ValueError, match="sources must have shape"):
        gan.translate(np.zeros((2, 8, 8, 1)))


def test_reconstruction_only_trains_g_alone_and_gradient_ratio_runs():
    sources, targets = _pairs(64, size=16)
    ds = paired.from_pairs(sources, targets, batch_size=32)
    gen, disc = _nets()
    d_before = [w.copy() for w in disc.get_weights()]
    base = TranslationGAN(gen, disc, reconstruction_only=True, seed=0)
    base.compile(g_optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    hist = base.fit(ds, epochs=2, verbose=0).history
    assert set(hist) == {"g_loss", "g_reconstruction"}
    assert all(np.array_equal(a, b) for a, b in zip(d_before, disc.get_weights()))
    gen2, disc2 = _nets()
    bal = TranslationGAN(gen2, disc2, adversarial_weight=None, gradient_ratio=10.0, seed=0)
    bal.compile(loss="least_squares", d_steps=2, jit_compile=False)
    hist = bal.fit(ds, epochs=1, verbose=0).history
    assert np.isfinite(hist["g_loss"][0]) and np.isfinite(hist["g_adversarial"][0])
    with pytest.raises(ValueError, match="acgan"):
        bal.compile(loss="acgan")
    with pytest.raises(ValueError, match="\\(source, target\\) image pairs"):
        bal.fit(tf.data.Dataset.from_tensor_slices(targets).batch(8), epochs=1, verbose=0)


def test_translation_is_a_kind():
    info = paired.derived_pairs("digits", {"name": "edges"}, image_size=16, batch_size=32)[1]
    assert kinds.kind_of(info).name == "translation"
    assert kinds.kind_of({"name": "digits", "data_shape": [8, 8, 1]}).name == "images"


@pytest.mark.slow
def test_translation_preset_trains_into_a_run_directory(tmp_path):
    from tfgan_app import train
    from tfgan_app.rundir import RunDir

    settings = train.resolve_settings(
        "photo-superres-x4", overrides=["epochs=1", "dataset_options.num_patches=128",
                                        "dataset_options.image_size=32",
                                        'generator={"builder": "srgan", "num_blocks": 1, '
                                        '"filters": 8}', "discriminator.base_filters=8"])
    result = train.train(settings, str(tmp_path / "run"), verbose=0)
    run = RunDir(tmp_path / "run")
    assert run.kind.name == "translation"
    rep = run.report()
    assert rep["num_pairs"] == 256 and set(rep["model"]) == {"psnr", "ssim", "l1"}
    # the baseline is bicubic upsampling of the held-out low-resolution patches
    assert rep["baseline"]["psnr"] > 10 and 0 < rep["baseline"]["ssim"] <= 1
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()
    assert isinstance(result["gan"], TranslationGAN)
    assert isinstance(run.load_gan(), TranslationGAN)


def test_shift_moves_both_sides_of_a_pair_alike_within_the_bound():
    """``shift``: the same random translation of source and target (scaled by the size
    factor), every offset of -2..2 drawn, none beyond, borders mirrored, seeded."""
    rng = np.random.default_rng(0)
    n = 16
    sources = np.full((n, 8, 8, 1), -1.0, np.float32)
    sources[:, 3, 4] = 1.0  # one marker pixel per image, at (3, 4) of the 8x8 source
    sources += rng.uniform(0, 0.5, (n, 1, 1, 1)).astype(np.float32) * (sources < 0)
    targets = np.kron(sources, np.ones((1, 2, 2, 1), np.float32))  # x2 nearest upsampling

    def offsets(seed):
        ds = paired.from_pairs(sources, targets, batch_size=8, shift=2, seed=seed,
                               shuffle=False)
        seen = []
        for _ in range(4):  # epochs: new draws each
            for s, t in ds.as_numpy_iterator():
                np.testing.assert_array_equal(t, np.kron(s, np.ones((1, 2, 2, 1))))
                for img in s:
                    (y, x), = np.argwhere(img[..., 0] == 1.0)
                    seen.append((int(y) - 3, int(x) - 4))
                    assert np.all(img[img < 1.0] == img[0, 0]), "mirrored borders: background"
        return seen

    seen = offsets(5)
    assert paired.from_pairs(sources, targets, batch_size=8, shift=2).info["shift"] == 2
    assert {dy for dy, _ in seen} == set(range(-2, 3)) == {dx for _, dx in seen}
    assert seen == offsets(5) and seen != offsets(6)
    for bad in (-1, 2.5, True, 9):
        with pytest.raises(ValueError, match="shift must be a whole number"):
            paired.from_pairs(sources, targets, batch_size=8, shift=bad)
