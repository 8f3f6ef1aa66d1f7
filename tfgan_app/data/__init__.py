"""tf.data pipelines and sample sources for GAN training.

Everything yields ``float32`` data; images are scaled to ``[-1, 1]``, shaped
``[batch, H, W, C]``, with ``int32`` labels as ``(image, label)`` tuples when
``with_labels=True``. Every pipeline is shuffled (seeded, reshuffled each epoch), batched
with ``drop_remainder=True`` (static batch dimension; ``batch_size`` is the *global* batch
size) and prefetched: streaming sources (files, TFDS) with ``AUTOTUNE``, in-memory arrays
with a fixed ``IN_MEMORY_PREFETCH`` batches and tf.data autotuning off (its thread delayed
the end of every ``fit()``); see :mod:`tfgan_app.data._pipeline` and
:func:`pipeline_options`. Each returned
dataset carries a JSON-ready info dict at ``ds.info`` (:func:`dataset_info`).

Sources: :func:`from_tfds`, :func:`from_arrays`, :func:`from_directory`, :func:`from_idx`,
:func:`digits` (offline default), :func:`from_toy`, and :func:`dataset_by_name` for all of
them by one string.
"""

from tfgan_app.data._pipeline import dataset_info, pipeline_options  # noqa: F401
from tfgan_app.data.arrays import from_arrays  # noqa: F401
from tfgan_app.data.digits import (  # noqa: F401
    DIGITS_SPLITS,
    digits,
    digits_split_indices,
    load_digits_arrays,
)
from tfgan_app.data.directory import from_directory  # noqa: F401
from tfgan_app.data.idx import from_idx, load_idx_arrays, read_idx  # noqa: F401
from tfgan_app.data.registry import DATASET_CHOICES, dataset_by_name  # noqa: F401
from tfgan_app.data.tfds_source import from_tfds  # noqa: F401
from tfgan_app.data.toy import (  # noqa: F401
    TOY_DISTRIBUTIONS,
    gaussian,
    grid,
    grid_modes,
    ring,
    ring_modes,
    sample_toy,
)
from tfgan_app.data.toy_data import from_toy  # noqa: F401
