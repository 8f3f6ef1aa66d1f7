"""The TF Serving client refuses malformed responses (issue 14, "the serving client trusts the
server"): every reproduction of the issue, and every way a response can be malformed, raises
``serving.TFServingError`` naming the reason -- never a raw ``ValueError``, ``KeyError``,
``binascii.Error`` or ``PIL.UnidentifiedImageError``, and never a silently wrapped or
oversized array.

Builds no export and needs no server: responses are written by hand (REST JSON, PNG files,
``TensorProto`` messages from ``tensorflow.core.framework.tensor_pb2``); the REST transport
runs against a loopback HTTP server that answers with a chosen body.
"""

import base64
import http.server
import io
import json
import sys
import threading
import types
import zlib

import numpy as np
import pytest
from PIL import Image

from tfgan_app import serving
from tfgan_app.export import contract

TFServingError = serving.TFServingError


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8).squeeze(-1) if np.shape(array)[-1] == 1
                    else np.asarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


def _sample_body(n, shape=(4, 4, 1), seed=0):
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    return images, {"outputs": {"images": images.tolist(),
                                "images_png_bytes": [_b64(_png(im)) for im in images]}}


# --------------------------------------------------------------------------------------
# Values: dtype and range
# --------------------------------------------------------------------------------------


def test_uint8_out_of_range_is_refused_not_wrapped():
    # The reproduction: [[300, -5]] came back as [44, 251].
    with pytest.raises(TFServingError, match=r"'images' \(uint8\) must lie in \[0, 255\], got values in \[-5, 300\]"):
        serving.decode_rest_response({"outputs": {"images": [[300, -5]]}}, "sample")
    bad = np.zeros((1, 2, 2, 1), int)
    bad[0, 1, 1, 0] = 256
    with pytest.raises(TFServingError, match="must lie in"):
        serving.decode_rest_response({"outputs": {"images": bad.tolist()}}, "interpolate")
    with pytest.raises(TFServingError, match="must hold integers"):
        serving.decode_rest_response({"outputs": {"images": [[[[1.5]]]]}}, "sample")
    with pytest.raises(TFServingError, match="must hold numbers"):
        serving.decode_rest_response({"outputs": {"images": [[[["7"]]]]}}, "sample")
    with pytest.raises(TFServingError, match="got bool"):
        serving.decode_rest_response({"outputs": {"images": [[[[True]]]]}}, "sample")
    ok = serving.decode_rest_response({"outputs": {"images": [[[[0], [255]]]]}}, "sample")
    assert ok["images"].dtype == np.uint8 and ok["images"].ravel().tolist() == [0, 255]


@pytest.mark.parametrize("signature", ["sample", "serving_default"])
def test_non_finite_values_are_refused(signature):
    # NaN used to become 0 in a uint8 output; a float output passed it on.
    for body in ('{"outputs": {"images": [[[[NaN]]]]}}', '{"outputs": {"images": [[[[Infinity]]]]}}'):
        with pytest.raises(TFServingError, match="NaN or infinite"):
            serving.decode_rest_response(body, signature)
    with pytest.raises(TFServingError, match="beyond float32's range"):
        serving.decode_rest_response({"outputs": {"images": [[[[1e39]]]]}}, "serving_default")
    ok = serving.decode_rest_response({"outputs": {"images": [[[[0.25]], [[-1.0]]]]}}, "serving_default")
    assert ok["images"].dtype == np.float32 and ok["images"].shape == (1, 2, 1, 1)


# --------------------------------------------------------------------------------------
# Shapes: against the request and the export
# --------------------------------------------------------------------------------------


