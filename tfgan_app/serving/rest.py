"""TF Serving's REST predict API: the request body, the URL, and the checked answer."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import urllib.error
import urllib.request

import numpy as np

from tfgan_app.export import contract
from tfgan_app.serving.response import TFServingError, check_outputs, malformed as _malformed


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
            :func:`sample_inputs`, :func:`interpolate_inputs`, :func:`translate_inputs` or
            :func:`translate_png_inputs`.
        signature_name: ``"serving_default"``, ``"sample"``, ``"interpolate"``, or a
            translation export's ``"translate"``/``"translate_png"``.
        format: ``"columnar"`` -> ``{"signature_name": ..., "inputs": {name: value}}``
            (works for every signature); ``"row"`` -> ``{"signature_name": ...,
            "instances": [{name: value_i}, ...]}`` (only when every input has the same
            first dimension: ``serving_default``, ``translate``, ``translate_png``).

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


def _from_json(name, value):
    """One output of a REST response as an array: ``*_bytes`` as an object array of bytes
    (``{"b64": ...}`` decoded), anything else as a rectangular numeric array."""
    if name.endswith("_bytes"):
        if not isinstance(value, list):
            raise _malformed(f"{name!r} must be a list of strings, got {type(value).__name__}")
        out = np.empty(len(value), dtype=object)
        for i, v in enumerate(value):
            if isinstance(v, dict) and isinstance(v.get("b64"), str) and len(v) == 1:
                try:
                    out[i] = base64.b64decode(v["b64"], validate=True)
                except (binascii.Error, ValueError) as e:
                    raise _malformed(f"{name}[{i}] is not valid base64 ({e})") from None
            elif isinstance(v, str):
                out[i] = v.encode("utf-8")
            else:
                raise _malformed(f"{name}[{i}] must be {{'b64': str}} or a string, got {v!r:.80}")
        return out
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise _malformed(f"{name!r} is not a rectangular array of numbers ({e})") from None
    if arr.dtype == object:
        raise _malformed(f"{name!r} is not a rectangular array of numbers")
    return arr


def decode_rest_response(response, signature_name=contract.SERVING_SIGNATURE, dtypes=None, single_output_name=None,
                         *, inputs=None, output_shape=None, max_response_bytes=contract.MAX_RESPONSE_BYTES):
    """Decode a TF Serving REST predict response into numpy arrays, checked.

    Args:
        response: the body as ``bytes``/``str`` JSON or an already parsed ``dict``:
            ``{"outputs": ...}`` (columnar request) or ``{"predictions": ...}`` (row
            request); ``{"error": msg}`` raises :class:`TFServingError`.
        signature_name: picks the output dtypes (:data:`OUTPUT_DTYPES`): ``images`` is
            float32 for ``serving_default``/``translate`` and uint8 for
            ``sample``/``interpolate``; and the name of a lone unnamed output
            (``images_png_bytes`` for ``translate_png``, :data:`contract.SINGLE_OUTPUT`).
        dtypes: optional dict name -> numpy dtype overriding those.
        single_output_name: name for a response with a single unnamed output (TF Serving
            drops the name when a signature has one output); default: the signature's
            (:data:`contract.SINGLE_OUTPUT`), else ``"images"`` for a 4-D answer,
            ``"samples"`` (points) otherwise.
        inputs: the request's inputs (as sent): the outputs must hold as many items as
            they ask for (rows of ``z``, ``num_samples``, ``steps``). None: not checked.
        output_shape: the export's output shape without the batch axis (``output_shape``
            of its ``tfgan_app_export.json``), e.g. ``[28, 28, 1]``. None: not checked.
        max_response_bytes: a longer body is refused unparsed.

    Returns:
        dict name -> np.ndarray: numbers with the signature's dtype; ``*_bytes`` outputs
        as an object array of ``bytes`` (base64 ``{"b64": ...}`` decoded). See
        :func:`check_outputs` for what is checked.

    Raises:
        TFServingError: an error from the server, or a malformed response (the reason).
    """
    if isinstance(response, (bytes, bytearray, str)):
        if len(response) > max_response_bytes:
            raise _malformed(f"body of {len(response)} bytes is over max_response_bytes={max_response_bytes}")
        try:
            response = json.loads(response)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError
            raise _malformed(f"body is not JSON ({str(e)[:200]})") from None
    if not isinstance(response, dict):
        raise _malformed(f"expected a JSON object, got {type(response).__name__}")
    if "error" in response:
        raise TFServingError(str(response["error"]))
    unnamed = None
    if "outputs" in response:
        outputs = response["outputs"]
        if not isinstance(outputs, dict):
            unnamed = outputs
    elif "predictions" in response:
        preds = response["predictions"]
        if not isinstance(preds, list):
            raise _malformed(f"'predictions' must be a list, got {type(preds).__name__}")
        if preds and all(isinstance(p, dict) and "b64" not in p for p in preds):
            if any(set(p) != set(preds[0]) for p in preds):
                raise _malformed("the rows of 'predictions' name different outputs")
            outputs = {k: [p[k] for p in preds] for k in preds[0]}
        else:
            unnamed = preds
    else:
        raise _malformed(f"neither 'outputs' nor 'predictions' in keys {sorted(response)[:10]}")
    if unnamed is not None:
        bytes_out = contract.SINGLE_OUTPUT.get(signature_name, "").endswith("_bytes")
        arr = None if bytes_out or single_output_name else _from_json("", unnamed)
        name = single_output_name or contract.SINGLE_OUTPUT.get(signature_name) or (
            contract.IMAGES if arr.ndim == 4 else contract.SAMPLES)
        arrays = {name: arr if arr is not None else _from_json(name, unnamed)}
    else:
        arrays = {str(k): _from_json(str(k), v) for k, v in outputs.items()}
    return check_outputs(arrays, signature_name, inputs=inputs, output_shape=output_shape, dtypes=dtypes)


def rest_predict(server, model_name, inputs, signature_name=contract.SERVING_SIGNATURE, *, version=None,
                 format="columnar", timeout=30.0, output_shape=None,  # noqa: A002
                 max_response_bytes=contract.MAX_RESPONSE_BYTES):
    """POST a predict request to TF Serving's REST API and decode the answer.

    Args:
        server: ``"http://host:8501"``.
        model_name: served model name.
        inputs: dict from :func:`generate_inputs` / :func:`sample_inputs` / ...
        signature_name: signature to run.
        version: optional int version.
        format: ``"columnar"`` or ``"row"`` (see :func:`build_rest_request`).
        timeout: seconds.
        output_shape: optional, the export's output shape (see :func:`decode_rest_response`).
        max_response_bytes: a longer answer is refused (by its ``Content-Length``, or after
            reading one byte more than the limit).

    Returns:
        dict as :func:`decode_rest_response`, checked against ``inputs``.

    Raises:
        TFServingError: HTTP error, ``{"error": ...}`` from the server, or a malformed answer.
    """
    url = rest_predict_url(server, model_name, version=version)
    body = json.dumps(build_rest_request(inputs, signature_name, format)).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_response_bytes:
                raise _malformed(f"Content-Length {length} is over max_response_bytes={max_response_bytes}")
            payload = resp.read(max_response_bytes + 1)
    except urllib.error.HTTPError as e:
        detail = e.read(1 << 16).decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise TFServingError(f"HTTP {e.code} from {url}: {detail}") from e
    except urllib.error.URLError as e:
        raise TFServingError(f"cannot reach {url}: {e.reason}") from e
    except (OSError, http.client.HTTPException) as e:  # timeouts, connections cut mid-body
        raise TFServingError(f"reading the answer of {url} failed: {e!r}") from e
    return decode_rest_response(payload, signature_name, inputs=inputs, output_shape=output_shape,
                                max_response_bytes=max_response_bytes)
