"""Tests for tfgan_app.export (SavedModel/TFLite export) and tfgan_app.serving (clients).

Generators here are tiny stand-ins built in the test (Dense + BatchNorm + Conv2DTranspose
+ tanh), wrapped in a duck-typed GAN (.generator, .latent_dim, .num_classes,
.ema_generator) like tfgan_app.GANModel.
"""

import base64
import hashlib
import http.server
import io
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import types

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from tfgan_app import export as ex  # noqa: E402
from tfgan_app.export import writer  # noqa: E402
from tfgan_app import serving  # noqa: E402

LATENT = 8
CLASSES = 3


# --------------------------------------------------------------------------------------
# Stand-in generators
# --------------------------------------------------------------------------------------


def _randomize_batchnorm(model, seed):
    """Give BatchNorm non-trivial moving statistics so training=True != training=False."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            mean, var = layer.moving_mean, layer.moving_variance
            mean.assign(rng.normal(0.0, 0.5, mean.shape).astype("float32"))
            var.assign(rng.uniform(0.5, 2.0, var.shape).astype("float32"))


def conv_generator(seed=0, channels=1, latent_dim=LATENT):
    keras.utils.set_random_seed(seed)
    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(4 * 4 * 8)(z)
    x = keras.layers.Reshape((4, 4, 8))(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2DTranspose(channels, 3, strides=2, padding="same", activation="tanh")(x)
    g = keras.Model(z, x, name="g")
    _randomize_batchnorm(g, seed)
    return g


def cond_generator(seed=0):
    keras.utils.set_random_seed(seed)
    z = keras.Input((LATENT,), name="z")
    y = keras.Input((), dtype="int32", name="labels")
    e = keras.layers.Flatten()(keras.layers.Embedding(CLASSES, 8)(y))
    x = keras.layers.Concatenate()([z, e])
    x = keras.layers.Dense(4 * 4 * 8)(x)
    x = keras.layers.Reshape((4, 4, 8))(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="tanh")(x)
    g = keras.Model([z, y], x, name="cond_g")
    _randomize_batchnorm(g, seed)
    return g


def toy_generator(seed=0):
    keras.utils.set_random_seed(seed)
    z = keras.Input((LATENT,))
    x = keras.layers.Dense(16, activation="relu")(z)
    return keras.Model(z, keras.layers.Dense(2)(x), name="toy_g")


def make_gan(generator, num_classes=None, ema=None):
    return types.SimpleNamespace(generator=generator, latent_dim=LATENT, num_classes=num_classes, ema_generator=ema)


def stateless_z(n, seed):
    return tf.random.stateless_normal([n, LATENT], seed=tf.constant([seed, 0], tf.int64)).numpy()


def to_uint8(x):
    return np.round(np.clip((np.asarray(x) + 1.0) * 127.5, 0, 255)).astype(np.uint8)


def tree_bytes(root):
    """relative path -> sha256 of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


# --------------------------------------------------------------------------------------
# Shared exports (module scope: each export costs ~1 s)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uncond(tmp_path_factory):
    gan = make_gan(conv_generator(seed=1))
    base = tmp_path_factory.mktemp("uncond")
    path = ex.export_generator(gan, base)
    return types.SimpleNamespace(gan=gan, base=str(base), path=path, exp=ex.load_exported(path))


@pytest.fixture(scope="module")
def cond(tmp_path_factory):
    gan = make_gan(cond_generator(seed=2), num_classes=CLASSES)
    base = tmp_path_factory.mktemp("cond")
    path = ex.export_generator(gan, base)
    return types.SimpleNamespace(gan=gan, base=str(base), path=path, exp=ex.load_exported(path))


# --------------------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------------------


def test_layout_and_metadata(uncond):
    assert os.path.basename(uncond.path) == "1"
    assert sorted(os.listdir(uncond.base)) == ["1"]
    assert os.path.isfile(os.path.join(uncond.path, "saved_model.pb"))
    meta = json.load(open(os.path.join(uncond.path, "assets.extra", "tfgan_app_export.json")))
    assert meta["latent_dim"] == LATENT and meta["num_classes"] is None
    assert meta["output_shape"] == [8, 8, 1] and meta["png"] is True
    assert set(uncond.exp.signatures) == {"serving_default", "sample", "interpolate"}


def test_serving_default_equals_generator_in_inference_mode(uncond):
    g = uncond.gan.generator
    z = np.random.default_rng(0).standard_normal((5, LATENT)).astype(np.float32)
    out = uncond.exp.signatures["serving_default"](z=tf.constant(z))
    assert set(out) == {"images"}
    images = out["images"].numpy()
    ref = g(z, training=False).numpy()
    assert images.dtype == np.float32 and images.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(images, ref, atol=1e-5, rtol=0)
    assert images.min() >= -1.0 and images.max() <= 1.0
    # BatchNorm's moving statistics matter here, so training mode would be caught.
    # (A training=True call updates them: restore the weights afterwards.)
    weights = g.get_weights()
    assert np.abs(g(z, training=True).numpy() - ref).max() > 1e-2
    g.set_weights(weights)
    np.testing.assert_allclose(uncond.exp.generate(z), ref, atol=1e-5, rtol=0)


