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
    # textured: bicubic x4 is far from perfect on them (random crops gave about 36-40 dB)
    sources = paired.derive("superres", test, factor=4)
    base = image_quality(test, paired.naive_translation(sources, test.shape[1:]))["psnr"]
    assert float(np.mean(base)) < 29.0


def test_photos_are_the_seven_sample_photos():
    photos = paired.load_photos()
    assert len(photos) == len(paired.PHOTOS) == 7
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[-1] == 3
               and min(p.shape[:2]) >= 300 for p in photos)
    # seven different photos: no two share a size and a mean
    assert len({(p.shape, round(float(p.mean()), 3)) for p in photos}) == 7


def test_flips_and_quarter_turns_keep_the_pairs_aligned():
    targets = paired.offline_images("photos", "train", image_size=16, num_patches=32)
    sources = paired.derive("superres", targets, factor=4)
    ds = paired.from_pairs(sources, targets, batch_size=32, flip=True, rotate=True, seed=3)
    assert ds.info["rotate"] and ds.info["flip"]
    src, tgt = (np.asarray(a) for a in next(iter(ds)))
    assert src.shape == (32, 4, 4, 3) and tgt.shape == (32, 16, 16, 3)
    # every source is still the downsampling of its own (turned) target
    np.testing.assert_allclose(paired.derive("superres", tgt, factor=4), src, atol=1e-5)
    # and the symmetries were applied: some targets are no longer any original patch
    originals = {t.tobytes() for t in targets}
    assert sum(t.tobytes() not in originals for t in tgt) >= 16
    with pytest.raises(ValueError, match="rotate .* needs square images"):
        paired.from_pairs(sources[:, :, :2], targets[:, :, :8], batch_size=8, rotate=True)


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
    bicubic = np.clip(tf.image.resize(src, [32, 32], method="bicubic").numpy(), -1, 1)
    # the residual's 3x3 kernel starts at zero: the untrained network is bicubic upsampling
    np.testing.assert_allclose(g(src).numpy(), bicubic, atol=1e-5)
    conv = g.get_layer("out")
    assert conv.kernel.shape == (3, 3, 8, 3)
    conv.set_weights([np.full_like(w, 0.01) for w in conv.get_weights()])
    out = g(src).numpy()
    assert out.shape == (4, 32, 32, 3) and out.min() >= -1 and out.max() <= 1
    assert np.abs(out - bicubic).max() > 1e-3  # the residual is added to bicubic
    path = str(tmp_path / "g.keras")
    g.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(src).numpy(), out, atol=1e-5)
    # EDSR's trunk: no batch normalisation
    plain = builders.srgan_generator((32, 32, 3), (8, 8, 3), num_blocks=1, filters=8,
                                     input_skip=True, norm="none")
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)
    with pytest.raises(ValueError, match="norm must be 'batch' or 'none'"):
        builders.srgan_generator((32, 32, 3), (8, 8, 3), norm="instance")
    with pytest.raises(ValueError, match="source's channels \\(1\\) must equal"):
        builders.srgan_generator((32, 32, 3), (8, 8, 1), input_skip=True)


def test_superres_preset_builds_the_residual_generator():
    from tfgan_app import train

    settings = train.resolve_settings("photo-superres-x4",
                                      overrides=["dataset_options.num_patches=64"])
    ds, info = train.make_dataset(settings)
    assert info["source_shape"] == [16, 16, 3] and info["flip"] and info["rotate"]
    gan = train.build_gan(settings, info)
    assert gan.generator.get_layer("input_upsample") is not None
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in gan.generator.layers)
    assert gan.reconstruction == "l1" and gan.reconstruction_weight == 100.0
