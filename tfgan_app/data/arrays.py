"""In-memory images: ``from_arrays``.

Value-range rule (when ``value_range`` is not given):

* ``uint8`` -> ``[0, 255]``;
* floating point with a negative value -> ``[-1, 1]`` (every value must lie in it);
* floating point with no negative value -> ``[0, 1]`` (every value must lie in it);
* any other dtype (``int64``, ``uint16``, ...) or floats outside those ranges: pass
  ``value_range=(low, high)`` explicitly (e.g. ``(0, 16)`` for scikit-learn's digits).

Images are mapped affinely from the value range to ``[-1, 1]``; values outside a given
``value_range`` are an error, as are NaN/inf.
"""

from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf

from tfgan_app.data import _pipeline as P

_CHANNELS = (1, 2, 3, 4)


def _as_images(x) -> np.ndarray:
    """Check an image array and return it as ``[N, H, W, C]`` (no copy when possible)."""
    if isinstance(x, tf.Tensor):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) and
                                 not np.issubdtype(x.dtype, np.complexfloating)):
        raise ValueError(f"images must be a numeric array (uint8, int or float), got dtype "
                         f"{x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    elif x.ndim != 4:
        raise ValueError(f"images must have shape [N, H, W] or [N, H, W, C], got shape "
                         f"{list(x.shape)} (rank {x.ndim})")
    if x.shape[0] == 0:
        raise ValueError("images array is empty (N=0)")
    if x.shape[-1] not in _CHANNELS:
        hint = (" -- it looks channels-first; transpose to [N, H, W, C]"
                if x.shape[1] in _CHANNELS else "")
        raise ValueError(f"images must be channels-last with 1-4 channels, got shape "
                         f"{list(x.shape)}{hint}")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"images have an empty spatial dimension: shape {list(x.shape)}")
    return x


def _value_range(x: np.ndarray, value_range):
    """Decide the input value range (see module docstring) and validate the data against it."""
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or infinite values")
    lo, hi = (float(x.min()), float(x.max()))
    if value_range is not None:
        try:
            low, high = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ValueError(f"value_range must be a (low, high) pair, got {value_range!r}")
        if not high > low:
            raise ValueError(f"value_range must have low < high, got {value_range!r}")
        if lo < low or hi > high:
            raise ValueError(f"images have values in [{lo:g}, {hi:g}], outside the given "
                             f"value_range ({low:g}, {high:g})")
        return low, high
    if x.dtype == np.uint8:
        return 0.0, 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"cannot infer the value range of {x.dtype} images (values in [{lo:g}, {hi:g}]); "
            "pass value_range=(low, high), or give uint8 [0, 255] or float [0, 1] / [-1, 1]")
    if lo < 0:
        if lo >= -1.0 and hi <= 1.0:
            return -1.0, 1.0
    elif hi <= 1.0:
        return 0.0, 1.0
    raise ValueError(
        f"float images have values in [{lo:g}, {hi:g}]: expected [0, 1] or [-1, 1]; pass "
        "value_range=(low, high) for any other range (e.g. (0, 255))")


def _as_labels(y, n: int, num_classes=None):
    """Check labels and return ``(int32 [N], num_classes)``."""
    if isinstance(y, tf.Tensor):
        y = y.numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"labels must have shape [N] (integer class ids), got shape "
                         f"{list(y.shape)}; convert one-hot labels with argmax")
    if y.shape[0] != n:
        raise ValueError(f"images and labels have different lengths: {n} images, "
                         f"{y.shape[0]} labels")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("labels must be integer class ids; got non-integral floats")
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"labels must be >= 0, got minimum {y.min()}")
    top = int(y.max())
    if num_classes is None:
        num_classes = top + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) \
            or num_classes <= 0:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    elif top >= num_classes:
        raise ValueError(f"label {top} is out of range for num_classes={num_classes}")
    return y.astype(np.int32), int(num_classes)


def _resize_array(x: np.ndarray, size, chunk: int = 1024) -> np.ndarray:
    """Resize ``[N, H, W, C]`` images to ``size`` (bilinear, antialias), keeping the dtype."""
    out = []
    for i in range(0, x.shape[0], chunk):
        r = tf.image.resize(tf.cast(x[i:i + chunk], tf.float32), size, method="bilinear",
                            antialias=True).numpy()
        out.append(r)
    r = np.concatenate(out, axis=0)
    if x.dtype == np.uint8:
        return np.clip(np.round(r), 0, 255).astype(np.uint8)
    return r.astype(np.float32)