def test_sample_is_deterministic_and_png_decodes(uncond):
    fn = uncond.exp.signatures["sample"]

    def run(n, seed):
        return {k: v.numpy() for k, v in fn(num_samples=tf.constant(n), seed=tf.constant(seed, tf.int64)).items()}

    a, b, c = run(6, 123), run(6, 123), run(6, 124)
    assert set(a) == {"images", "images_png_bytes"}
    assert a["images"].dtype == np.uint8 and a["images"].shape == (6, 8, 8, 1)
    assert a["images_png_bytes"].shape == (6,)
    np.testing.assert_array_equal(a["images"], b["images"])
    assert list(a["images_png_bytes"]) == list(b["images_png_bytes"])  # identical bytes
    assert not np.array_equal(a["images"], c["images"])
    assert a["images_png_bytes"][0] != c["images_png_bytes"][0]
    # PNG bytes decode to the uint8 images, and the images are the documented function
    # of the seed: G(stateless_normal([n, L], seed=[seed, 0])) mapped [-1, 1] -> [0, 255].
    np.testing.assert_array_equal(serving.decode_png_batch(a["images_png_bytes"]), a["images"])
    for png, img in zip(a["images_png_bytes"], a["images"]):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)))[..., None], img)
    expected = to_uint8(uncond.gan.generator(stateless_z(6, 123), training=False))
    assert np.abs(expected.astype(int) - a["images"].astype(int)).max() <= 1
    # Images in a batch are distinct samples, not one sample repeated.
    assert not np.array_equal(a["images"][0], a["images"][1])


