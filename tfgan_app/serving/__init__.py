"""Client helpers for a generator served by TF Serving (REST and gRPC).

The request side builds exactly what TF Serving's APIs take for the signatures written by
:func:`tfgan_app.export.export_generator`; the response side turns what the server sends
back into numpy arrays (``images`` float32 or uint8, ``images_png_bytes`` as ``bytes``)
and checks them before handing them over: a server (or a proxy) that answers with the
wrong dtype, out-of-range or non-finite values, another number of items than asked for,
another image shape than the export's, or more bytes or pixels than the limits in
:mod:`tfgan_app.export.contract` gets a :class:`TFServingError` naming the reason, never
a silently wrapped or truncated array (``docs/serving.md``, "What the client checks").

REST needs only the standard library, numpy and Pillow (for PNG decoding); gRPC responses
are decoded without TensorFlow too. Importing this package imports neither TensorFlow nor
matplotlib. Signature names, dtypes and limits come from :mod:`tfgan_app.export.contract`,
which the exporter writes by. gRPC needs the optional ``tensorflow-serving-api`` package
(``pip install tensorflow-serving-api``), imported only by the gRPC functions.

Modules: :mod:`.inputs` (what a request carries), :mod:`.rest`, :mod:`.grpc_client`,
:mod:`.response` (what a response may contain; PNG decoding).

Typical use::

    from tfgan_app import serving
    inputs = serving.sample_inputs(num_samples=4, seed=42)
    out = serving.rest_predict("http://localhost:8501", "mnist_dcgan", inputs, signature_name="sample",
                               output_shape=[28, 28, 1])
    images = serving.decode_png_batch(out["images_png_bytes"])   # uint8 [4, 28, 28, 1]

    request = serving.build_grpc_request("mnist_dcgan", inputs, signature_name="sample")
    out = serving.grpc_predict("localhost:8500", request)

    # an image-to-image export (tfgan-app export of a translation run)
    pngs = [open("edges.png", "rb").read()]
    out = serving.rest_predict("http://localhost:8501", "digits_edges",
                               serving.translate_png_inputs(pngs), signature_name="translate_png")
    out["images_png_bytes"][0]                                    # the translated PNG file
"""

from tfgan_app.serving.grpc_client import (
    build_grpc_request,
    decode_grpc_response,
    grpc_predict,
    tensor_proto_to_numpy,
)
from tfgan_app.serving.inputs import (
    generate_inputs,
    interpolate_inputs,
    sample_inputs,
    translate_inputs,
    translate_png_inputs,
)
from tfgan_app.serving.response import (
    OUTPUT_DTYPES,
    TFServingError,
    check_outputs,
    decode_png_batch,
    requested_count,
)
from tfgan_app.serving.rest import build_rest_request, decode_rest_response, rest_predict, rest_predict_url

__all__ = [
    "OUTPUT_DTYPES",
    "TFServingError",
    "generate_inputs",
    "sample_inputs",
    "interpolate_inputs",
    "translate_inputs",
    "translate_png_inputs",
    "rest_predict_url",
    "build_rest_request",
    "decode_rest_response",
    "rest_predict",
    "build_grpc_request",
    "decode_grpc_response",
    "grpc_predict",
    "tensor_proto_to_numpy",
    "requested_count",
    "check_outputs",
    "decode_png_batch",
]
