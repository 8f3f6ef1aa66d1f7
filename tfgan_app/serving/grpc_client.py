"""TF Serving's gRPC ``PredictionService/Predict``: the request (needs the optional
``tensorflow-serving-api``) and the checked answer (decoded without TensorFlow)."""

from __future__ import annotations

import math

import numpy as np

from tfgan_app.export import contract
from tfgan_app.serving.response import TFServingError, check_outputs, exact, malformed as _malformed


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
            :func:`generate_inputs`, :func:`sample_inputs`, :func:`interpolate_inputs`,
            :func:`translate_inputs`, :func:`translate_png_inputs`; PNG files go out as a
            string tensor).
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


#: ``TensorProto.dtype`` (TensorFlow's ``DataType`` enum) -> (numpy dtype, field of typed
#: values) for the dtypes the client decodes.
_PROTO_DTYPES = {1: ("float32", "float_val"), 2: ("float64", "double_val"), 3: ("int32", "int_val"),
                 4: ("uint8", "int_val"), 5: ("int16", "int_val"), 6: ("int8", "int_val"),
                 7: (object, "string_val"), 9: ("int64", "int64_val"), 10: ("bool", "bool_val")}


def tensor_proto_to_numpy(proto, name="tensor"):
    """A ``TensorProto`` as a numpy array, without TensorFlow.

    What the proto's shape claims is checked against what it carries before anything is
    allocated: ``tensor_content`` must hold exactly ``prod(shape) * itemsize`` bytes and
    typed values (``float_val``, ``int_val``, ``string_val``, ...) exactly ``prod(shape)``
    entries (TensorFlow's "repeat the last value" shorthand is refused: a 20-byte proto
    could otherwise claim 100 MB). Integers must fit the dtype (no wrap-around).

    Raises:
        TFServingError: unsupported dtype, unknown rank, or a size claim the payload does not back.
    """
    if proto.dtype not in _PROTO_DTYPES:
        raise _malformed(f"{name!r} has an unsupported dtype (DataType enum {proto.dtype})")
    dtype, field = _PROTO_DTYPES[proto.dtype]
    if proto.tensor_shape.unknown_rank or any(d.size < 0 for d in proto.tensor_shape.dim):
        raise _malformed(f"{name!r} has no fully known shape")
    dims = [int(d.size) for d in proto.tensor_shape.dim]
    count = math.prod(dims)
    if dtype is not object and proto.tensor_content:
        itemsize = np.dtype(dtype).itemsize
        if len(proto.tensor_content) != count * itemsize:
            raise _malformed(f"{name!r} claims shape {dims} of {dtype} ({count * itemsize} bytes) but "
                             f"carries {len(proto.tensor_content)} bytes")
        return np.frombuffer(proto.tensor_content, np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(dims)
    values = getattr(proto, field)
    if len(values) != count:
        raise _malformed(f"{name!r} claims shape {dims} ({count} values) but carries {len(values)}")
    if dtype is object:
        out = np.empty(count, dtype=object)
        out[:] = [bytes(v) for v in values]
        return out.reshape(dims)
    return exact(name, np.array(values), np.dtype(dtype)).reshape(dims)


def decode_grpc_response(response, signature_name=None, *, inputs=None, output_shape=None):
    """Decode a ``PredictResponse`` (or anything with an ``outputs`` map of ``TensorProto``).

    Args:
        response: ``predict_pb2.PredictResponse``.
        signature_name: the signature that answered; default: the response's
            ``model_spec.signature_name`` when set. Outputs must have its dtypes.
        inputs: optional, the request's inputs (numpy values) to check the item count.
        output_shape: optional, the export's output shape without the batch axis.

    Returns:
        dict name -> np.ndarray with the tensors' dtypes (``images`` float32 or uint8;
        string outputs such as ``images_png_bytes`` as object arrays of ``bytes``),
        decoded by :func:`tensor_proto_to_numpy` and checked by :func:`check_outputs`.

    Raises:
        TFServingError: a malformed response (the reason).
        TypeError: ``response`` has no ``outputs``.
    """
    outputs = getattr(response, "outputs", None)
    if outputs is None:
        raise TypeError(f"expected a PredictResponse, got {type(response).__name__}")
    if signature_name is None:
        signature_name = getattr(getattr(response, "model_spec", None), "signature_name", "") or None
    arrays = {name: tensor_proto_to_numpy(proto, name) for name, proto in outputs.items()}
    return check_outputs(arrays, signature_name, inputs=inputs, output_shape=output_shape)


def grpc_predict(target, request, timeout=30.0, channel=None, *, output_shape=None,
                 max_response_bytes=contract.MAX_RESPONSE_BYTES):
    """Send a ``PredictRequest`` to TF Serving's gRPC port and decode the answer.

    Args:
        target: ``"host:8500"``.
        request: from :func:`build_grpc_request`.
        timeout: seconds.
        channel: optional existing ``grpc.Channel`` (then ``target`` and
            ``max_response_bytes`` are ignored and the channel is left open).
        output_shape: optional, the export's output shape (see :func:`decode_grpc_response`).
        max_response_bytes: the channel's receive limit.

    Returns:
        dict as :func:`decode_grpc_response`, checked against the request's inputs.

    Raises:
        TFServingError: the RPC failed (message and status code from the server), or the
            answer is malformed.
        ImportError: tensorflow-serving-api is not installed.
    """
    import grpc

    _, service = _serving_apis()
    signature = request.model_spec.signature_name or contract.SERVING_SIGNATURE
    key = contract.batch_input(signature, request.inputs)
    inputs = {key: tensor_proto_to_numpy(request.inputs[key], key)} if key else None
    own = channel is None
    if own:
        channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", max_response_bytes)])
    try:
        stub = service.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as e:
            raise TFServingError(f"gRPC {e.code().name}: {e.details()}") from e
    finally:
        if own:
            channel.close()
    return decode_grpc_response(response, signature, inputs=inputs, output_shape=output_shape)
