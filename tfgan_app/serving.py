"""Client helpers for a generator served by TF Serving (REST and gRPC).

The request side builds exactly what TF Serving's APIs take for the signatures written by
:func:`tfgan_app.export.export_generator`; the response side turns what the server sends
back into numpy arrays (``images`` float32 or uint8, ``images_png_bytes`` as ``bytes``).

REST needs only the standard library, numpy and Pillow (for PNG decoding): importing this
module imports neither TensorFlow nor matplotlib. Signature names and dtypes come from
:mod:`tfgan_app.export.contract`, which the exporter writes by. gRPC needs the
optional ``tensorflow-serving-api`` package (``pip install tensorflow-serving-api``),
imported only by the gRPC functions.

Typical use::

    from tfgan_app import serving
    inputs = serving.sample_inputs(num_samples=4, seed=42)
    out = serving.rest_predict("http://localhost:8501", "mnist_dcgan", inputs, signature_name="sample")
    images = serving.decode_png_batch(out["images_png_bytes"])   # uint8 [4, 28, 28, 1]

    request = serving.build_grpc_request("mnist_dcgan", inputs, signature_name="sample")
    out = serving.grpc_predict("localhost:8500", request)
"""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request

import numpy as np

from tfgan_app.export import contract

__all__ = [
    "TFServingError",
    "generate_inputs",
    "sample_inputs",
    "interpolate_inputs",
    "rest_predict_url",
    "build_rest_request",
    "decode_rest_response",
    "rest_predict",
    "build_grpc_request",
    "decode_grpc_response",
    "grpc_predict",
    "decode_png_batch",
]

#: Output dtypes of the export's signatures, used to type JSON numbers on decoding.
OUTPUT_DTYPES = contract.OUTPUT_DTYPES


class TFServingError(RuntimeError):
    """The server answered with an error (``{"error": ...}`` or a gRPC status)."""


# --------------------------------------------------------------------------------------
# Inputs (protocol-independent): dict name -> numpy array with the signature's dtype
# --------------------------------------------------------------------------------------


def _int_scalar(value, name, dtype, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return np.asarray(value, dtype=dtype)


def generate_inputs(z, labels=None):
    """Inputs of the ``serving_default`` signature.

    Args:
        z: float ``[N, latent_dim]`` latent vectors (standard normal for GANs trained
            the usual way).
        labels: conditional models only: int ``[N]`` class ids in ``[0, num_classes)``,
            or a scalar repeated N times. None for unconditional models.

    Returns:
        dict: ``z`` float32 ``[N, latent_dim]`` (and ``labels`` int32 ``[N]``).
    """
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"z must have shape [N, latent_dim] with N >= 1, got {list(z.shape)}")
    out = {"z": z}
    if labels is not None:
        out["labels"] = contract.labels_array(labels, z.shape[0], "row of z")
        if out["labels"].size != z.shape[0]:
            raise ValueError("labels must have one entry per row of z")
    return out


def sample_inputs(num_samples, seed=0, labels=None):
    """Inputs of the ``sample`` signature.

    Args:
        num_samples: int >= 1 (the export refuses more than its ``max_samples``).
        seed: int (int64); the same seed gives the same images.
        labels: conditional models only: int ``[num_samples]``, a scalar (repeated), or
            ``[]`` for labels drawn from the seed. None for unconditional models (a
            conditional model rejects a request without ``labels``).

    Returns:
        dict: ``num_samples`` int32 scalar, ``seed`` int64 scalar (and ``labels`` int32).
    """
    out = {
        "num_samples": _int_scalar(num_samples, "num_samples", np.int32, minimum=1),
        "seed": _int_scalar(seed, "seed", np.int64),
    }
    if labels is not None:
        out["labels"] = contract.labels_array(labels, int(num_samples), "sample")
    return out