def prepare_arrays(x, y=None, *, value_range=None, num_classes=None, image_size=None):
    """Validate and convert arrays: ``(x_store, y_int32_or_None, (low, high), num_classes)``.

    ``x_store`` is ``uint8`` for ``uint8`` input (scaled per batch in the pipeline) and
    ``float32`` otherwise (already in ``[-1, 1]`` then, with ``(low, high) == (-1, 1)``).
    """
    x = _as_images(x)
    low, high = _value_range(x, value_range)
    labels, k = (None, None) if y is None else _as_labels(y, x.shape[0], num_classes)
    if y is None and num_classes is not None:
        k = int(num_classes)
    size = P.normalize_image_size(image_size)
    if x.dtype == np.uint8:
        if size is not None and tuple(x.shape[1:3]) != size:
            x = _resize_array(x, size)
        return np.ascontiguousarray(x), labels, (low, high), k
    x = x.astype(np.float32, copy=False)
    if (low, high) != (-1.0, 1.0):
        a = 2.0 / (high - low)
        x = (x * a + (-1.0 - low * a)).astype(np.float32)
    if size is not None and tuple(x.shape[1:3]) != size:
        x = np.clip(_resize_array(x, size), -1.0, 1.0)
    return np.ascontiguousarray(x), labels, (-1.0, 1.0), k


def from_arrays(x, y=None, *, with_labels=None, value_range=None, num_classes=None,
                image_size=None, batch_size: int = P.DEFAULT_BATCH_SIZE, shuffle: bool = True,
                seed: int = 0, deterministic: bool = True, name: str = "arrays",
                **info_extra):
    """A ``tf.data`` pipeline over in-memory images (and optional labels).

    Args:
      x: images, ``[N, H, W]`` or ``[N, H, W, C]`` (C in 1..4), numpy or tensor. Value range:
        ``uint8`` -> ``[0, 255]``; float with negatives -> ``[-1, 1]``; other float ->
        ``[0, 1]``; anything else needs ``value_range``.
      y: optional integer class ids, ``[N]`` (or ``[N, 1]``), ``>= 0``.
      with_labels: yield ``(image, label)`` tuples. Default: ``y is not None``. ``True``
        without ``y`` is an error.
      value_range: ``(low, high)`` of ``x``, mapped to ``[-1, 1]``.
      num_classes: number of classes (default ``max(y) + 1``).
      image_size: ``None`` (keep), an int or ``(H, W)``: resize once, up front (bilinear,
        antialiased).
      batch_size: the global batch size; the last partial batch is dropped.
      shuffle, seed: reshuffle every epoch, reproducibly for a given ``seed``.
      deterministic: reproducible element order (``tf.data.Options.deterministic``).
      name: recorded in the info dict.

    Returns:
      ``tf.data.Dataset`` yielding ``float32 [batch_size, H, W, C]`` in ``[-1, 1]``, or
      ``(that, int32 [batch_size])``; ``ds.info`` holds the info dict (see
      :func:`tfgan_app.data.dataset_info`). In-memory data needs no ``cache``.

    Raises:
      ValueError: wrong rank/dtype/channels, values outside the range, NaNs, label length
        mismatch, labels requested without ``y``, fewer examples than ``batch_size``.
    """
    batch_size = P.check_batch_size(batch_size)
    if with_labels is None:
        with_labels = y is not None
    if with_labels and y is None:
        raise ValueError("with_labels=True but no labels were given: pass y=...")
    xs, labels, vr, k = prepare_arrays(x, y, value_range=value_range,
                                       num_classes=num_classes, image_size=image_size)
    P.check_enough(xs.shape[0], batch_size, f"the {name} data")
    ds = P.in_memory_pipeline(xs, labels if with_labels else None, batch_size=batch_size,
                              shuffle=shuffle, seed=seed, deterministic=deterministic,
                              value_range=vr)
    info = P.make_info(name=name, source=info_extra.pop("source", "arrays"),
                       sample_shape=xs.shape[1:], num_examples=xs.shape[0],
                       batch_size=batch_size, with_labels=with_labels, num_classes=k,
                       seed=seed, **info_extra)
    return P.attach(ds, info)
