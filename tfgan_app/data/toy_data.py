"""Toy 2-D distributions as ``tf.data``: ``from_toy``.

The samplers live in :mod:`tfgan_app.data.toy`; this wraps their points in the same batched,
shuffled, prefetched pipeline as the image sources. Points are *not* rescaled.
"""

from __future__ import annotations

from tfgan_app.data import _pipeline as P
from tfgan_app.data.toy import TOY_DISTRIBUTIONS, sample_toy


def from_toy(name: str, batch_size: int = 256, n=None, seed: int = 0, *,
             shuffle: bool = True, deterministic: bool = True, with_labels: bool = False,
             **toy_kwargs):
    """A toy distribution (``gaussian``, ``ring``, ``grid``) as a ``tf.data`` pipeline.

    Args:
      name: ``"gaussian"`` (d2l), ``"ring"`` (8 modes, std 0.01) or ``"grid"`` (25 modes,
        std 0.05); see :mod:`tfgan_app.data.toy`.
      batch_size: global batch size (last partial batch dropped).
      n: number of points drawn once (default: the sampler's, 1,000 for ``gaussian``,
        100,000 for ``ring``/``grid``).
      seed: seeds both the sampler and the shuffle.
      shuffle, deterministic: as for the image sources.
      with_labels: toy data has no labels; ``True`` is an error.
      **toy_kwargs: forwarded to the sampler (e.g. ``std=``).

    Returns:
      ``tf.data.Dataset`` of ``float32 [batch_size, 2]``, with ``ds.info`` whose ``"spec"``
      is the sampler's spec (modes, stds: record it in ``config.json``), ``image_shape``
      ``None`` and ``sample_shape`` ``[2]``.
    """
    if with_labels:
        raise ValueError(f"toy distribution {name!r} has no labels (with_labels=True)")
    if name not in TOY_DISTRIBUTIONS:
        raise ValueError(f"unknown toy distribution {name!r}; expected one of "
                         f"{sorted(TOY_DISTRIBUTIONS)}")
    batch_size = P.check_batch_size(batch_size)
    points, spec = sample_toy(name, n=n, seed=seed, **toy_kwargs)
    P.check_enough(len(points), batch_size, f"toy distribution {name!r}")
    ds = P.in_memory_pipeline(points, None, batch_size=batch_size, shuffle=shuffle,
                              seed=seed, deterministic=deterministic, value_range=None)
    info = P.make_info(name=name, source="toy", sample_shape=points.shape[1:],
                       num_examples=len(points), batch_size=batch_size, with_labels=False,
                       image=False, seed=seed, spec=spec)
    return P.attach(ds, info)