def interpolate_inputs(seed_a, seed_b, steps=8, labels=None):
    """Inputs of the ``interpolate`` signature.

    Args:
        seed_a, seed_b: int (int64) seeds of the two end points (``sample(1, seed)``).
        steps: int >= 1, number of images along the path.
        labels: conditional models only: int ``[steps]``, a scalar, or ``[]`` (one label
            drawn from ``seed_a``). None for unconditional models.

    Returns:
        dict: ``seed_a``, ``seed_b`` int64 scalars, ``steps`` int32 scalar (and ``labels``).
    """
    out = {
        "seed_a": _int_scalar(seed_a, "seed_a", np.int64),
        "seed_b": _int_scalar(seed_b, "seed_b", np.int64),
        "steps": _int_scalar(steps, "steps", np.int32, minimum=1),
    }
    if labels is not None:
        out["labels"] = contract.labels_array(labels, int(steps), "step")
    return out


# --------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------


def rest_predict_url(server, model_name, version=None, label=None):
    """``POST`` URL of TF Serving's predict API.

    Args:
        server: ``"http://host:8501"`` (a bare ``host:port`` gets ``http://``).
        model_name: the ``--model_name`` / ``MODEL_NAME`` the server was started with.
        version: optional int version (default: the latest the server has loaded).
        label: optional version label (exclusive with ``version``).

    Returns:
        str: ``{server}/v1/models/{model_name}[/versions/{version}|/labels/{label}]:predict``.
    """
    if not model_name or "/" in model_name:
        raise ValueError(f"bad model name {model_name!r}")
    if version is not None and label is not None:
        raise ValueError("pass version or label, not both")
    server = server.rstrip("/")
    if "://" not in server:
        server = "http://" + server
    url = f"{server}/v1/models/{model_name}"
    if version is not None:
        url += f"/versions/{int(version)}"
    elif label is not None:
        url += f"/labels/{label}"
    return url + ":predict"


def _to_json_value(name, value):
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind in ("S", "U"):
        flat = [_bytes_to_json(name, v) for v in arr.reshape(-1)]
        return np.array(flat, dtype=object).reshape(arr.shape).tolist() if arr.ndim else flat[0]
    if arr.dtype.kind == "f":
        return arr.astype(np.float64).tolist()  # float32 -> shortest repr that round-trips
    return arr.tolist()


def _bytes_to_json(name, v):
    if isinstance(v, (bytes, bytearray)):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(bytes(v)).decode("ascii")}
        return bytes(v).decode("utf-8")
    return str(v)


def build_rest_request(inputs, signature_name=contract.SERVING_SIGNATURE, format="columnar"):  # noqa: A002
    """The JSON body of a TF Serving REST predict request.

    Args:
        inputs: dict name -> array-like, e.g. from :func:`generate_inputs`,
            :func:`sample_inputs` or :func:`interpolate_inputs`.
        signature_name: ``"serving_default"``, ``"sample"`` or ``"interpolate"``.
        format: ``"columnar"`` -> ``{"signature_name": ..., "inputs": {name: value}}``
            (works for every signature); ``"row"`` -> ``{"signature_name": ...,
            "instances": [{name: value_i}, ...]}`` (only when every input has the same
            first dimension, i.e. ``serving_default``).

    Returns:
        dict, ready for ``json.dumps``. Byte strings go out as ``{"b64": ...}`` when the
        input's name ends in ``_bytes`` (TF Serving's convention).
    """
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError("inputs must be a non-empty dict of name -> array")
    body = {"signature_name": signature_name}
    if format == "columnar":
        body["inputs"] = {k: _to_json_value(k, v) for k, v in inputs.items()}
    elif format == "row":
        arrays = {k: np.asarray(v) for k, v in inputs.items()}
        dims = {k: (a.shape[0] if a.ndim else None) for k, a in arrays.items()}
        if None in dims.values() or len(set(dims.values())) != 1:
            raise ValueError(
                f"row format needs every input batched with the same first dimension, got {dims}; "
                "use format='columnar'"
            )
        n = next(iter(dims.values()))
        body["instances"] = [{k: _to_json_value(k, a[i]) for k, a in arrays.items()} for i in range(n)]
    else:
        raise ValueError(f"format must be 'columnar' or 'row', got {format!r}")
    return body