def test_item_count_is_checked_against_the_request():
    images, body = _sample_body(6)
    with pytest.raises(TFServingError, match=r"'images' holds 6 items, the request asked for 4 \(num_samples\)"):
        serving.decode_rest_response(body, "sample", inputs=serving.sample_inputs(4, seed=1))
    got = serving.decode_rest_response(body, "sample", inputs=serving.sample_inputs(6, seed=1))
    np.testing.assert_array_equal(got["images"], images)
    with pytest.raises(TFServingError, match=r"asked for 5 \(steps\)"):
        serving.decode_rest_response(body, "interpolate", inputs=serving.interpolate_inputs(1, 2, steps=5))
    z = np.zeros((3, 8), np.float32)
    floats = {"outputs": np.zeros((2, 4, 4, 1)).tolist()}
    with pytest.raises(TFServingError, match=r"holds 2 items, the request asked for 3 \(z\)"):
        serving.decode_rest_response(floats, inputs=serving.generate_inputs(z))
    # The PNG list is counted too, even when `images` is right.
    body["outputs"]["images_png_bytes"] = body["outputs"]["images_png_bytes"][:5]
    with pytest.raises(TFServingError, match="'images_png_bytes' holds 5 items"):
        serving.decode_rest_response(body, "sample", inputs=serving.sample_inputs(6, seed=1))
    assert serving.requested_count(serving.sample_inputs(6), "sample") == 6
    assert serving.requested_count(None, "sample") is None


def test_image_shape_is_checked_against_the_export():
    _, body = _sample_body(2, shape=(4, 4, 1))
    with pytest.raises(TFServingError, match=r"item shape \[4, 4, 1\], the export's is \[28, 28, 1\]"):
        serving.decode_rest_response(body, "sample", output_shape=[28, 28, 1])
    assert serving.decode_rest_response(body, "sample", output_shape=(4, 4, 1))["images"].shape == (2, 4, 4, 1)
    with pytest.raises(TFServingError, match=r"'images' must have shape \[N, H, W, C\], got \[2, 16\]"):
        serving.decode_rest_response({"outputs": {"images": np.zeros((2, 16), int).tolist()}}, "sample")
    # A single unnamed output is named by its rank: points of a toy export are `samples`.
    pts = serving.decode_rest_response({"outputs": [[0.5, 1.5], [2.0, -3.0]]}, "sample",
                                       inputs=serving.sample_inputs(2), output_shape=[2])
    assert set(pts) == {"samples"} and pts["samples"].dtype == np.float32
    with pytest.raises(TFServingError, match="item shape"):
        serving.decode_rest_response({"predictions": [[0.5, 1.5, 2.0]]}, "sample", output_shape=[2])


# --------------------------------------------------------------------------------------
# Malformed bodies: TFServingError, never a raw exception
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, reason", [
    ('{"outputs": {"images_png_bytes": [{"b64": "abc"}]}}', "not valid base64"),       # binascii.Error
    ('{"outputs": {"images_png_bytes": [{"b64": "!!!!"}]}}', "not valid base64"),
    ('{"outputs": {"images_png_bytes": [7]}}', "must be {'b64': str}"),
    ('{"outputs": {"images_png_bytes": "abc"}}', "must be a list"),
    ('{"predictions": [{"images": 1}, {"other": 2}]}', "name different outputs"),      # KeyError
    ('{"outputs": {"images": [[1], [1, 2]]}}', "not a rectangular array"),            # ValueError
    ('{"outputs": {"images": [[1, {"a": 1}]]}}', "not a rectangular array"),
    ('{"outputs": {"images": [[18446744073709551616]]}}', "not a rectangular array"),
    ('{"outputs": {}}', "no outputs"),
    ('{"predictions": 3}', "'predictions' must be a list"),
    ('{"result": 1}', "neither 'outputs' nor 'predictions'"),
    ("[1, 2]", "expected a JSON object"),
    ("<html>502 Bad Gateway</html>", "body is not JSON"),
    (b"\xff\xfe{}", "body is not JSON"),                                               # UnicodeDecodeError
    ("[" * 100_000 + "]" * 100_000, "body is not JSON"),                               # RecursionError
])
def test_malformed_rest_bodies_raise_tfservingerror(body, reason):
    with pytest.raises(TFServingError, match=f"malformed response: .*{reason}".replace("{", r"\{").replace("[", r"\[")):
        serving.decode_rest_response(body, "sample")


def test_server_errors_keep_their_message():
    with pytest.raises(TFServingError, match="^labels must be < num_classes"):
        serving.decode_rest_response('{"error": "labels must be < num_classes (3)"}')


