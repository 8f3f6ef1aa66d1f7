"""What a TF Serving response may contain, REST and gRPC alike, and PNG decoding.

Every check raises :class:`TFServingError` with the reason; the limits and dtypes are
:mod:`tfgan_app.export.contract`'s.
"""

from __future__ import annotations

import io
import math
import zlib

import numpy as np

from tfgan_app.export import contract

#: Output dtypes of the export's signatures, used to type JSON numbers on decoding.
OUTPUT_DTYPES = contract.OUTPUT_DTYPES


class TFServingError(RuntimeError):
    """TF Serving answered with an error (``{"error": ...}``, an HTTP or gRPC status), or
    with a response the client refuses ("malformed response: <reason>"): not JSON, bad
    base64 or PNG data, values of the wrong type, out of their dtype's range or not finite,
    another item count than the request's, another item shape than the export's, or over a
    size limit."""


def malformed(reason):
    return TFServingError(f"malformed response: {reason}")


def exact(name, arr, dtype):
    """``arr`` cast to ``dtype`` when every value is exactly representable: integers within the
    dtype's range (no wrap-around), finite floats within its range; TFServingError otherwise."""
    if arr.dtype.kind not in "biuf":
        raise malformed(f"{name!r} must hold numbers, got {arr.dtype} values")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise malformed(f"{name!r} holds {int(np.sum(~np.isfinite(arr)))} NaN or infinite values")
    if arr.size == 0 or arr.dtype == dtype:
        return arr.astype(dtype)
    if (dtype.kind == "b") != (arr.dtype.kind == "b"):
        raise malformed(f"{name!r} must hold {dtype} values, got {arr.dtype}")
    lo, hi = arr.min(), arr.max()
    if dtype.kind in "iu":
        if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
            raise malformed(f"{name!r} must hold integers ({dtype}), got fractions")
        info = np.iinfo(dtype)
        if lo < info.min or hi > info.max:
            raise malformed(f"{name!r} ({dtype}) must lie in [{info.min}, {info.max}], got values in [{lo}, {hi}]")
    elif max(abs(float(lo)), abs(float(hi))) > float(np.finfo(dtype).max):
        raise malformed(f"{name!r} holds values beyond {dtype}'s range ({lo}, {hi})")
    return arr.astype(dtype)


def requested_count(inputs, signature_name=contract.SERVING_SIGNATURE):
    """How many items the request ``inputs`` asks of ``signature_name`` (rows of ``z``,
    ``num_samples``, ``steps``, source images or PNG files: the outputs' first dimension), or
    None if it cannot tell."""
    key = contract.batch_input(signature_name, inputs)
    if key is None:
        return None
    value = np.asarray(inputs[key], dtype=object if key == contract.SOURCE_PNG else None)
    if key in contract.BATCHED_INPUTS:
        return int(value.shape[0]) if value.ndim == contract.BATCHED_INPUTS[key] else None
    return int(value) if value.ndim == 0 and value.dtype.kind in "iu" else None


def check_outputs(outputs, signature_name=contract.SERVING_SIGNATURE, *, inputs=None, output_shape=None,
                  dtypes=None):
    """Check decoded outputs against the export's contract and the request.

    Args:
        outputs: dict name -> array (numbers, or object arrays of bytes for ``*_bytes``).
        signature_name: the signature's output dtypes (:data:`OUTPUT_DTYPES`) apply.
        inputs: the request's inputs; every output must hold :func:`requested_count` items.
        output_shape: the export's output shape without the batch axis: ``images`` and
            ``samples`` must have it.
        dtypes: optional dict name -> numpy dtype overriding the signature's.

    Returns:
        dict name -> np.ndarray, numbers cast (losslessly) to the signature's dtypes.

    Raises:
        TFServingError: no outputs; ``*_bytes`` that are not a list of byte strings;
            numbers that are not numbers, not finite, or out of their dtype's range (uint8
            in ``[0, 255]``); ``images`` that are not ``[N, H, W, C]``; an item count other
            than the request's; an item shape other than ``output_shape``.
    """
    if not outputs:
        raise malformed("no outputs")
    types = dict(OUTPUT_DTYPES.get(signature_name, {}))
    types.update(dtypes or {})
    n = requested_count(inputs, signature_name)
    checked = {}
    for name, arr in outputs.items():
        if name.endswith("_bytes"):
            if arr.dtype != object or arr.ndim != 1 or not all(isinstance(b, bytes) for b in arr):
                raise malformed(f"{name!r} must be a list of byte strings")
        else:
            arr = exact(name, arr, np.dtype(types.get(name, arr.dtype)))
            if name == contract.IMAGES and arr.ndim != 4:
                raise malformed(f"'images' must have shape [N, H, W, C], got {list(arr.shape)}")
            if name in (contract.IMAGES, contract.SAMPLES) and output_shape is not None \
                    and tuple(arr.shape[1:]) != tuple(output_shape):
                raise malformed(f"{name!r} has item shape {list(arr.shape[1:])}, the export's is "
                                 f"{list(output_shape)}")
        if n is not None and (arr.ndim == 0 or arr.shape[0] != n):
            got = arr.shape[0] if arr.ndim else "no"
            raise malformed(f"{name!r} holds {got} items, the request asked for {n} "
                             f"({contract.batch_input(signature_name, inputs)})")
        checked[name] = arr
    return checked