def test_sample_rejects_bad_counts(uncond):
    fn = uncond.exp.signatures["sample"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be >= 1"):
        fn(num_samples=tf.constant(0), seed=tf.constant(0, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be <= 1024"):
        fn(num_samples=tf.constant(5000), seed=tf.constant(0, tf.int64))
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        uncond.exp.sample(0)


def test_interpolate_runs_between_the_seeds_samples(uncond):
    path = uncond.exp.interpolate(11, 22, steps=7)
    assert path["images"].shape == (7, 8, 8, 1) and path["images_png_bytes"].shape == (7,)
    first, last = uncond.exp.sample(1, 11)["images"][0], uncond.exp.sample(1, 22)["images"][0]
    assert np.abs(path["images"][0].astype(int) - first.astype(int)).max() <= 1
    assert np.abs(path["images"][-1].astype(int) - last.astype(int)).max() <= 1
    assert not np.array_equal(path["images"][3], path["images"][0])


def test_ema_generator_is_the_one_exported(tmp_path):
    g, ema = conv_generator(seed=3), conv_generator(seed=4)
    path = ex.export_generator(make_gan(g, ema=ema), tmp_path)
    z = np.random.default_rng(1).standard_normal((3, LATENT)).astype(np.float32)
    exp = ex.load_exported(path)
    np.testing.assert_allclose(exp.generate(z), ema(z, training=False).numpy(), atol=1e-5, rtol=0)
    assert np.abs(exp.generate(z) - g(z, training=False).numpy()).max() > 1e-3
    assert json.load(open(os.path.join(path, ex.METADATA_RELPATH)))["source"] == "gan.ema_generator"
    # use_ema=False exports the raw generator.
    path2 = ex.export_generator(make_gan(g, ema=ema), tmp_path, use_ema=False)
    np.testing.assert_allclose(ex.load_exported(path2).generate(z), g(z, training=False).numpy(), atol=1e-5)


# --------------------------------------------------------------------------------------
# Self-contained: fresh process without tfgan_app, saved_model_cli
# --------------------------------------------------------------------------------------

_FRESH_SCRIPT = textwrap.dedent(
    r"""
    import importlib.abc, json, sys
    # tfgan_app may be installed (pip install -e .), so -I and a foreign cwd are not
    # enough to hide it: refuse it at the import system and record every attempt.
    attempts = []
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tfgan_app":
                attempts.append(name)
                raise ImportError("tfgan_app is hidden from this process")
            return None
    sys.meta_path.insert(0, Block())
    import numpy as np
    import tensorflow as tf
    path, z_file = sys.argv[1], sys.argv[2]
    m = tf.saved_model.load(path)
    z = np.load(z_file)
    out = {"sys_path": sys.path, "signatures": sorted(m.signatures)}
    images = m.signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    np.save(z_file + ".images.npy", images)
    s1 = m.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(5, tf.int64))
    s2 = m.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(5, tf.int64))
    out["sample"] = {k: [v.dtype.name, list(v.shape)] for k, v in s1.items()}
    out["sample_same"] = bool(np.array_equal(s1["images"].numpy(), s2["images"].numpy())
                              and list(s1["images_png_bytes"].numpy()) == list(s2["images_png_bytes"].numpy()))
    np.save(z_file + ".sample.npy", s1["images"].numpy())
    out["attempts_while_running"] = list(attempts)
    try:
        import tfgan_app
        out["importable"] = True
    except ImportError:
        out["importable"] = False
    print("RESULT " + json.dumps(out))
    """
)


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.mark.slow  # a subprocess importing TensorFlow (~4 s)
def test_loads_and_runs_in_a_process_without_tfgan_app(uncond, tmp_path):
    z = np.random.default_rng(2).standard_normal((4, LATENT)).astype(np.float32)
    z_file = str(tmp_path / "z.npy")
    np.save(z_file, z)
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _FRESH_SCRIPT, uncond.path, z_file],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    assert result["importable"] is False, result["sys_path"]
    assert result["attempts_while_running"] == []  # loading/running never asked for tfgan_app
    assert result["signatures"] == ["interpolate", "sample", "serving_default"]
    assert result["sample"] == {"images": ["uint8", [3, 8, 8, 1]], "images_png_bytes": ["string", [3]]}
    assert result["sample_same"]
    np.testing.assert_allclose(
        np.load(z_file + ".images.npy"), uncond.gan.generator(z, training=False).numpy(), atol=1e-5, rtol=0
    )
    np.testing.assert_array_equal(np.load(z_file + ".sample.npy"), uncond.exp.sample(3, 5)["images"])


def _saved_model_cli():
    exe = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(exe):
        pytest.skip("saved_model_cli not installed next to the Python executable")
    return exe


def _signature_blocks(text):
    """saved_model_cli show --all -> {signature: {"inputs"/"outputs": {name: (dtype, shape)}}}."""
    sigs, cur, section, name = {}, None, None, None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("signature_def['"):
            cur = sigs.setdefault(s.split("'")[1], {"inputs": {}, "outputs": {}})
        elif cur is None:
            continue
        elif "contains the following input(s)" in s:
            section = "inputs"
        elif "contains the following output(s)" in s:
            section = "outputs"
        elif s.startswith(("inputs['", "outputs['")):
            name = s.split("'")[1]
        elif s.startswith("dtype:") and name:
            cur[section][name] = [s.split()[1], None]
        elif s.startswith("shape:") and name:
            cur[section][name][1] = s[len("shape:"):].strip()
        elif s.startswith("Concrete Functions"):
            break
    return sigs


@pytest.mark.slow  # a subprocess importing TensorFlow (~4 s)
def test_saved_model_cli_show_lists_documented_signatures(cond):
    proc = subprocess.run(
        [_saved_model_cli(), "show", "--all", "--dir", cond.path],
        env=_clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sigs = _signature_blocks(proc.stdout)
    assert sigs["serving_default"] == {
        "inputs": {"labels": ["DT_INT32", "(-1)"], "z": ["DT_FLOAT", f"(-1, {LATENT})"]},
        "outputs": {"images": ["DT_FLOAT", "(-1, 8, 8, 3)"]},
    }
    assert sigs["sample"] == {
        "inputs": {"labels": ["DT_INT32", "(-1)"], "num_samples": ["DT_INT32", "()"], "seed": ["DT_INT64", "()"]},
        "outputs": {"images": ["DT_UINT8", "(-1, 8, 8, 3)"], "images_png_bytes": ["DT_STRING", "(-1)"]},
    }
    assert sigs["interpolate"]["inputs"] == {
        "labels": ["DT_INT32", "(-1)"], "seed_a": ["DT_INT64", "()"], "seed_b": ["DT_INT64", "()"],
        "steps": ["DT_INT32", "()"],
    }
    assert "tensorflow/serving/predict" in proc.stdout


@pytest.mark.slow  # a subprocess importing TensorFlow (~4 s)
def test_saved_model_cli_run_sample(uncond, tmp_path):
    proc = subprocess.run(
        [_saved_model_cli(), "run", "--dir", uncond.path, "--tag_set", "serve", "--signature_def", "sample",
         "--input_exprs", "num_samples=2;seed=9", "--outdir", str(tmp_path / "out")],
        env=_clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = np.load(tmp_path / "out" / "images.npy")
    np.testing.assert_array_equal(images, uncond.exp.sample(2, 9)["images"])


# --------------------------------------------------------------------------------------
# Atomic writes and versions
# --------------------------------------------------------------------------------------


def test_crash_midway_leaves_no_version_and_versions_are_kept(tmp_path, monkeypatch):
    gan = make_gan(conv_generator(seed=5))
    base = tmp_path / "model"
    v1 = ex.export_generator(gan, base)
    before = tree_bytes(v1)
    assert before

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    seen = []
    real_write = writer._write_saved_model

    def spy_write(archive, path):  # the SavedModel goes into a temp dir TF Serving ignores
        seen.append(os.path.basename(path))
        real_write(archive, path)
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))

    monkeypatch.setattr(writer, "_write_saved_model", spy_write)
    # 1) after the SavedModel has been written, before the metadata.
    monkeypatch.setattr(writer, "_write_metadata", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ex.export_generator(gan, base)
    assert seen and seen[0].startswith(".tmp-") and not seen[0].isdigit()
    assert sorted(os.listdir(base)) == ["1"]
    monkeypatch.undo()
    # 2) at the final rename.
    monkeypatch.setattr(writer.os, "rename", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ex.export_generator(gan, base, version=7)
    monkeypatch.undo()
    assert sorted(os.listdir(base)) == ["1"]
    # 3) a KeyboardInterrupt is cleaned up as well.
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_fsync_tree", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ex.export_generator(gan, base)
    monkeypatch.undo()
    assert sorted(os.listdir(base)) == ["1"]

    v2 = ex.export_generator(gan, base)
    assert os.path.basename(v2) == "2"
    assert sorted(os.listdir(base)) == ["1", "2"]
    assert tree_bytes(v1) == before  # version 1 byte-identical
    assert ex.list_versions(base) == [1, 2] and ex.next_version(base) == 3
    assert ex.load_exported(base).version == 2  # base dir -> highest version


def test_existing_version_is_refused(tmp_path):
    gan = make_gan(conv_generator(seed=6))
    v5 = ex.export_generator(gan, tmp_path, version=5)
    before = tree_bytes(v5)
    with pytest.raises(FileExistsError, match="version 5 already exists"):
        ex.export_generator(gan, tmp_path, version=5)
    assert tree_bytes(v5) == before
    assert os.path.basename(ex.export_generator(gan, tmp_path)) == "6"
    # Temp leftovers from a killed process are not versions.
    os.mkdir(tmp_path / ".tmp-deadbeef")
    assert ex.list_versions(tmp_path) == [5, 6] and ex.next_version(tmp_path) == 7
    for bad in (0, -1, "abc", True, 1.5):
        with pytest.raises(ValueError, match="version must be a positive integer"):
            ex.export_generator(gan, tmp_path, version=bad)
    assert sorted(os.listdir(tmp_path)) == [".tmp-deadbeef", "5", "6"]


# --------------------------------------------------------------------------------------
# Conditional, run directory, toy 2-D, TFLite
# --------------------------------------------------------------------------------------


def test_conditional_export(cond):
    g, exp = cond.gan.generator, cond.exp
    z = np.random.default_rng(3).standard_normal((6, LATENT)).astype(np.float32)
    labels = np.array([0, 1, 2, 2, 1, 0], np.int32)
    out = exp.signatures["serving_default"](z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    np.testing.assert_allclose(out, g([z, labels], training=False).numpy(), atol=1e-5, rtol=0)
    # The label matters.
    other = exp.generate(z, np.zeros(6, np.int32))
    assert np.abs(other - out).max() > 1e-3

    a = exp.sample(6, 4, labels)
    np.testing.assert_array_equal(a["images"], exp.sample(6, 4, labels)["images"])
    expected = to_uint8(g([stateless_z(6, 4), labels], training=False))
    assert np.abs(expected.astype(int) - a["images"].astype(int)).max() <= 1
    assert a["images"].shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(serving.decode_png_batch(a["images_png_bytes"]), a["images"])
    # Empty labels: drawn from the seed, deterministically.
    r1, r2 = exp.sample(6, 4, []), exp.sample(6, 4, None)
    np.testing.assert_array_equal(r1["images"], r2["images"])
    assert not np.array_equal(r1["images"], exp.sample(6, 5, [])["images"])
    # Scalar label is repeated.
    np.testing.assert_array_equal(exp.sample(6, 4, 1)["images"], exp.sample(6, 4, np.ones(6, int))["images"])
    # Interpolation keeps one class along the path.
    path = exp.interpolate(1, 2, steps=4, labels=2)
    assert path["images"].shape == (4, 8, 8, 3)
    # Bad labels are refused with a clear error.
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < num_classes"):
        exp.signatures["serving_default"](z=tf.constant(z), labels=tf.constant([0, 1, 2, 3, 0, 0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be >= 0"):
        exp.signatures["sample"](num_samples=tf.constant(2), seed=tf.constant(0, tf.int64),
                                 labels=tf.constant([-1, 0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per sample"):
        exp.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(0, tf.int64),
                                 labels=tf.constant([0, 1]))
    with pytest.raises(ValueError, match="labels must have 3 entries"):
        exp.sample(3, 0, [0, 1])
    with pytest.raises(ValueError, match="conditional"):
        exp.generate(z)


def test_export_from_run_directory(tmp_path):
    g = cond_generator(seed=7)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    g.save(run_dir / "generator.keras")
    (run_dir / "config.json").write_text(json.dumps({"latent_dim": LATENT, "num_classes": CLASSES, "epochs": 1}))
    path = ex.export_generator(str(run_dir), tmp_path / "out")
    exp = ex.load_exported(path)
    assert exp.conditional and exp.num_classes == CLASSES and exp.latent_dim == LATENT
    z = np.random.default_rng(4).standard_normal((3, LATENT)).astype(np.float32)
    labels = np.array([2, 0, 1], np.int32)
    np.testing.assert_allclose(exp.generate(z, labels), g([z, labels], training=False).numpy(), atol=1e-5)
    report = ex.verify_export(path, str(run_dir))
    assert report["max_abs_diff"] <= 1e-5

    with pytest.raises(FileNotFoundError, match="config.json"):
        ex.export_generator(str(tmp_path / "out"), tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        ex.export_generator(str(tmp_path / "nope"), tmp_path / "x")


def test_toy_2d_generator_exports_samples_without_png(tmp_path):
    g = toy_generator()
    path = ex.export_generator(make_gan(g), tmp_path / "toy")
    exp = ex.load_exported(path)
    assert set(exp.signatures["serving_default"].structured_outputs) == {"samples"}
    s = exp.sample(50, 3)
    assert set(s) == {"samples"} and s["samples"].dtype == np.float32 and s["samples"].shape == (50, 2)
    np.testing.assert_allclose(s["samples"], g(stateless_z(50, 3), training=False).numpy(), atol=1e-5)
    np.testing.assert_array_equal(s["samples"], exp.sample(50, 3)["samples"])
    png = ex.sample_grid_from_saved_model(path, tmp_path / "scatter.png", n=50, seed=3)
    img = np.asarray(Image.open(png))
    assert img.shape == (512, 512, 3) and (img != 255).any()
    ex.verify_export(path, make_gan(g))


def _tflite_available():
    return hasattr(tf, "lite") and hasattr(tf.lite, "TFLiteConverter")


@pytest.mark.skipif(not _tflite_available(), reason="tf.lite not available")
def test_tflite_matches_generator_and_saved_model(tmp_path, uncond, cond):
    for src, kw in ((uncond, {}), (cond, {"labels": np.array([0, 1, 2, 1], np.int32)})):
        base = tmp_path / f"tflite_{len(kw)}"
        path = ex.export_generator(src.gan, base, format="tflite")
        assert sorted(os.listdir(path)) == ["model.tflite", "tfgan_app_export.json"]
        assert sorted(os.listdir(base)) == ["1"]
        z = np.random.default_rng(5).standard_normal((4, LATENT)).astype(np.float32)
        lite = ex.tflite_generate(path, z, **kw)
        g_in = [z, kw["labels"]] if kw else z
        np.testing.assert_allclose(lite, src.gan.generator(g_in, training=False).numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(lite, src.exp.generate(z, **kw), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="z must have shape"):
        ex.tflite_generate(path, z[:, :3], labels=kw["labels"])
    with pytest.raises(ValueError, match="TFLite export"):
        ex.load_exported(path)


# --------------------------------------------------------------------------------------
# Grid, verification, bad input
# --------------------------------------------------------------------------------------


def test_sample_grid_from_saved_model(uncond, cond, tmp_path):
    out = ex.sample_grid_from_saved_model(uncond.base, tmp_path / "sub" / "grid.png", n=7, seed=3)
    grid = np.asarray(Image.open(out))
    cols = math.ceil(math.sqrt(7))
    rows = math.ceil(7 / cols)
    assert grid.shape == (rows * 10 + 2, cols * 10 + 2)  # 8x8 images, 2-pixel border
    images = uncond.exp.sample(7, 3)["images"]
    np.testing.assert_array_equal(grid[2:10, 2:10], images[0, ..., 0])
    np.testing.assert_array_equal(grid[12:20, 12:20], images[4, ..., 0])  # row 1, col 1
    np.testing.assert_array_equal(grid[22:30, 2:10], images[6, ..., 0])  # row 2, col 0
    # Same seed -> same file bytes.
    again = ex.sample_grid_from_saved_model(uncond.base, tmp_path / "grid2.png", n=7, seed=3)
    assert open(out, "rb").read() == open(again, "rb").read()
    # Conditional: classes cycled by default, RGB.
    rgb = np.asarray(Image.open(ex.sample_grid_from_saved_model(cond.path, tmp_path / "c.png", n=6)))
    assert rgb.shape == (2 * 10 + 2, 3 * 10 + 2, 3)
    expected = cond.exp.sample(6, 0, np.arange(6) % CLASSES)["images"]
    np.testing.assert_array_equal(rgb[2:10, 12:20], expected[1])
    with pytest.raises(ValueError, match="unconditional"):
        ex.sample_grid_from_saved_model(uncond.path, tmp_path / "x.png", n=4, labels=[0, 1, 2, 0])


def test_verify_export(uncond):
    report = ex.verify_export(uncond.path, uncond.gan)
    assert report["max_abs_diff"] <= 1e-5
    assert report["signatures"]["sample"]["inputs"] == {"num_samples": ["int32", []], "seed": ["int64", []]}
    assert report["signatures"]["sample"]["outputs"]["images"] == ["uint8", [None, 8, 8, 1]]
    with pytest.raises(ex.ExportVerificationError, match="differs from the generator"):
        ex.verify_export(uncond.path, make_gan(conv_generator(seed=99)))


@pytest.mark.slow
def test_verify_export_isolated(cond):
    report = ex.verify_export(cond.path, cond.gan, isolated=True)
    assert report["isolated"]["tfgan_app_importable"] is False
    assert report["isolated"]["sample_deterministic"] is True


def test_bad_inputs_give_clear_errors(tmp_path, uncond):
    with pytest.raises(FileNotFoundError, match="not found"):
        ex.load_exported(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a SavedModel"):
        ex.load_exported(tmp_path / "empty")
    # A SavedModel that is not a generator export.
    m = tf.Module()
    m.f = tf.function(lambda x: {"y": x * 2.0}, input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    tf.saved_model.save(m, str(tmp_path / "other"), signatures={"serving_default": m.f})
    with pytest.raises(ValueError, match="missing signatures"):
        ex.load_exported(tmp_path / "other")
    with pytest.raises(ValueError, match=r"z must have shape \[N, 8\]"):
        uncond.exp.generate(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="unconditional"):
        uncond.exp.generate(np.zeros((2, LATENT), np.float32), labels=[0, 1])
    # The signature itself refuses a wrong z shape.
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        uncond.exp.signatures["serving_default"](z=tf.zeros([2, 5]))
    with pytest.raises(TypeError, match="expected a GAN"):
        ex.export_generator(object(), tmp_path / "m")
    with pytest.raises(ValueError, match="cannot be called"):
        ex.export_generator(types.SimpleNamespace(generator=conv_generator(), latent_dim=5, num_classes=None),
                            tmp_path / "m")
    with pytest.raises(ValueError, match="format must be one of"):
        ex.export_generator(uncond.gan, tmp_path / "m", format="onnx")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError):
        ex.export_generator(uncond.gan, tmp_path / "afile")
    # Failed exports left nothing behind.
    assert not (tmp_path / "m").exists() or os.listdir(tmp_path / "m") == []


def test_non_image_output_exports_as_samples(tmp_path):
    keras.utils.set_random_seed(0)
    z = keras.Input((LATENT,))
    g = keras.Model(z, keras.layers.Reshape((4, 4))(keras.layers.Dense(16)(z)))  # [N, 4, 4]
    path = ex.export_generator(make_gan(g), tmp_path / "m")
    out = tf.saved_model.load(path).signatures["sample"](
        num_samples=tf.constant(3, tf.int32), seed=tf.constant(1, tf.int64))
    assert set(out) == {"samples"} and out["samples"].shape == (3, 4, 4)


def test_contract_and_serving_import_without_tensorflow_or_matplotlib():
    code = (
        "import sys, tfgan_app.serving, tfgan_app.export.contract, tfgan_app.export as ex\n"
        "ex.list_versions('.'); ex.SAMPLE_SIGNATURE\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The client and the exporter share one contract (not copies of it).
    assert serving.OUTPUT_DTYPES is ex.contract.OUTPUT_DTYPES


# --------------------------------------------------------------------------------------
# Client helpers: REST
# --------------------------------------------------------------------------------------


def _tf_serving_json(outputs, columnar=True):
    """Encode signature outputs the way TF Serving's REST API documents it."""

    def enc(name, arr):
        arr = np.asarray(arr)
        if arr.dtype == object:
            vals = [{"b64": base64.b64encode(v).decode()} if name.endswith("_bytes") else v.decode() for v in arr]
            return vals
        return arr.tolist()

    if columnar:
        if len(outputs) == 1:
            return {"outputs": enc(*next(iter(outputs.items())))}
        return {"outputs": {k: enc(k, v) for k, v in outputs.items()}}
    n = len(next(iter(outputs.values())))
    if len(outputs) == 1:
        k, v = next(iter(outputs.items()))
        return {"predictions": enc(k, v)}
    return {"predictions": [{k: enc(k, v[i : i + 1])[0] for k, v in outputs.items()} for i in range(n)]}


def test_rest_request_formats():
    z = np.array([[0.5, -1.25], [0.1, 2.0]], np.float32)
    assert serving.build_rest_request(serving.generate_inputs(z)) == {
        "signature_name": "serving_default",
        "inputs": {"z": [[0.5, -1.25], [float(np.float32(0.1)), 2.0]]},
    }
    assert serving.build_rest_request(serving.generate_inputs(z, [1, 2]), format="row") == {
        "signature_name": "serving_default",
        "instances": [{"z": [0.5, -1.25], "labels": 1}, {"z": [float(np.float32(0.1)), 2.0], "labels": 2}],
    }
    body = serving.build_rest_request(serving.sample_inputs(4, seed=2**40), "sample")
    assert body == {"signature_name": "sample", "inputs": {"num_samples": 4, "seed": 2**40}}
    assert json.loads(json.dumps(body)) == body
    assert serving.build_rest_request(serving.sample_inputs(2, 1, labels=[]), "sample")["inputs"]["labels"] == []
    assert serving.build_rest_request(serving.interpolate_inputs(1, 2, 5, labels=1), "interpolate") == {
        "signature_name": "interpolate",
        "inputs": {"seed_a": 1, "seed_b": 2, "steps": 5, "labels": [1, 1, 1, 1, 1]},
    }
    with pytest.raises(ValueError, match="row format"):
        serving.build_rest_request(serving.sample_inputs(4, 1), "sample", format="row")
    with pytest.raises(ValueError, match="z must have shape"):
        serving.generate_inputs(np.zeros(3))
    with pytest.raises(ValueError, match="labels must have 3 entries"):
        serving.sample_inputs(3, 0, labels=[1, 2])
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        serving.sample_inputs(0)
    assert (serving.rest_predict_url("localhost:8501", "gan", version=3)
            == "http://localhost:8501/v1/models/gan/versions/3:predict")
    assert serving.rest_predict_url("https://h:1/", "gan") == "https://h:1/v1/models/gan:predict"


def test_rest_response_decodes_real_signature_outputs(uncond, cond):
    sample = uncond.exp.sample(3, 8)
    body = json.dumps(_tf_serving_json(sample))
    assert '"b64"' in body
    decoded = serving.decode_rest_response(body, "sample")
    assert decoded["images"].dtype == np.uint8
    np.testing.assert_array_equal(decoded["images"], sample["images"])
    assert list(decoded["images_png_bytes"]) == list(sample["images_png_bytes"])
    np.testing.assert_array_equal(serving.decode_png_batch(decoded["images_png_bytes"]), sample["images"])
    # Row format response (list of objects).
    decoded = serving.decode_rest_response(_tf_serving_json(sample, columnar=False), "sample")
    np.testing.assert_array_equal(decoded["images"], sample["images"])
    assert list(decoded["images_png_bytes"]) == list(sample["images_png_bytes"])
    # serving_default has one output: TF Serving drops its name.
    z = np.random.default_rng(6).standard_normal((2, LATENT)).astype(np.float32)
    images = uncond.exp.generate(z)
    for columnar in (True, False):
        d = serving.decode_rest_response(json.dumps(_tf_serving_json({"images": images}, columnar)).encode())
        assert d["images"].dtype == np.float32
        np.testing.assert_array_equal(d["images"], images)
    with pytest.raises(serving.TFServingError, match="labels must be < num_classes"):
        serving.decode_rest_response('{"error": "labels must be < num_classes (3)"}')


class _FakeTFServingREST(http.server.BaseHTTPRequestHandler):
    """Loopback stand-in for TF Serving's REST predict API, running a real export."""

    exports = {}

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        try:
            name = self.path.split("/v1/models/")[1].split(":")[0].split("/")[0]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fn = self.exports[name].signatures[body.get("signature_name", "serving_default")]
            specs = fn.structured_input_signature[1]
            if "inputs" in body:
                raw = body["inputs"]
            else:
                raw = {k: [inst[k] for inst in body["instances"]] for k in body["instances"][0]}
            args = {k: tf.constant(np.asarray(v), dtype=specs[k].dtype) for k, v in raw.items()}
            out = {k: v.numpy() for k, v in fn(**args).items()}
            payload, code = _tf_serving_json(out, columnar="inputs" in body), 200
        except Exception as e:  # noqa: BLE001
            payload, code = {"error": str(e).splitlines()[0]}, 400
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_rest_predict_round_trip_on_loopback(uncond, cond):
    _FakeTFServingREST.exports = {"gan": uncond.exp, "cgan": cond.exp}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeTFServingREST)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # The export's metadata gives the shape the client checks every answer against.
        with open(os.path.join(uncond.path, ex.METADATA_RELPATH)) as fh:
            shape = json.load(fh)["output_shape"]
        out = serving.rest_predict(url, "gan", serving.sample_inputs(3, 21), "sample", timeout=30,
                                   output_shape=shape)
        np.testing.assert_array_equal(out["images"], uncond.exp.sample(3, 21)["images"])
        np.testing.assert_array_equal(serving.decode_png_batch(out["images_png_bytes"], shape), out["images"])
        with pytest.raises(serving.TFServingError, match="the export's is"):
            serving.rest_predict(url, "gan", serving.sample_inputs(3, 21), "sample", timeout=30,
                                 output_shape=[shape[0] * 2, *shape[1:]])
        z = np.random.default_rng(7).standard_normal((2, LATENT)).astype(np.float32)
        out = serving.rest_predict(url, "cgan", serving.generate_inputs(z, [1, 2]), format="row", timeout=30)
        np.testing.assert_allclose(out["images"], cond.exp.generate(z, [1, 2]), atol=1e-6)
        with pytest.raises(serving.TFServingError, match="HTTP 400"):
            serving.rest_predict(url, "cgan", serving.generate_inputs(z, [1, 5]), timeout=30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------
# Client helpers: gRPC (request building needs the optional tensorflow-serving-api)
# --------------------------------------------------------------------------------------


def _has_serving_api():
    try:
        from tensorflow_serving.apis import predict_pb2  # noqa: F401
    except ImportError:
        return False
    return True


def test_grpc_decode_without_serving_api(uncond):
    sample = uncond.exp.sample(2, 3)
    fake = types.SimpleNamespace(outputs={k: tf.make_tensor_proto(v) for k, v in sample.items()})
    decoded = serving.decode_grpc_response(fake)
    np.testing.assert_array_equal(decoded["images"], sample["images"])
    assert decoded["images"].dtype == np.uint8
    assert list(decoded["images_png_bytes"]) == list(sample["images_png_bytes"])


def test_grpc_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with pytest.raises(ImportError, match="pip install tensorflow-serving-api"):
        serving.build_grpc_request("gan", serving.sample_inputs(2, 1), "sample")


@pytest.mark.skipif(not _has_serving_api(), reason="tensorflow-serving-api not installed (optional)")
def test_grpc_request_and_loopback_round_trip(cond):
    import grpc
    from concurrent import futures

    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    req = serving.build_grpc_request("cgan", serving.sample_inputs(3, 2**33, labels=[0, 1, 2]), "sample", version=4)
    assert isinstance(req, predict_pb2.PredictRequest)
    assert (req.model_spec.name, req.model_spec.signature_name, req.model_spec.version.value) == ("cgan", "sample", 4)
    assert req.inputs["num_samples"].dtype == tf.int32.as_datatype_enum
    assert req.inputs["seed"].dtype == tf.int64.as_datatype_enum
    assert tf.make_ndarray(req.inputs["seed"]) == 2**33
    np.testing.assert_array_equal(tf.make_ndarray(req.inputs["labels"]), [0, 1, 2])

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802
            fn = cond.exp.signatures[request.model_spec.signature_name or "serving_default"]
            args = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            try:
                out = fn(**args)
            except tf.errors.InvalidArgumentError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message.splitlines()[0])
            resp = predict_pb2.PredictResponse()
            for k, v in out.items():
                resp.outputs[k].CopyFrom(tf.make_tensor_proto(v.numpy()))
            return resp

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        out = serving.grpc_predict(f"127.0.0.1:{port}", req, timeout=30, output_shape=cond.exp.output_shape)
        expected = cond.exp.sample(3, 2**33, [0, 1, 2])
        np.testing.assert_array_equal(out["images"], expected["images"])
        assert list(out["images_png_bytes"]) == list(expected["images_png_bytes"])
        bad = serving.build_grpc_request("cgan", serving.generate_inputs(np.zeros((1, LATENT)), [7]))
        with pytest.raises(serving.TFServingError, match="INVALID_ARGUMENT"):
            serving.grpc_predict(f"127.0.0.1:{port}", bad, timeout=30)
    finally:
        server.stop(grace=None)


# --------------------------------------------------------------------------------------
# With the package's own GANModel and builders
# --------------------------------------------------------------------------------------


def test_export_of_a_ganmodel_matches_generate(tmp_path):
    import tfgan_app as tg
    from tfgan_app.builders.conditional import conditional_dcgan_discriminator, conditional_dcgan_generator

    shape = (8, 8, 1)
    gan = tg.GANModel(
        generator=conditional_dcgan_generator(LATENT, shape, CLASSES, base_filters=8),
        discriminator=conditional_dcgan_discriminator(shape, CLASSES, base_filters=8),
        latent_dim=LATENT,
        num_classes=CLASSES,
    )
    gan.compile(ema_decay=0.9)
    assert gan.ema_generator is not None
    _randomize_batchnorm(gan.ema_generator, seed=8)
    for v in gan.ema_generator.trainable_variables:  # make the EMA copy differ from G
        v.assign(v + 0.05)
    exp = ex.load_exported(ex.export_generator(gan, tmp_path))
    labels = np.arange(6) % CLASSES
    expected = to_uint8(gan.generate(6, labels=labels, seed=17))  # EMA generator, latent_vectors(6, L, 17)
    got = exp.sample(6, 17, labels)["images"]
    assert np.abs(expected.astype(int) - got.astype(int)).max() <= 1
    raw = to_uint8(gan.generate(6, labels=labels, seed=17, use_ema=False))
    assert np.abs(raw.astype(int) - got.astype(int)).max() > 1