def test_body_size_limit():
    # The reproduction: a 10 MB body for a 4-sample request was accepted.
    _, body = _sample_body(1000, shape=(4, 4, 1))
    text = json.dumps(body)
    assert len(text) > 100_000
    with pytest.raises(TFServingError, match=f"body of {len(text)} bytes is over max_response_bytes=100000"):
        serving.decode_rest_response(text, "sample", max_response_bytes=100_000)
    with pytest.raises(TFServingError, match="holds 1000 items, the request asked for 4"):
        serving.decode_rest_response(text, "sample", inputs=serving.sample_inputs(4))
    assert contract.MAX_RESPONSE_BYTES == 256 << 20


# --------------------------------------------------------------------------------------
# PNG decoding: limits read from the header, errors named
# --------------------------------------------------------------------------------------


def test_png_decompression_bomb_is_refused_from_its_header():
    # The reproduction: a 78 KB PNG decoded to an 81 MB array.
    bomb = io.BytesIO()
    Image.new("L", (9000, 9000)).save(bomb, format="PNG", optimize=False)
    bomb = bomb.getvalue()
    assert len(bomb) < 100_000
    with pytest.raises(TFServingError, match="claims 9000x9000 pixels, over max_image_pixels=16777216"):
        serving.decode_png_batch([bomb])
    small = _png(np.full((4, 4, 1), 9))
    with pytest.raises(TFServingError, match=r"image 0 is \[4, 4, 1\], the export's images are \[8, 8, 1\]"):
        serving.decode_png_batch([small], output_shape=[8, 8, 1])
    with pytest.raises(TFServingError, match="would decode to 48 bytes, over max_decoded_bytes=40"):
        serving.decode_png_batch([small] * 3, max_decoded_bytes=40)
    np.testing.assert_array_equal(serving.decode_png_batch([small] * 2, output_shape=[4, 4, 1]),
                                  np.full((2, 4, 4, 1), 9, np.uint8))


def test_png_errors_are_named():
    good = _png(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    rgb = serving.decode_png_batch([good])
    assert rgb.shape == (1, 4, 4, 3) and rgb.ravel().tolist() == list(range(48))
    with pytest.raises(TFServingError, match="image 1 is not a PNG"):                  # UnidentifiedImageError
        serving.decode_png_batch([good, b"not a png"])
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    with pytest.raises(TFServingError, match="image 0 is not a PNG"):
        serving.decode_png_batch([jpeg.getvalue()])
    with pytest.raises(TFServingError, match="corrupt PNG data"):                       # truncated IDAT
        serving.decode_png_batch([_png(np.random.default_rng(0).integers(0, 256, (64, 64, 1)))[:300]])
    with pytest.raises(TFServingError, match=r"image 1 is \[4, 4, 1\], image 0 is \[4, 4, 3\]"):
        serving.decode_png_batch([good, _png(np.zeros((4, 4, 1)))])
    sixteen = io.BytesIO()
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(sixteen, format="PNG")   # would wrap in uint8
    with pytest.raises(TFServingError, match="PNG mode 'I;16'"):
        serving.decode_png_batch([sixteen.getvalue()])
    with pytest.raises(TFServingError, match="expected PNG bytes, got str"):
        serving.decode_png_batch(["abc"])
    with pytest.raises(TFServingError, match="no PNG images"):
        serving.decode_png_batch([])


# --------------------------------------------------------------------------------------
# gRPC: TensorProto decoding without TensorFlow, size claims checked before allocating
# --------------------------------------------------------------------------------------

tensor_pb2 = pytest.importorskip("tensorflow.core.framework.tensor_pb2")
DT_FLOAT, DT_INT32, DT_UINT8, DT_STRING, DT_HALF = 1, 3, 4, 7, 19


def _proto(dtype, dims, **fields):
    p = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for d in dims:
        p.tensor_shape.dim.add(size=d)
    return p


def test_tensor_proto_size_claims_are_checked_before_allocating():
    # The reproduction: a 20-byte TensorProto that claims 100 MB.
    tiny = _proto(DT_UINT8, [100_000_000], int_val=[7])
    assert len(tiny.SerializeToString()) <= 20
    with pytest.raises(TFServingError, match=r"claims shape \[100000000\] \(100000000 values\) but carries 1"):
        serving.tensor_proto_to_numpy(tiny, "images")
    content = _proto(DT_FLOAT, [10_000, 10_000], tensor_content=b"\0" * 16)
    with pytest.raises(TFServingError, match=r"\(400000000 bytes\) but carries 16 bytes"):
        serving.tensor_proto_to_numpy(content, "images")
    strings = _proto(DT_STRING, [1000], string_val=[b"x"])
    with pytest.raises(TFServingError, match="1000 values.*carries 1"):
        serving.tensor_proto_to_numpy(strings, "images_png_bytes")
    with pytest.raises(TFServingError, match="unsupported dtype"):
        serving.tensor_proto_to_numpy(_proto(DT_HALF, [1], half_val=[0]), "images")
    unknown = tensor_pb2.TensorProto(dtype=DT_FLOAT)
    unknown.tensor_shape.unknown_rank = True
    with pytest.raises(TFServingError, match="no fully known shape"):
        serving.tensor_proto_to_numpy(unknown, "images")


def test_tensor_proto_decoding_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(2, 3, 3, 1)).astype(np.float32), rng.normal(size=(3, 2)),
              rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8), rng.integers(-9, 9, (5,), dtype=np.int32),
              rng.integers(-2**40, 2**40, (2, 2)), np.array([True, False]),
              np.array([b"\x89PNG...", b""], dtype=object), np.zeros((0, 3), np.float32),
              np.float32(2.5)]
    for arr in arrays:
        protos = [tf.make_tensor_proto(arr)]                    # tensor_content for numbers
        if np.asarray(arr).dtype != object:
            protos.append(_as_typed_fields(tf, arr))            # one typed value per element
        for p in protos:
            got, ref = serving.tensor_proto_to_numpy(p), tf.make_ndarray(p)
            assert got.dtype == ref.dtype and got.shape == ref.shape
            assert got.tolist() == ref.tolist()