def _from_json(name, value, dtype):
    if name.endswith("_bytes"):
        def dec(v):
            if isinstance(v, dict) and "b64" in v:
                return base64.b64decode(v["b64"])
            if isinstance(v, list):
                return [dec(x) for x in v]
            return v.encode("utf-8") if isinstance(v, str) else v

        decoded = dec(value)
        if isinstance(decoded, list):
            out = np.empty(len(decoded), dtype=object)
            out[:] = decoded
            return out
        return decoded
    arr = np.asarray(value)
    return arr.astype(dtype) if dtype is not None else arr


def decode_rest_response(response, signature_name=contract.SERVING_SIGNATURE, dtypes=None, single_output_name=None):
    """Decode a TF Serving REST predict response into numpy arrays.

    Args:
        response: the body as ``bytes``/``str`` JSON or an already parsed ``dict``:
            ``{"outputs": ...}`` (columnar request) or ``{"predictions": ...}`` (row
            request); ``{"error": msg}`` raises :class:`TFServingError`.
        signature_name: picks the output dtypes (:data:`OUTPUT_DTYPES`): ``images`` is
            float32 for ``serving_default`` and uint8 for ``sample``/``interpolate``.
        dtypes: optional dict name -> numpy dtype overriding those.
        single_output_name: name for a response with a single unnamed output (TF Serving
            drops the name when a signature has one output); default ``"images"``.

    Returns:
        dict name -> np.ndarray: numbers with the signature's dtype; ``*_bytes`` outputs
        as an object array of ``bytes`` (base64 ``{"b64": ...}`` decoded).
    """
    if isinstance(response, (bytes, bytearray)):
        response = response.decode("utf-8")
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except json.JSONDecodeError as e:
            raise TFServingError(f"response is not JSON: {response[:200]!r}") from e
    if not isinstance(response, dict):
        raise TFServingError(f"unexpected response: {type(response).__name__}")
    if "error" in response:
        raise TFServingError(response["error"])
    types = dict(OUTPUT_DTYPES.get(signature_name, {}))
    types.update(dtypes or {})
    single = single_output_name or contract.IMAGES
    if "outputs" in response:
        outputs = response["outputs"]
        if not isinstance(outputs, dict):
            outputs = {single: outputs}
    elif "predictions" in response:
        preds = response["predictions"]
        if preds and all(isinstance(p, dict) and "b64" not in p for p in preds):
            outputs = {k: [p[k] for p in preds] for k in preds[0]}
        else:
            outputs = {single: preds}
    else:
        raise TFServingError(f"response has neither 'outputs' nor 'predictions': keys {sorted(response)}")
    return {k: _from_json(k, v, types.get(k)) for k, v in outputs.items()}


def rest_predict(server, model_name, inputs, signature_name=contract.SERVING_SIGNATURE, *, version=None,
                 format="columnar", timeout=30.0):  # noqa: A002
    """POST a predict request to TF Serving's REST API and decode the answer.

    Args:
        server: ``"http://host:8501"``.
        model_name: served model name.
        inputs: dict from :func:`generate_inputs` / :func:`sample_inputs` / ...
        signature_name: signature to run.
        version: optional int version.
        format: ``"columnar"`` or ``"row"`` (see :func:`build_rest_request`).
        timeout: seconds.

    Returns:
        dict as :func:`decode_rest_response`.

    Raises:
        TFServingError: HTTP error or ``{"error": ...}`` from the server.
    """
    url = rest_predict_url(server, model_name, version=version)
    body = json.dumps(build_rest_request(inputs, signature_name, format)).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (json.JSONDecodeError, AttributeError):
            pass
        raise TFServingError(f"HTTP {e.code} from {url}: {detail}") from e
    except urllib.error.URLError as e:
        raise TFServingError(f"cannot reach {url}: {e.reason}") from e
    return decode_rest_response(payload, signature_name)


