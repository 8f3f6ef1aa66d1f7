"""Image GANs end to end: presets, callbacks (grids, curves, TensorBoard, interpolation), CLI."""

import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import tfgan_app as tg
from tfgan_app import callbacks as cb
from tfgan_app import presets, train


def _cli(*args, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "tfgan_app.cli", *args], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


def test_every_required_preset_exists_and_builds():
    for name in ("d2l-gaussian", "digits-dcgan", "digits-cgan", "mnist-dcgan", "mnist-wgan-gp",
                 "cifar10-dcgan", "ring", "grid"):
        s = presets.get(name)
        assert s["description"]
    assert presets.DEFAULT_PRESET == "digits-dcgan"
    # the image presets' networks build for their data shapes
    for name, shape, k in (("mnist-dcgan", (28, 28, 1), None), ("cifar10-dcgan", (32, 32, 3), None),
                           ("mnist-wgan-gp", (28, 28, 1), None), ("digits-cgan", (8, 8, 1), 10)):
        s = presets.get(name)
        gan = train.build_gan(s, {"data_shape": list(shape), "num_classes": k})
        assert gan.generator.output_shape[1:] == shape
        assert gan.generate(2, seed=0).shape == (2, *shape)


def test_image_grid_layout_and_png(tmp_path):
    imgs = np.linspace(-1, 1, 6 * 8 * 8).reshape(6, 8, 8, 1).astype(np.float32)
    grid = cb.image_grid(imgs, rows=2)
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 1) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[1:9, 1:9], cb.to_uint8(imgs[0]))
    path = tmp_path / "g.png"
    cb.save_png(grid, str(path), scale=2)
    assert Image.open(path).size == (2 * grid.shape[1], 2 * grid.shape[0])


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    """A 2-epoch digits-cgan run through the Python API (shared by the tests below)."""
    out = tmp_path_factory.mktemp("cgan")
    s = train.resolve_settings("digits-cgan", epochs=2, overrides=["plot_every=1", "plot_seconds=0"])
    result = train.train(s, str(out), verbose=0)
    return out, result


def test_conditional_run_writes_grids_with_one_row_per_class(cgan_run):
    out, result = cgan_run
    grids = sorted(glob.glob(str(out / "samples" / "epoch_*.png")))
    assert [os.path.basename(p) for p in grids] == ["epoch_0001.png", "epoch_0002.png"]
    img = np.asarray(Image.open(grids[-1]))
    scale = 4
    assert img.shape[0] == scale * (10 * 9 + 1)  # 10 rows (classes) of 8-pixel digits
    assert img.shape[1] == scale * (10 * 9 + 1)  # 10 columns (latent vectors)
    assert (out / "samples" / "interpolation.png").exists()
    assert (out / "plots" / "losses.png").exists()
    hist = json.loads((out / "history.json").read_text())
    assert hist["epoch"] == [0, 1]
    gan = result["gan"]
    assert gan.generate(10, labels=list(range(10)), seed=0).shape == (10, 8, 8, 1)


def test_tensorboard_gets_scalars_and_sample_images(cgan_run):
    import tensorflow as tf

    out, _ = cgan_run
    tags = set()
    for f in glob.glob(str(out / "logs" / "**" / "events.out.tfevents.*"), recursive=True):
        for e in tf.compat.v1.train.summary_iterator(f):
            for v in e.summary.value:
                tags.add(v.tag)
    assert "samples" in tags
    assert any("d_loss" in t for t in tags) and any("g_loss" in t for t in tags)


def test_interpolation_strip_moves_between_endpoints(cgan_run):
    gan = cgan_run[1]["gan"]
    strip = cb.interpolation_strip(gan, 0, 1, steps=5, label=3)
    z0 = tg.latent_vectors(1, gan.latent_dim, 0)
    np.testing.assert_allclose(strip[0], gan.sampling_generator([z0.numpy(), np.array([3])], training=False)[0],
                               atol=1e-5)
    assert strip.shape == (5, 8, 8, 1)
    assert not np.allclose(strip[0], strip[-1])


@pytest.mark.slow
def test_cli_image_workflow_train_sample_export_evaluate(tmp_path):
    run = tmp_path / "run"
    out = _cli("train", "--preset", "digits-dcgan", "--epochs", "3", "--out", str(run),
               "--quiet")
    assert "run directory" in out
    for name in ("config.json", "history.json", "generator.keras", "ema_generator.keras",
                 "gan.keras", "plots/losses.png", "samples/epoch_0003.png",
                 "samples/interpolation.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["data"]["image_shape"] == [8, 8, 1]

    _cli("sample", str(run), "--out", str(tmp_path / "s.png"), "-n", "16")
    assert Image.open(tmp_path / "s.png").size[0] > 0

    export_out = _cli("export", str(run), "--out", str(tmp_path / "models" / "digits"))
    assert "exported saved_model" in export_out
    assert (tmp_path / "models" / "digits" / "1" / "saved_model.pb").exists()
    _cli("sample", "--saved-model", str(tmp_path / "models" / "digits" / "1"), "--out",
         str(tmp_path / "e.png"))
    assert (tmp_path / "e.png").exists()

    table = _cli("evaluate", str(run), "--num-samples", "500")
    for metric in ("fid", "kid", "is", "precision", "recall", "class_coverage"):
        assert metric in table.lower(), table
    result = json.loads((run / "eval.json").read_text())
    # the real-vs-real floor is below the (barely trained) model on FID
    assert result["floor"]["fid"] < result["metrics"]["fid"]


def test_short_training_improves_digit_quality():
    """A measured statistic of image training: 40 epochs of digits-dcgan make the offline
    classifier far more confident about generated digits than at initialisation."""
    from tfgan_app.evaluation import classify, digits_classifier

    clf = digits_classifier()
    s = train.resolve_settings("digits-dcgan", epochs=40)
    keras.utils.set_random_seed(0)
    ds, info = train.make_dataset(s)
    gan = train.build_gan(s, info)
    # the raw generator: after 880 steps an EMA with decay 0.999 still remembers the init
    _, conf0 = classify(gan.generate(500, seed=0, use_ema=False), clf)
    gan.fit(ds, epochs=40, verbose=0, shuffle=False)
    labels, conf = classify(gan.generate(500, seed=0, use_ema=False), clf)
    print("confident (>0.9) fraction before/after:", (conf0 > 0.9).mean(), (conf > 0.9).mean())
    assert (conf > 0.9).mean() > (conf0 > 0.9).mean() + 0.3
    assert len(np.unique(labels)) >= 8
