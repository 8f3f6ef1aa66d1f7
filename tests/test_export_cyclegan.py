"""Exporting CycleGAN runs (issue #19): one SavedModel with a float and a PNG signature per
direction, EMA generators when kept, verified in a process without tfgan_app, the loader's
direction, the TF Serving client's tables (docs/serving.md, "CycleGAN exports")."""

import base64
import json
import os
import types

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from tfgan_app import builders, serving  # noqa: E402
from tfgan_app import export as ex  # noqa: E402
from tfgan_app.cyclegan import CycleGAN  # noqa: E402
from tfgan_app.images import to_uint8  # noqa: E402
from tfgan_app.rundir import RunDir  # noqa: E402

SIZE = 16
# A is grayscale and B is RGB, so a direction mixed up anywhere is a channel error.
SHAPE_A, SHAPE_B = (SIZE, SIZE, 1), (SIZE, SIZE, 3)
SIGNATURES = ["serving_default", "translate_a_to_b", "translate_a_to_b_png",
              "translate_b_to_a", "translate_b_to_a_png"]


def _png(u8):
    """One uint8 ``[H, W, C]`` image as PNG file bytes."""
    return tf.io.encode_png(u8).numpy()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A CycleGAN run directory written the way `tfgan-app train` writes one (config.json
    with an unpaired data description; RunDir.write_models: G, F, their EMA copies, gan.keras)
    of a tiny model compiled with EMA, whose raw generators were then moved away from their
    EMA copies, so that exporting the raw ones instead would show."""
    keras.utils.set_random_seed(0)
    gan = CycleGAN(
        builders.resnet_generator(SHAPE_B, source_channels=1, num_blocks=1, base_filters=4),
        builders.resnet_generator(SHAPE_A, source_channels=3, num_blocks=1, base_filters=4),
        builders.patchgan_discriminator(SHAPE_A, conditional=False, norm="instance",
                                        base_filters=4),
        builders.patchgan_discriminator(SHAPE_B, conditional=False, norm="instance",
                                        base_filters=4),
        identity_weight=0.0, seed=0)
    gan.compile(ema_decay=0.5, jit_compile=False)
    rng = np.random.default_rng(0)
    for v in gan.generator_ab.trainable_variables + gan.generator_ba.trainable_variables:
        v.assign(v + rng.normal(0, 0.05, v.shape).astype(np.float32))
    root = tmp_path_factory.mktemp("run")
    rd = RunDir(root)
    rd.write_config({"latent_dim": 1, "seed": 0}, {"unpaired": True, "domain_shapes": {
        "a": list(SHAPE_A), "b": list(SHAPE_B)}}, {})
    rd.write_models(gan)
    assert rd.kind.name == "cyclegan"
    a = rng.uniform(-1, 1, (6, *SHAPE_A)).astype(np.float32)
    b = rng.uniform(-1, 1, (6, *SHAPE_B)).astype(np.float32)
    return types.SimpleNamespace(gan=gan, dir=str(root), a=a, b=b)


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """`tfgan-app export RUN --out BASE`: BASE/1."""
    from tfgan_app.cli import main

    base = str(tmp_path_factory.mktemp("exports"))
    assert main(["export", run.dir, "--out", base]) == 0
    return types.SimpleNamespace(base=base, path=os.path.join(base, "1"))


def test_one_export_with_both_directions_from_the_ema_generators(run, exported):
    assert sorted(os.listdir(exported.base)) == ["1"]  # atomic: no temporary left
    meta = json.load(open(os.path.join(exported.path, ex.METADATA_RELPATH)))
    assert meta["kind"] == "cyclegan" and meta["signatures"] == SIGNATURES
    assert meta["directions"]["a_to_b"]["source_shape"] == list(SHAPE_A)
    assert meta["directions"]["a_to_b"]["output_shape"] == list(SHAPE_B)
    assert meta["directions"]["b_to_a"]["source_shape"] == list(SHAPE_B)
    assert meta["directions"]["b_to_a"]["output_shape"] == list(SHAPE_A)
    assert meta["source_shape"] == list(SHAPE_A)  # serving_default's (a_to_b)
    assert meta["source"] == ", ".join(os.path.join(run.dir, name) for name in (
        RunDir.EMA_GENERATOR, RunDir.EMA_GENERATOR_BA))
    ab = ex.load_exported(exported.path)  # the default direction: a_to_b
    assert isinstance(ab, ex.ExportedTranslator) and ab.kind == "cyclegan"
    assert set(ab.signatures) == set(SIGNATURES) and ab.direction == "a_to_b"
    ba = ex.load_translator(exported.path, direction="BtoA")
    assert (ba.direction, ba.source_shape, ba.target_shape) == ("b_to_a", SHAPE_B, SHAPE_A)
    for exp, x, direction in ((ab, run.a, "a_to_b"), (ba, run.b, "b_to_a")):
        got = exp.translate(x)
        np.testing.assert_allclose(got, run.gan.translate(x, direction), atol=1e-5, rtol=0)
        # the raw generator differs: the EMA one was exported
        assert np.abs(got - run.gan.translate(x, direction, use_ema=False)).max() > 1e-3
    serve = ab.signatures["serving_default"](source=tf.constant(run.a))["images"].numpy()
    np.testing.assert_array_equal(serve, ab.translate(run.a))


def test_verify_each_direction_in_a_process_without_tfgan_app(run, exported):
    report = ex.verify_export(exported.path, run.gan, isolated=True)
    assert set(report["directions"]) == {"a_to_b", "b_to_a"}
    for d in report["directions"].values():
        assert d["max_abs_diff"] <= 1e-5 and d["png_max_grey_levels"] <= 1
    iso = report["isolated"]
    assert iso["tfgan_app_importable"] is False and iso["tfgan_app_imports_attempted"] == []
    assert iso["signatures"] == sorted(SIGNATURES)
    for d in iso["directions"].values():
        assert d["max_abs_diff_to_this_process"] <= 1e-5 and d["png_max_grey_levels"] <= 1
    # against the run directory's own sampling generators (what `export RUN` read)
    report = ex.verify_export(exported.path, run.dir)
    assert all(d["max_abs_diff"] <= 1e-5 for d in report["directions"].values())


def test_png_signatures_equal_the_model_within_one_grey_level(run, exported):
    ab = ex.load_translator(exported.path)
    for direction, x in (("a_to_b", run.a), ("b_to_a", run.b)):
        exp = ab.for_direction(direction)  # the same loaded SavedModel
        u8 = to_uint8(x)
        out = exp.translate_png([_png(img) for img in u8])
        decoded = serving.decode_png_batch(out)
        expected = to_uint8(run.gan.translate(u8.astype(np.float32) / 127.5 - 1.0, direction))
        assert decoded.shape == expected.shape == (len(x), *exp.target_shape)
        assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1


def test_directions_and_sizes_refused_with_clear_errors(run, exported):
    with pytest.raises(ValueError, match=r"a_to_b \(AtoB\) or b_to_a \(BtoA\), got 'sideways'"):
        ex.load_translator(exported.path, direction="sideways")
    ab = ex.load_translator(exported.path, "a_to_b")
    ba = ab.for_direction("b_to_a")
    with pytest.raises(ValueError, match=r"3 channel\(s\); this model translates grayscale"):
        ab.translate(run.b)
    with pytest.raises(ValueError, match=r"1 channel\(s\); this model translates RGB"):
        ba.translate(run.a)
    assert ba.accepts((24, 8, 3)) and not ba.accepts((18, 16, 3))
    # the graph itself names the size (what a TF Serving client gets: INVALID_ARGUMENT)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"source images are 18x16; .*by 4"):
        ba.signatures["translate_b_to_a"](source=tf.zeros([1, 18, 16, 3]))
    with pytest.raises(ValueError, match=r"translate_b_to_a_png: a PNG has 1 channel"):
        ba.translate_png([_png(to_uint8(run.a[0]))])


def test_no_ema_picks_the_raw_generators(run):
    """What `tfgan-app export RUN --no-ema` exports (use_ema=False), per direction."""
    from tfgan_app.export.source import resolve_source

    src = resolve_source(run.dir, use_ema=False)
    assert src.origin == ", ".join(os.path.join(run.dir, name) for name in (
        RunDir.GENERATOR, RunDir.GENERATOR_BA))
    for direction, x in (("a_to_b", run.a), ("b_to_a", run.b)):
        np.testing.assert_allclose(src.directions[direction].call(x),
                                   run.gan.translate(x, direction, use_ema=False),
                                   atol=1e-5, rtol=0)


def test_tflite_holds_a_to_b(run, tmp_path):
    """TFLite: serving_default only, which is A -> B (exported from the CycleGAN object)."""
    path = ex.export_generator(run.gan, tmp_path, format="tflite")
    meta = json.load(open(os.path.join(path, ex.METADATA_FILENAME)))
    assert meta["kind"] == "cyclegan" and meta["signatures"] == ["serving_default"]
    np.testing.assert_allclose(ex.tflite_translate(path, run.a[:2]), run.gan.translate(run.a[:2]),
                               atol=1e-4, rtol=0)


def test_sample_saved_model_input_translates_either_direction(run, exported, tmp_path):
    """`tfgan-app sample --saved-model EXPORT --input IMAGE [--direction BtoA]` (the CLI
    passes --direction to load_translator)."""
    from tfgan_app.cli import main

    for flags, x, direction, shape in (([], run.a, "a_to_b", SHAPE_B),
                                       (["--direction", "BtoA"], run.b, "b_to_a", SHAPE_A)):
        src, out = tmp_path / f"{direction}_in.png", tmp_path / f"{direction}_out.png"
        src.write_bytes(_png(to_uint8(x[0])))
        assert main(["sample", "--saved-model", exported.path, "--input", str(src),
                     "--out", str(out), *flags]) == 0
        got = np.asarray(Image.open(out)).reshape(shape)
        expected = to_uint8(run.gan.translate(to_uint8(x[:1]).astype(np.float32) / 127.5 - 1,
                                              direction))[0]
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_the_serving_client_knows_each_directions_signatures(run):
    """Requests and responses of the new signatures, without a server: the contract's tables
    (batch input, single output name, dtypes) cover them."""
    pngs = [_png(img) for img in to_uint8(run.b[:2])]
    body = serving.build_rest_request(serving.translate_png_inputs(pngs),
                                      "translate_b_to_a_png", format="row")
    assert body["signature_name"] == "translate_b_to_a_png" and len(body["instances"]) == 2
    answer = {"predictions": [{"b64": base64.b64encode(p).decode()} for p in pngs]}
    out = serving.decode_rest_response(answer, "translate_b_to_a_png",
                                       inputs=serving.translate_png_inputs(pngs))
    assert list(out) == ["images_png_bytes"] and list(out["images_png_bytes"]) == pngs
    with pytest.raises(serving.TFServingError, match="3 items|2"):
        serving.decode_rest_response({"outputs": np.zeros((3, SIZE, SIZE, 3)).tolist()},
                                     "translate_a_to_b",
                                     inputs=serving.translate_inputs(run.a[:2]))
    out = serving.decode_rest_response({"outputs": np.zeros((2, SIZE, SIZE, 3)).tolist()},
                                       "translate_a_to_b",
                                       inputs=serving.translate_inputs(run.a[:2]))
    assert out["images"].dtype == np.float32 and out["images"].shape == (2, SIZE, SIZE, 3)
