"""Super-resolution's pieces: textured offline photo patches and the SRGAN generator's
residual over bicubic upsampling (``input_skip``)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_app import builders
from tfgan_app.data import paired
from tfgan_app.translation import image_quality


def test_photo_patches_are_textured_disjoint_and_prefix_stable():
    train = paired.offline_images("photos", "train", num_patches=64)
    test = paired.offline_images("photos", "test", num_patches=64)
    assert train.shape == test.shape == (64, 32, 32, 3)
    assert train.min() >= -1 and train.max() <= 1
    for x in (train, test):
        assert paired.photo_texture(x).min() >= paired.PHOTO_MIN_TEXTURE
    # the first n patches do not depend on how many are asked for; seeds differ
    np.testing.assert_array_equal(paired.offline_images("photos", "test", num_patches=10),
                                  test[:10])
    assert not np.array_equal(paired.offline_images("photos", "test", num_patches=10, seed=1),
                              test[:10])
    # held-out patches never overlap the training columns: none equals any training crop
    flat = {p.tobytes() for p in train}
    assert not any(p.tobytes() in flat for p in test)
    # textured: bicubic x4 is far from perfect on them (random crops gave about 40 dB)
    sources = paired.derive("superres", test, factor=4)
    base = image_quality(test, paired.naive_translation(sources, test.shape[1:]))["psnr"]
    assert float(np.mean(base)) < 26.0


def test_photo_texture_measures_neighbour_differences():
    flat = np.zeros((2, 8, 8, 3), np.float32)
    stripes = np.tile(np.array([-1.0, 1.0], np.float32), 4)[None, None, :, None]
    stripes = np.broadcast_to(stripes, (1, 8, 8, 3))
    np.testing.assert_allclose(paired.photo_texture(flat), 0.0)
    np.testing.assert_allclose(paired.photo_texture(stripes), 2.0)  # |diff| = 2 across columns


def test_srgan_input_skip_adds_a_residual_to_bicubic(tmp_path):
    keras.utils.set_random_seed(0)
    g = builders.srgan_generator((32, 32, 3), (8, 8, 3), num_blocks=1, filters=8,
                                 input_skip=True)
    src = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    out = g(src).numpy()
    assert out.shape == (4, 32, 32, 3) and out.min() >= -1 and out.max() <= 1
    bicubic = np.clip(tf.image.resize(src, [32, 32], method="bicubic").numpy(), -1, 1)
    assert np.abs(out - bicubic).max() > 1e-3  # the residual is there...
    conv = g.get_layer("out")
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    np.testing.assert_allclose(g(src).numpy(), bicubic, atol=1e-5)  # ...and only it
    path = str(tmp_path / "g.keras")
    g.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(src).numpy(), bicubic, atol=1e-5)
    with pytest.raises(ValueError, match="source's channels \\(1\\) must equal"):
        builders.srgan_generator((32, 32, 3), (8, 8, 1), input_skip=True)


def test_superres_preset_builds_the_residual_generator():
    from tfgan_app import train

    settings = train.resolve_settings("photo-superres-x4",
                                      overrides=["dataset_options.num_patches=64"])
    ds, info = train.make_dataset(settings)
    gan = train.build_gan(settings, info)
    assert gan.generator.get_layer("input_upsample") is not None
    assert gan.reconstruction == "l2"