#: PNG modes the client decodes (8 bits per channel) and their channel counts.
_PNG_CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def decode_png_batch(png_bytes, output_shape=None, *, max_image_pixels=contract.MAX_IMAGE_PIXELS,
                     max_decoded_bytes=contract.MAX_DECODED_BYTES):
    """Decode PNG strings (e.g. ``images_png_bytes``) to one uint8 array.

    Every PNG's header (size, mode) is read and checked before any pixel is decoded, so a
    small file that claims a huge image (a decompression bomb) is refused undecoded.

    Args:
        png_bytes: sequence or object array of ``bytes``, PNGs of equal size, 8 bits per
            channel (grayscale, grayscale+alpha, RGB or RGBA).
        output_shape: optional ``[H, W, C]`` every image must have (the export's).
        max_image_pixels: largest ``H * W`` of one image.
        max_decoded_bytes: largest decoded batch (``N * H * W * C`` bytes).

    Returns:
        np.ndarray uint8 ``[N, H, W, C]`` (C = 1 for grayscale).

    Raises:
        TFServingError: no images, not PNG bytes, an unsupported mode, images of different
            sizes or not of ``output_shape``, over a limit, or corrupt pixel data.
    """
    import warnings

    from PIL import Image

    items = list(np.asarray(png_bytes, dtype=object).reshape(-1))
    if not items:
        raise malformed("no PNG images to decode")
    opened, shape = [], None
    for i, b in enumerate(items):
        if not isinstance(b, (bytes, bytearray)):
            raise malformed(f"image {i}: expected PNG bytes, got {type(b).__name__}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(io.BytesIO(bytes(b)), formats=["PNG"])
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise malformed(f"image {i} is not a PNG ({e})") from None
        w, h = im.size
        if w * h > max_image_pixels:
            raise malformed(f"image {i} claims {w}x{h} pixels, over max_image_pixels={max_image_pixels}")
        if im.mode not in _PNG_CHANNELS:
            raise malformed(f"image {i} has PNG mode {im.mode!r}; expected one of {sorted(_PNG_CHANNELS)}")
        this = (h, w, _PNG_CHANNELS[im.mode])
        if output_shape is not None and this != tuple(output_shape):
            raise malformed(f"image {i} is {list(this)}, the export's images are {list(output_shape)}")
        if shape is not None and this != shape:
            raise malformed(f"image {i} is {list(this)}, image 0 is {list(shape)}")
        shape = this
        opened.append(im)
    if len(opened) * math.prod(shape) > max_decoded_bytes:
        raise malformed(f"{len(opened)} images of {list(shape)} would decode to "
                         f"{len(opened) * math.prod(shape)} bytes, over max_decoded_bytes={max_decoded_bytes}")
    out = np.empty((len(opened), *shape), np.uint8)
    for i, im in enumerate(opened):
        try:
            out[i] = np.asarray(im).reshape(shape)
        except (OSError, ValueError, SyntaxError, zlib.error) as e:
            raise malformed(f"image {i}: corrupt PNG data ({e})") from None
    return out