def _as_typed_fields(tf, arr):
    """``arr`` as a TensorProto with one typed value per element (the other legal encoding)."""
    field = {np.float32: "float_val", np.float64: "double_val", np.int32: "int_val", np.uint8: "int_val",
             np.int64: "int64_val", np.bool_: "bool_val"}[np.asarray(arr).dtype.type]
    p = _proto(tf.as_dtype(np.asarray(arr).dtype).as_datatype_enum, np.shape(arr))
    getattr(p, field).extend(np.asarray(arr).ravel().tolist())
    return p


def test_grpc_response_values_and_counts_are_checked():
    images = np.random.default_rng(1).integers(0, 256, (3, 4, 4, 1), dtype=np.uint8)
    pngs = [_png(im) for im in images]
    ok = types.SimpleNamespace(outputs={
        "images": _proto(DT_UINT8, [3, 4, 4, 1], tensor_content=images.tobytes()),
        "images_png_bytes": _proto(DT_STRING, [3], string_val=pngs)})
    out = serving.decode_grpc_response(ok, "sample", inputs=serving.sample_inputs(3), output_shape=[4, 4, 1])
    np.testing.assert_array_equal(out["images"], images)
    np.testing.assert_array_equal(serving.decode_png_batch(out["images_png_bytes"]), images)
    with pytest.raises(TFServingError, match="holds 3 items, the request asked for 4"):
        serving.decode_grpc_response(ok, "sample", inputs=serving.sample_inputs(4))
    wrapped = types.SimpleNamespace(outputs={"images": _proto(DT_UINT8, [1, 1, 2, 1], int_val=[300, 5])})
    with pytest.raises(TFServingError, match=r"must lie in \[0, 255\], got values in \[5, 300\]"):
        serving.decode_grpc_response(wrapped, "sample")
    nan = types.SimpleNamespace(outputs={"images": _proto(DT_FLOAT, [1, 1, 1, 1], float_val=[float("nan")])})
    with pytest.raises(TFServingError, match="NaN or infinite"):
        serving.decode_grpc_response(nan, "serving_default")
    ints = types.SimpleNamespace(outputs={"images": _proto(DT_INT32, [1, 1, 1, 1], int_val=[-1])})
    with pytest.raises(TFServingError, match="must lie in"):                            # int32 where uint8 is due
        serving.decode_grpc_response(ints, "sample")
    # The signature is read from the response's model_spec when not given.
    spec = types.SimpleNamespace(outputs=ints.outputs, model_spec=types.SimpleNamespace(signature_name="sample"))
    with pytest.raises(TFServingError, match="must lie in"):
        serving.decode_grpc_response(spec)


