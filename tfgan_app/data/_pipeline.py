"""Shared tf.data plumbing: the one way every source is shuffled, batched, scaled and tuned.

Two pipeline shapes are used:

* **in memory** (arrays, digits, IDX files, toy points): the data sits in one tensor; its
  slices are cached, shuffled and batched, and each batch is scaled in one vectorised op.
* **per element** (TFDS, image folders): elements are decoded/resized in parallel, cached as
  ``uint8`` (``cache=True``: in memory, a string: a cache file), shuffled, batched
  (``drop_remainder=True``) and then scaled to ``[-1, 1]`` one batch at a time.

Both end with a prefetch (``AUTOTUNE`` per element, :data:`IN_MEMORY_PREFETCH` batches in
memory, where autotuning is off) and :func:`pipeline_options`. Every dataset returned by
:mod:`tfgan_app.data` carries a JSON-ready ``info`` dict (see :func:`dataset_info`).
"""

from __future__ import annotations

import numbers
import os

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_BATCH_SIZE = 128
#: Default shuffle buffer budget for per-element pipelines: the whole dataset when it fits in
#: this many bytes, otherwise as many elements as fit (at least 1,000).
SHUFFLE_BUFFER_BYTES = 256 * 1024 * 1024
IMAGE_VALUE_RANGE = (-1.0, 1.0)
IN_MEMORY_PREFETCH = 2  # batches ready ahead of the training step (in-memory sources)


def pipeline_options(deterministic: bool = True, in_memory: bool = False) -> tf.data.Options:
    """The ``tf.data.Options`` every source applies.

    * ``deterministic``: element order is reproducible for a given ``seed`` (set ``False`` to
      let parallel maps return elements out of order, a little faster).
    * autotuning on, map parallelization on; parallel batching on except for in-memory
      sources.
    * ``in_memory=True``: auto-sharding by ``DATA`` (there are no files to shard by under a
      multi-worker strategy), and autotuning OFF: there is nothing to tune in slices of a
      tensor, and a live autotuning thread makes every ``fit()`` return late. tf.data's
      autotuner wakes up on an exponential back-off (10 ms, 20 ms, ... 2.56 s, ...) and the
      iterator's destruction at the end of ``fit()`` waits for its next wake-up: measured up to
      2.6 s per ``fit()`` call on the DCGAN benchmark (benchmarks/dcgan_throughput.py, whose
      ``fit`` calls returned exactly on the back-off's ticks), 0 s with autotuning off.
    """
    opts = tf.data.Options()
    opts.deterministic = bool(deterministic)
    opts.autotune.enabled = not in_memory
    opts.experimental_optimization.map_parallelization = True
    # Parallel batching pays for decoding pipelines; for in-memory slices it only adds
    # thread hand-offs (measured slower on the toy presets).
    opts.experimental_optimization.parallel_batch = not in_memory
    if in_memory:
        opts.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
    return opts


def dataset_info(dataset) -> dict:
    """The ``info`` dict attached to a dataset made by :mod:`tfgan_app.data`.

    Keys (JSON-ready): ``name``, ``source``, ``image_shape`` (``[H, W, C]`` or ``None`` for
    2-D toy data), ``sample_shape`` (shape of one unbatched sample; ``data_shape``: the same),
    ``num_classes`` (``None`` when the source has no labels), ``class_names``,
    ``num_examples``, ``batch_size``,
    ``steps_per_epoch`` (``num_examples // batch_size``; the last partial batch is dropped),
    ``with_labels``, ``value_range`` (``[-1.0, 1.0]`` for images), ``seed``, plus
    source-specific keys (``split``, ``path``, ``spec`` for toy data, ...).

    The dict lives on the Python object returned; datasets derived from it with further
    ``tf.data`` transformations do not carry it.
    """
    info = getattr(dataset, "info", None)
    if not isinstance(info, dict):
        raise ValueError("this dataset carries no tfgan_app info dict: build it with a "
                         "tfgan_app.data function (or dataset_by_name)")
    return info


