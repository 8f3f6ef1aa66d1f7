"""The one latent sampler: how every entry point turns a seed into latent vectors and samples.

``GANModel.generate``, ``tfgan-app sample``, ``tfgan-app evaluate`` (and the tuning objective),
the training callbacks' grids and the exported ``sample`` signature all draw

    z = tf.random.stateless_normal([n, latent_dim], seed=[seed, 0])

so the same seed gives the same latent vectors, on every platform and in every process
(``tests/test_sampling.py`` checks the four entry points against each other). For a generator
with InfoGAN's categorical code the vectors' codes are then balanced (:func:`balanced_codes`),
as a conditional generator's default labels are.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

#: Generator batch size used when drawing many samples.
DEFAULT_BATCH_SIZE = 1024


def latent_vectors(n: int, latent_dim: int, seed: int) -> tf.Tensor:
    """``float32 [n, latent_dim]``, N(0, 1): ``stateless_normal([n, L], seed=[seed, 0])``."""
    return tf.random.stateless_normal([int(n), int(latent_dim)],
                                      seed=tf.constant([int(seed), 0], tf.int64))


def categorical_code(z, size: int) -> tf.Tensor:
    """InfoGAN's categorical code carried by latent vectors: ``argmax(z[:, :size])``,
    ``int32 [B]`` (:mod:`tfgan_app.builders.infogan`). For ``z ~ N(0, I)`` each of the
    ``size`` values has probability ``1 / size``."""
    return tf.argmax(z[:, :size], axis=-1, output_type=tf.int32)


def code_vector(z, codes, size: int) -> tf.Tensor:
    """``[one_hot(codes, size), z[:, size:]]``: what a generator with a categorical code reads
    in place of ``z`` (its code layer passes ``categorical_code(z, size)``), and a latent
    vector whose code is ``codes``."""
    return tf.concat([tf.one_hot(codes, size, dtype=z.dtype), z[:, size:]], axis=-1)


def with_code(z, codes, size: int) -> tf.Tensor:
    """``z`` with its categorical code set to ``codes`` (``int [B]``, each in
    ``[0, size)``), the continuous entries ``z[:, size:]`` kept: the code entries become
    ``one_hot(codes)``, whose argmax is the code."""
    z = tf.convert_to_tensor(z, tf.float32)
    codes = np.asarray(codes).reshape(-1)
    if codes.shape[0] != z.shape[0] or codes.min() < 0 or codes.max() >= size:
        raise ValueError(f"expected {z.shape[0]} codes in [0, {size}), got {codes.tolist()}")
    return code_vector(z, codes, size)


def balanced_codes(z, size: int) -> tf.Tensor:
    """``z [n, L]`` with its categorical-code entries exchanged so that the ``n`` codes run
    ``c0, c0 + 1, ...`` modulo ``size``, where ``c0`` is the first vector's own code: every
    value ``n // size`` or ``n // size + 1`` times (stratified sampling of the code).

    In each row the entry at the row's own code (its maximum among ``z[:, :size]``) and the
    entry at its target code swap places; the continuous entries ``z[:, size:]`` are kept.
    For ``z ~ N(0, I)`` each row stays exactly ``N(0, I)``: ``c0`` is uniform and the swap
    maps the cell ``argmax = c`` onto the cell ``argmax = target`` by a coordinate
    permutation. What changes is the sample's code counts: i.i.d. codes spread them
    multinomially (with 20 codes and 1,000 samples, a standard deviation of 7 around 50
    each), which moved the default preset's FID by more than its seeds' differences did.
    The same policy as a conditional generator's default labels, ``arange(n) % num_classes``
    (:func:`check_labels`). Only TensorFlow ops (the exported ``sample`` signature uses it).
    """
    z = tf.convert_to_tensor(z, tf.float32)
    head, tail = z[:, :size], z[:, size:]
    own = categorical_code(z, size)
    first = tf.reduce_sum(own[:1])  # z[0]'s own code (0 for an empty batch)
    target = (first + tf.range(tf.shape(z)[0], dtype=tf.int32)) % size
    at_target = tf.one_hot(target, size, on_value=True, off_value=False)
    at_own = tf.one_hot(own, size, on_value=True, off_value=False)
    top = tf.reduce_max(head, axis=-1, keepdims=True)
    # the entry at the target code, exactly (one term times 1, the others times 0)
    moved = tf.reduce_sum(tf.where(at_target, head, tf.zeros_like(head)), axis=-1,
                          keepdims=True)
    head = tf.where(at_target, top, tf.where(at_own, moved, head))
    return tf.concat([head, tail], axis=-1)


def random_seed() -> int:
    """A fresh seed in ``[0, 2**31 - 1)`` for callers that passed ``seed=None``."""
    return int(np.random.default_rng().integers(0, 2**31 - 1))


def check_labels(labels, n: int, num_classes: int | None) -> np.ndarray | None:
    """Validate class labels for ``n`` samples: ``int32 [n]`` in ``[0, num_classes)``.

    ``labels=None`` gives ``arange(n) % num_classes`` (balanced classes) for a conditional
    generator and ``None`` for an unconditional one.

    Raises:
      ValueError: labels for an unconditional generator, a wrong count or an out-of-range label.
    """
    if num_classes is None:
        if labels is not None:
            raise ValueError("labels were given but this GAN is unconditional")
        return None
    labels = (np.arange(n) % num_classes if labels is None
              else np.asarray(labels).reshape(-1))
    if labels.shape[0] != n:
        raise ValueError(f"expected {n} labels, got {labels.shape[0]}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}), got "
                         f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int32)


def generate(generator, latent_dim: int, n: int, *, num_classes: int | None = None,
             labels=None, seed: int | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Draw ``n`` samples from a generator ``keras.Model`` in inference mode.

    Args:
      generator: maps ``z float32 [B, latent_dim]`` (``[z, labels int32 [B]]`` when
        ``num_classes`` is set) to samples.
      latent_dim: size of ``z``.
      n: number of samples (>= 1).
      num_classes: classes of a conditional generator, ``None`` otherwise.
      labels: ``int [n]`` class labels (conditional only); default balanced, see
        :func:`check_labels`.
      seed: the latent vectors are :func:`latent_vectors` ``(n, latent_dim, seed)``, for a
        generator with InfoGAN's categorical code with the codes balanced by
        :func:`balanced_codes`; ``None`` draws a random seed.
      batch_size: generator batch size.

    Returns:
      ``np.ndarray float32 [n, *sample_shape]`` (images in ``[-1, 1]``).
    """
    n = int(n)
    if n <= 0:
        raise ValueError(f"n must be a positive integer, got {n}")
    if seed is None:
        seed = random_seed()
    labels = check_labels(labels, n, num_classes)
    z = latent_vectors(n, latent_dim, seed)
    from tfgan_app.builders.infogan import code_size  # it imports this module

    code = code_size(generator)
    if code:
        z = balanced_codes(z, code)
    out = []
    for start in range(0, n, batch_size):
        zb = z[start:start + batch_size]
        inputs = zb if labels is None else [zb, tf.constant(labels[start:start + batch_size])]
        out.append(np.asarray(generator(inputs, training=False), dtype=np.float32))
    return np.concatenate(out, axis=0)


class Sampler:
    """A generator ``keras.Model`` with what sampling needs: ``latent_dim``, ``num_classes``.

    What :meth:`tfgan_app.rundir.RunDir.sampler` returns for a run directory; it samples
    exactly as ``GANModel.generate`` does (:func:`generate`).
    """

    def __init__(self, generator, latent_dim: int, num_classes: int | None = None):
        self.generator = generator
        self.latent_dim = int(latent_dim)
        self.num_classes = None if num_classes in (None, 0) else int(num_classes)

    def generate(self, n, labels=None, seed=None, batch_size=DEFAULT_BATCH_SIZE) -> np.ndarray:
        """See :func:`generate`."""
        return generate(self.generator, self.latent_dim, n, num_classes=self.num_classes,
                        labels=labels, seed=seed, batch_size=batch_size)

    def __repr__(self):
        return (f"Sampler({self.generator.name!r}, latent_dim={self.latent_dim}, "
                f"num_classes={self.num_classes})")