# --------------------------------------------------------------------------------------
# gRPC (optional dependency: tensorflow-serving-api)
# --------------------------------------------------------------------------------------


def _serving_apis():
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as e:
        raise ImportError(
            "gRPC needs the optional package tensorflow-serving-api: pip install tensorflow-serving-api"
        ) from e
    return predict_pb2, prediction_service_pb2_grpc


def build_grpc_request(model_name, inputs, signature_name=contract.SERVING_SIGNATURE, version=None):
    """A ``tensorflow.serving.PredictRequest`` for ``PredictionService/Predict``.

    Args:
        model_name: served model name.
        inputs: dict name -> array-like (dtypes as the signature: see
            :func:`generate_inputs`, :func:`sample_inputs`, :func:`interpolate_inputs`).
        signature_name: signature to run.
        version: optional int version (default: the latest loaded).

    Returns:
        ``predict_pb2.PredictRequest`` with ``model_spec`` and one ``TensorProto`` per input.

    Raises:
        ImportError: tensorflow-serving-api is not installed.
    """
    import tensorflow as tf

    predict_pb2, _ = _serving_apis()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        arr = np.asarray(value)
        dtype = contract.INPUT_DTYPES.get(name)
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(arr))
    return request


def decode_grpc_response(response):
    """Decode a ``PredictResponse`` (or anything with an ``outputs`` map of ``TensorProto``).

    Args:
        response: ``predict_pb2.PredictResponse``.

    Returns:
        dict name -> np.ndarray with the tensors' dtypes (``images`` float32 or uint8;
        string outputs such as ``images_png_bytes`` as object arrays of ``bytes``).
    """
    import tensorflow as tf

    outputs = getattr(response, "outputs", None)
    if outputs is None:
        raise TypeError(f"expected a PredictResponse, got {type(response).__name__}")
    return {name: tf.make_ndarray(proto) for name, proto in outputs.items()}


def grpc_predict(target, request, timeout=30.0, channel=None):
    """Send a ``PredictRequest`` to TF Serving's gRPC port and decode the answer.

    Args:
        target: ``"host:8500"``.
        request: from :func:`build_grpc_request`.
        timeout: seconds.
        channel: optional existing ``grpc.Channel`` (then ``target`` is ignored and the
            channel is left open).

    Returns:
        dict as :func:`decode_grpc_response`.

    Raises:
        TFServingError: the RPC failed (message and status code from the server).
        ImportError: tensorflow-serving-api is not installed.
    """
    import grpc

    _, service = _serving_apis()
    own = channel is None
    if own:
        # Sample grids of PNGs can exceed gRPC's default 4 MB message limit.
        channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 256 << 20)])
    try:
        stub = service.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as e:
            raise TFServingError(f"gRPC {e.code().name}: {e.details()}") from e
    finally:
        if own:
            channel.close()
    return decode_grpc_response(response)


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def decode_png_batch(png_bytes):
    """Decode PNG strings (e.g. ``images_png_bytes``) to one uint8 array.

    Args:
        png_bytes: sequence or object array of ``bytes``, PNGs of equal size.

    Returns:
        np.ndarray uint8 ``[N, H, W, C]`` (C = 1 for grayscale).
    """
    from PIL import Image

    out = []
    for b in np.asarray(png_bytes, dtype=object).reshape(-1):
        if not isinstance(b, (bytes, bytearray)):
            raise TypeError(f"expected PNG bytes, got {type(b).__name__}")
        arr = np.asarray(Image.open(io.BytesIO(bytes(b))))
        out.append(arr[..., None] if arr.ndim == 2 else arr)
    if not out:
        raise ValueError("no PNG images to decode")
    return np.stack(out).astype(np.uint8)