def check_batch_size(batch_size) -> int:
    """Validate a global batch size (a positive int) and return it as ``int``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def check_enough(num_examples, batch_size, what: str) -> None:
    """Raise if a known ``num_examples`` cannot fill one ``drop_remainder`` batch."""
    if num_examples is not None and num_examples < batch_size:
        raise ValueError(
            f"{what} has {num_examples} examples, fewer than batch_size={batch_size}; "
            "batches drop the remainder, so the dataset would be empty. Use a smaller "
            "batch_size.")


def normalize_image_size(image_size):
    """``None``, an int ``s`` (square) or ``(H, W)`` -> ``None`` or a tuple of two ints."""
    if image_size is None:
        return None
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in image_size)
        ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                 for v in image_size)
    except (TypeError, ValueError):
        ok = False
    if not ok or h <= 0 or w <= 0:
        raise ValueError(f"image_size must be a positive int or a (height, width) pair, "
                         f"got {image_size!r}")
    return (h, w)


def scale_to_unit(x, low: float, high: float):
    """Affine map of ``x`` from ``[low, high]`` to ``[-1, 1]``, as ``float32``."""
    x = tf.cast(x, tf.float32)
    a = 2.0 / (high - low)
    b = -1.0 - low * a
    return x * a + b


def resize_uint8(image, size, center_crop=False):
    """Resize one ``uint8 [H, W, C]`` image (optionally after a central crop) to ``size``.

    ``center_crop``: ``False``; ``True`` (the largest central square) or an int ``s`` (the
    central ``s x s`` square). Resizing is bilinear with antialiasing; the result is rounded
    back to ``uint8`` so that caches stay small.
    """
    if center_crop:
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        if center_crop is True:
            s = tf.minimum(h, w)
        else:
            s = tf.minimum(tf.constant(int(center_crop)), tf.minimum(h, w))
        image = tf.image.crop_to_bounding_box(image, (h - s) // 2, (w - s) // 2, s, s)
    if size is not None:
        image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear",
                                antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    return image


def in_memory_pipeline(x: np.ndarray, y, *, batch_size: int, shuffle: bool, seed: int,
                       deterministic: bool, value_range=None):
    """Batches gathered from in-memory arrays.

    ``x``: ``[N, ...]`` array (``uint8`` or ``float32``); ``y``: ``int32 [N]`` or ``None``.
    ``value_range=(low, high)``: batches of ``x`` are mapped affinely to ``[-1, 1]``
    (``float32``); ``None``: ``x`` is only cast to ``float32``. Yields ``x_batch`` or
    ``(x_batch, y_batch)`` with a static batch dimension (``drop_remainder``).
    """
    n = int(x.shape[0])
    check_enough(n, batch_size, "the data")
    x_t = tf.constant(x)
    y_t = None if y is None else tf.constant(np.asarray(y, dtype=np.int32))
    # Slices of the in-memory tensors, cached, then shuffled and batched: measured on the
    # d2l-gaussian preset (batch 8, benchmarks/toy_throughput.py) this feeds GANModel.fit ~1.6x
    # faster than shuffling indices and gathering each batch in a parallel map; the shuffle
    # order is the same permutation for the same seed.
    ds = tf.data.Dataset.from_tensor_slices(x_t if y_t is None else (x_t, y_t)).cache()
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True)

    def scale(xb, yb=None):
        xb = (tf.cast(xb, tf.float32) if value_range is None
              else scale_to_unit(xb, *value_range))
        return xb if yb is None else (xb, yb)

    if value_range is not None or x.dtype != np.float32:
        ds = ds.map(scale, num_parallel_calls=os.cpu_count() or 1, deterministic=deterministic)
    # Fixed sizes: autotuning is off for in-memory sources (see pipeline_options).
    ds = ds.prefetch(IN_MEMORY_PREFETCH)
    return ds.with_options(pipeline_options(deterministic, in_memory=True))


def default_shuffle_buffer(num_examples, element_bytes: int) -> int:
    """Whole dataset if it fits :data:`SHUFFLE_BUFFER_BYTES`, else as many as fit (>= 1000)."""
    fit = max(1000, SHUFFLE_BUFFER_BYTES // max(1, int(element_bytes)))
    return fit if num_examples is None else max(1, min(int(num_examples), fit))


def element_pipeline(ds: tf.data.Dataset, *, batch_size: int, shuffle: bool, seed: int,
                     cache, deterministic: bool, shuffle_buffer, num_examples,
                     element_bytes: int, with_labels: bool):
    """Finish a per-element dataset of ``uint8`` images (or ``(image, int32 label)``).

    cache -> shuffle(seeded, reshuffled every epoch) -> batch(drop_remainder) -> scale to
    ``[-1, 1]`` per batch -> prefetch, with :func:`pipeline_options`.
    """
    if cache is True:
        ds = ds.cache()
    elif cache:
        ds = ds.cache(str(cache))
    if shuffle:
        buf = (default_shuffle_buffer(num_examples, element_bytes) if shuffle_buffer is None
               else int(shuffle_buffer))
        if buf <= 0:
            raise ValueError(f"shuffle_buffer must be positive, got {shuffle_buffer!r}")
        ds = ds.shuffle(buf, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE,
                  deterministic=deterministic)
    if with_labels:
        ds = ds.map(lambda x, y: (scale_to_unit(x, 0.0, 255.0), y),
                    num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    else:
        ds = ds.map(lambda x: scale_to_unit(x, 0.0, 255.0), num_parallel_calls=AUTOTUNE,
                    deterministic=deterministic)
    ds = ds.prefetch(AUTOTUNE)
    return ds.with_options(pipeline_options(deterministic, in_memory=False))


def make_info(*, name, source, sample_shape, num_examples, batch_size, with_labels,
              num_classes=None, class_names=None, image=True, seed=None, **extra) -> dict:
    """Build the JSON-ready info dict (see :func:`dataset_info`)."""
    sample_shape = [int(s) for s in sample_shape]
    info = {
        "name": name,
        "source": source,
        "image_shape": sample_shape if image else None,
        "sample_shape": sample_shape,
        "data_shape": sample_shape,
        "num_classes": None if num_classes is None else int(num_classes),
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "num_examples": None if num_examples is None else int(num_examples),
        "batch_size": int(batch_size),
        "steps_per_epoch": (None if num_examples is None
                            else int(num_examples) // int(batch_size)),
        "with_labels": bool(with_labels),
        "value_range": list(IMAGE_VALUE_RANGE) if image else None,
        "seed": seed,
    }
    info.update(extra)
    return info


def attach(ds: tf.data.Dataset, info: dict) -> tf.data.Dataset:
    """Attach ``info`` to the dataset object as ``ds.info`` and return the dataset."""
    ds.info = info
    return ds