def test_grpc_predict_checks_the_answer_against_the_request(monkeypatch):
    """grpc_predict with a stand-in PredictionService stub (tensorflow-serving-api is optional):
    the server answers 5 images to a 2-image request."""
    answer = types.SimpleNamespace(outputs={"images": _proto(DT_UINT8, [5, 2, 2, 1], tensor_content=bytes(20))})
    sent = {}

    class Stub:
        def __init__(self, channel):
            pass

        def Predict(self, request, timeout):  # noqa: N802
            sent["request"] = request
            return answer

    apis = types.ModuleType("tensorflow_serving.apis")
    apis.predict_pb2 = types.SimpleNamespace()
    apis.prediction_service_pb2_grpc = types.SimpleNamespace(PredictionServiceStub=Stub)
    monkeypatch.setitem(sys.modules, "tensorflow_serving", types.ModuleType("tensorflow_serving"))
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", apis)
    request = types.SimpleNamespace(
        model_spec=types.SimpleNamespace(signature_name="sample"),
        inputs={"num_samples": _proto(DT_INT32, [], int_val=[2]), "seed": _proto(9, [], int64_val=[1])})
    channel = types.SimpleNamespace()
    with pytest.raises(TFServingError, match=r"holds 5 items, the request asked for 2 \(num_samples\)"):
        serving.grpc_predict("unused:0", request, channel=channel)
    assert sent["request"] is request
    request.inputs["num_samples"] = _proto(DT_INT32, [], int_val=[5])
    assert serving.grpc_predict("unused:0", request, channel=channel)["images"].shape == (5, 2, 2, 1)
    with pytest.raises(TFServingError, match=r"item shape \[2, 2, 1\], the export's is \[4, 4, 1\]"):
        serving.grpc_predict("unused:0", request, channel=channel, output_shape=[4, 4, 1])


# --------------------------------------------------------------------------------------
# REST transport: the limit applies while reading
# --------------------------------------------------------------------------------------


class _Canned(http.server.BaseHTTPRequestHandler):
    body = b"{}"
    send_length = True

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.send_length:
            self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        try:
            self.wfile.write(self.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def canned_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_rest_predict_refuses_oversized_and_mismatched_answers(canned_server):
    images, body = _sample_body(1000)
    _Canned.body, _Canned.send_length = json.dumps(body).encode(), True
    with pytest.raises(TFServingError, match=f"Content-Length {len(_Canned.body)} is over max_response_bytes=10000"):
        serving.rest_predict(canned_server, "gan", serving.sample_inputs(4), "sample", max_response_bytes=10_000)
    _Canned.send_length = False                                  # no length: the read itself is bounded
    with pytest.raises(TFServingError, match="body of 10001 bytes is over max_response_bytes=10000"):
        serving.rest_predict(canned_server, "gan", serving.sample_inputs(4), "sample", max_response_bytes=10_000)
    _Canned.send_length = True                                   # within the limit, but 1000 images for 4
    with pytest.raises(TFServingError, match="holds 1000 items, the request asked for 4"):
        serving.rest_predict(canned_server, "gan", serving.sample_inputs(4), "sample")
    out = serving.rest_predict(canned_server, "gan", serving.sample_inputs(1000), "sample", output_shape=[4, 4, 1])
    np.testing.assert_array_equal(out["images"], images)
    _Canned.body = zlib.compress(b"x")
    with pytest.raises(TFServingError, match="body is not JSON"):
        serving.rest_predict(canned_server, "gan", serving.sample_inputs(4), "sample")
