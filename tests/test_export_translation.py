"""Exporting image-to-image (translation) runs: signatures, verification without tfgan_app,
TFLite, bad input, and the TF Serving client's translate requests (docs/serving.md)."""

import io
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
from tfgan_app.data import paired  # noqa: E402
from tfgan_app.images import to_uint8  # noqa: E402
from tfgan_app.rundir import RunDir  # noqa: E402
from tfgan_app.translation import TranslationGAN  # noqa: E402

SIZE, DEPTH = 16, 3  # a U-Net of depth 3: sizes divisible by 8


def _png(u8):
    buf = io.BytesIO()
    Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits-inpainting run directory written the way `tfgan-app train` writes one
    (config with the paired data description, generator, EMA generator, gan), after a few
    training steps with EMA on so that the EMA and raw generators differ."""
    keras.utils.set_random_seed(0)
    targets = paired.offline_images("digits", "train", image_size=SIZE)[:64]
    sources = paired.derive("inpaint", targets)
    ds = paired.from_pairs(sources, targets, batch_size=16)
    gen = builders.unet_generator((SIZE, SIZE, 1), depth=DEPTH, base_filters=8, max_filters=16)
    disc = builders.patchgan_discriminator((SIZE, SIZE, 1), receptive_field=16, base_filters=8)
    gan = TranslationGAN(gen, disc, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5), ema_decay=0.5,
                jit_compile=False)
    gan.fit(ds, epochs=1, verbose=0)
    root = tmp_path_factory.mktemp("run")
    rd = RunDir(root)
    info = {k: v for k, v in ds.info.items() if k != "points"}
    rd.write_config({"latent_dim": 1, "seed": 0}, info, {})
    rd.write_models(gan)
    assert rd.kind.name == "translation"
    return types.SimpleNamespace(gan=gan, dir=str(root), sources=sources, targets=targets)


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """`tfgan-app export RUN --out BASE` of the run."""
    from tfgan_app.cli import main

    base = tmp_path_factory.mktemp("exports")
    assert main(["export", run.dir, "--out", str(base)]) == 0
    path = os.path.join(base, "1")
    return types.SimpleNamespace(base=str(base), path=path, exp=ex.load_exported(path))


def test_export_of_a_translation_run_has_the_translate_signatures(run, exported):
    assert sorted(os.listdir(exported.base)) == ["1"]  # atomic: no temporary left
    meta = json.load(open(os.path.join(exported.path, ex.METADATA_RELPATH)))
    assert meta["kind"] == "translation" and meta["signatures"] == [
        "serving_default", "translate", "translate_png"]
    assert meta["source_shape"] == [SIZE, SIZE, 1] and meta["output_shape"] == [SIZE, SIZE, 1]
    assert (meta["size_multiple"], meta["fixed_size"], meta["scale"]) == (2 ** DEPTH, False, 1)
    assert meta["source"].endswith("ema_generator.keras")
    exp = exported.exp
    assert isinstance(exp, ex.ExportedTranslator) and exp.kind == "translation"
    assert set(exp.signatures) == {"serving_default", "translate", "translate_png"}
    # translate is TranslationGAN.translate, which uses the EMA generator ...
    x = run.sources[:8]
    np.testing.assert_allclose(exp.translate(x), run.gan.translate(x), atol=1e-5, rtol=0)
    # ... which differs from the raw one after training with ema_decay=0.5
    raw = run.gan.translate(x, use_ema=False)
    assert np.abs(exp.translate(x) - raw).max() > 1e-3
    serve = exp.signatures["serving_default"](source=tf.constant(x))["images"].numpy()
    np.testing.assert_array_equal(serve, exp.translate(x))


def test_verify_in_a_process_without_tfgan_app(run, exported):
    report = ex.verify_export(exported.path, run.gan, isolated=True)
    assert report["max_abs_diff"] <= 1e-5
    assert report["png_max_grey_levels"] <= 1
    iso = report["isolated"]
    assert iso["tfgan_app_importable"] is False and iso["tfgan_app_imports_attempted"] == []
    assert iso["png_max_grey_levels"] <= 1 and iso["max_abs_diff_to_this_process"] <= 1e-5
    assert iso["signatures"] == ["serving_default", "translate", "translate_png"]


def test_translate_png_equals_translate_on_the_decoded_image(run, exported):
    u8 = to_uint8(run.sources[:5])
    out = exported.exp.translate_png([_png(a) for a in u8])
    assert len(out) == 5 and all(o[:8] == b"\x89PNG\r\n\x1a\n" for o in out)
    decoded = serving.decode_png_batch(out)
    expected = to_uint8(run.gan.translate(u8.astype(np.float32) / 127.5 - 1.0))
    assert decoded.shape == expected.shape == (5, SIZE, SIZE, 1)
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1


def test_other_sizes_and_clear_errors(exported, tmp_path):
    exp = ex.load_translator(exported.path)  # what `tfgan-app sample --saved-model --input` uses
    assert exp.accepts((24, 40, 1)) and not exp.accepts((20, 16, 1)) and not exp.accepts((16, 16, 3))
    assert "divisible by 8" in exp.size_problem((20, 16, 1)) and exp.target_shape == (SIZE, SIZE, 1)
    np.testing.assert_array_equal(exp(np.zeros((1, 8, 8, 1))), exp.translate(np.zeros((1, 8, 8, 1))))
    y = exp.translate(np.zeros((2, 24, 40, 1), np.float32))  # divisible by 8, not the training size
    assert y.shape == (2, 24, 40, 1)
    with pytest.raises(ValueError, match=r"20x16; this model needs a height and width divisible by 8"):
        exp.translate(np.zeros((1, 20, 16, 1), np.float32))
    with pytest.raises(ValueError, match=r"3 channel\(s\); this model translates grayscale"):
        exp.translate(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match=r"floats in \[-1, 1\]"):
        exp.translate(np.full((1, 16, 16, 1), 200.0, np.float32))
    # the graph itself refuses, as TF Serving would answer (INVALID_ARGUMENT)
    with pytest.raises(tf.errors.InvalidArgumentError, match="source images are 20x16"):
        exp.signatures["translate"](source=tf.zeros([1, 20, 16, 1]))
    with pytest.raises(ValueError, match="a PNG has 3 channel"):
        exp.translate_png([_png(np.zeros((16, 16, 3), np.uint8))])
    with pytest.raises(ValueError, match="not a PNG file"):
        exp.translate_png([b"GIF89a not a png"])
    with pytest.raises(ValueError, match="PNGs of different sizes"):
        exp.translate_png([_png(np.zeros((16, 16, 1), np.uint8)), _png(np.zeros((24, 24, 1), np.uint8))])
    with pytest.raises(ValueError, match="12x16; this model needs"):
        exp.translate_png([_png(np.zeros((12, 16, 1), np.uint8))])
    with pytest.raises(ValueError, match="image-to-image export"):
        ex.sample_grid_from_saved_model(exported.path, os.path.join(exported.base, "g.png"))
    g = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3 * 3 * 1), keras.layers.Reshape((3, 3, 1))])
    with pytest.raises(ValueError, match="not an image-to-image model"):
        ex.load_translator(ex.export_generator(g, tmp_path / "noise"))


def test_tflite_translation_export_matches_the_saved_model(run, exported, tmp_path):
    path = ex.export_generator(run.dir, tmp_path / "tflite", format="tflite")
    meta = json.load(open(os.path.join(path, ex.METADATA_FILENAME)))
    assert meta["signatures"] == ["serving_default"] and meta["kind"] == "translation"
    for shape in ((3, SIZE, SIZE, 1), (1, 32, 24, 1)):
        x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
        np.testing.assert_allclose(ex.tflite_translate(path, x), exported.exp.translate(x), atol=1e-4)


def test_superresolution_generator_exports_with_its_scale(tmp_path):
    keras.utils.set_random_seed(0)
    g = builders.srgan_generator((16, 16, 3), (4, 4, 3), num_blocks=1, filters=8)
    path = ex.export_generator(g, tmp_path / "sr")
    exp = ex.load_exported(path)
    assert (exp.scale, exp.size_multiple, exp.fixed_size) == (4, 1, False)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 5, 7, 3)).astype(np.float32)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)  # Keras checks the 4x4 input eagerly
    ref = tf.function(lambda s: g(s, training=False), input_signature=[spec])(x).numpy()
    assert exp.translate(x).shape == ref.shape == (2, 20, 28, 3)
    np.testing.assert_allclose(exp.translate(x), ref, atol=1e-5)
    assert ex.verify_export(path, g)["max_abs_diff"] <= 1e-5


# --------------------------------------------------------------------------------------
# The TF Serving client with translate requests
# --------------------------------------------------------------------------------------


def test_rest_requests_and_responses_for_translate(run, exported):
    exp = exported.exp
    x = run.sources[:2]
    body = serving.build_rest_request(serving.translate_inputs(x), "translate", format="row")
    assert body["signature_name"] == "translate" and len(body["instances"]) == 2
    assert np.asarray(body["instances"][0]["source"]).shape == (SIZE, SIZE, 1)
    pngs = [_png(a) for a in to_uint8(x)]
    body = serving.build_rest_request(serving.translate_png_inputs(pngs), "translate_png", format="row")
    assert body["instances"][1]["source_png_bytes"]["b64"]  # TF Serving's binary convention
    body = serving.build_rest_request(serving.translate_png_inputs(pngs), "translate_png")
    assert len(body["inputs"]["source_png_bytes"]) == 2
    # TF Serving answers a one-output signature without the output's name
    import base64

    out_pngs = exp.translate_png(pngs)
    answer = {"outputs": [{"b64": base64.b64encode(b).decode()} for b in out_pngs]}
    inputs = serving.translate_png_inputs(pngs)
    got = serving.decode_rest_response(json.dumps(answer), "translate_png", inputs=inputs)
    assert list(got["images_png_bytes"]) == out_pngs
    rows = {"predictions": answer["outputs"]}
    assert list(serving.decode_rest_response(rows, "translate_png")["images_png_bytes"]) == out_pngs
    with pytest.raises(serving.TFServingError, match="holds 2 items, the request asked for 3"):
        serving.decode_rest_response(answer, "translate_png",
                                     inputs=serving.translate_png_inputs(pngs + pngs[:1]))
    images = exp.translate(x)
    got = serving.decode_rest_response({"outputs": images.tolist()}, "translate",
                                       inputs=serving.translate_inputs(x), output_shape=[SIZE, SIZE, 1])
    assert got["images"].dtype == np.float32
    np.testing.assert_allclose(got["images"], images, atol=1e-6)
    with pytest.raises(serving.TFServingError, match="holds 2 items, the request asked for 1"):
        serving.decode_rest_response({"outputs": images.tolist()}, "serving_default",
                                     inputs=serving.translate_inputs(x[:1]))
    with pytest.raises(ValueError, match="not a PNG file"):
        serving.translate_png_inputs([b"plain text"])


def test_grpc_responses_for_translate(run, exported):
    pngs = [_png(a) for a in to_uint8(run.sources[:3])]
    out = exported.exp.translate_png(pngs)
    response = types.SimpleNamespace(outputs={"images_png_bytes": tf.make_tensor_proto(
        np.array(out, dtype=object))})
    got = serving.decode_grpc_response(response, "translate_png",
                                       inputs=serving.translate_png_inputs(pngs))
    assert list(got["images_png_bytes"]) == out
    with pytest.raises(serving.TFServingError, match="the request asked for 2"):
        serving.decode_grpc_response(response, "translate_png",
                                     inputs=serving.translate_png_inputs(pngs[:2]))


def _decode_b64(v):
    import base64

    if isinstance(v, dict) and set(v) == {"b64"}:
        return base64.b64decode(v["b64"])
    return [_decode_b64(x) for x in v] if isinstance(v, list) else v


def _encode(name, value):
    import base64

    if name.endswith("_bytes"):
        return [{"b64": base64.b64encode(bytes(b)).decode()} for b in value]
    return value.tolist()


class _FakeTFServing:
    """Loopback stand-in for TF Serving's REST predict API running a real export: b64 inputs
    decoded, ``*_bytes`` outputs base64-encoded, a lone output's name dropped (as TF Serving
    documents for its row and columnar formats)."""

    def __init__(self, exp):
        import http.server
        import threading

        module = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                module.requests.append(body)
                fn = exp.signatures[body.get("signature_name", "serving_default")]
                specs = fn.structured_input_signature[1]
                columnar = "inputs" in body
                raw = body["inputs"] if columnar else {
                    k: [inst[k] for inst in body["instances"]] for k in body["instances"][0]}
                try:
                    args = {k: tf.constant(_decode_b64(v), dtype=specs[k].dtype) for k, v in raw.items()}
                    out = {k: v.numpy() for k, v in fn(**args).items()}
                    if len(out) == 1:
                        ((name, value),) = out.items()
                        value = _encode(name, value)
                        payload = {"outputs": value} if columnar else {"predictions": value}
                    elif columnar:
                        payload = {"outputs": {k: _encode(k, v) for k, v in out.items()}}
                    code = 200
                except tf.errors.InvalidArgumentError as e:
                    payload, code = {"error": e.message}, 400  # the whole message, as TF Serving
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.requests = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def test_rest_predict_round_trip_for_translate_on_loopback(run, exported):
    exp, fake = exported.exp, _FakeTFServing(exported.exp)
    try:
        pngs = [_png(a) for a in to_uint8(run.sources[:3])]
        for fmt in ("row", "columnar"):
            out = serving.rest_predict(fake.url, "edges", serving.translate_png_inputs(pngs),
                                       "translate_png", format=fmt, timeout=30)
            assert list(out["images_png_bytes"]) == exp.translate_png(pngs)
        assert "b64" in fake.requests[0]["instances"][0]["source_png_bytes"]
        x = run.sources[:2]
        out = serving.rest_predict(fake.url, "edges", serving.translate_inputs(x), "translate",
                                   format="row", timeout=30, output_shape=[SIZE, SIZE, 1])
        np.testing.assert_allclose(out["images"], exp.translate(x), atol=1e-6)
        with pytest.raises(serving.TFServingError, match="source images are 20x16"):
            serving.rest_predict(fake.url, "edges", serving.translate_inputs(np.zeros((1, 20, 16, 1))),
                                 "translate", timeout=30)
        with pytest.raises(serving.TFServingError, match="a PNG has 3 channel"):
            serving.rest_predict(fake.url, "edges", serving.translate_png_inputs(
                [_png(np.zeros((16, 16, 3), np.uint8))]), "translate_png", timeout=30)
    finally:
        fake.close()


def _has_serving_api():
    try:
        from tensorflow_serving.apis import predict_pb2  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_serving_api(), reason="tensorflow-serving-api not installed (optional)")
def test_grpc_requests_for_translate(run):
    pngs = [_png(a) for a in to_uint8(run.sources[:2])]
    req = serving.build_grpc_request("edges", serving.translate_png_inputs(pngs), "translate_png")
    assert req.inputs["source_png_bytes"].dtype == tf.string.as_datatype_enum
    assert list(tf.make_ndarray(req.inputs["source_png_bytes"])) == pngs
    req = serving.build_grpc_request("edges", serving.translate_inputs(run.sources[:2]), "translate")
    assert req.inputs["source"].dtype == tf.float32.as_datatype_enum
    np.testing.assert_array_equal(tf.make_ndarray(req.inputs["source"]), run.sources[:2])
