"""PacGAN packing (Lin et al. 2018): the discriminator judges ``m`` samples at once.

``packed_discriminator(inner, data_shape, m)`` wraps a discriminator built for inputs of shape
``(*data_shape[:-1], data_shape[-1] * m)``: a batch ``[B, *data_shape]`` is cut into ``B / m``
packs of ``m`` consecutive samples, concatenated along the last axis (features of 2-D points,
channels of images), and ``inner`` returns one logit per pack (``[B / m, 1]``). A packed
discriminator sees the joint distribution of ``m`` independent samples, where a collapsed
generator's lack of diversity is easy to spot: the paper's remedy for mode collapse.

Everything that calls the discriminator keeps working unchanged (losses, gradient penalty,
R1, unrolling, instance noise, ``tf.distribute``): the packing is inside the model. The
batch (per replica) must be a multiple of ``m``; :func:`tfgan_app.train.train` checks it.
The gradient penalty's norm is then taken per sample of the pack, not per pack.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfgan_app")
class Pack(keras.layers.Layer):
    """``[B, *S, C]`` -> ``[B / m, *S, m * C]``: ``m`` consecutive samples side by side."""

    def __init__(self, m: int, **kwargs):
        super().__init__(**kwargs)
        if int(m) < 1:
            raise ValueError(f"pack degree m must be a positive int, got {m!r}")
        self.m = int(m)

    def call(self, x):
        rest = tuple(x.shape[1:])
        x = ops.reshape(x, (-1, self.m) + rest)            # [B/m, m, *S, C]
        x = ops.moveaxis(x, 1, -2)                          # [B/m, *S, m, C]
        return ops.reshape(x, (-1,) + rest[:-1] + (self.m * rest[-1],))

    def compute_output_shape(self, input_shape):
        b = None if input_shape[0] is None else input_shape[0] // self.m
        return (b,) + tuple(input_shape[1:-1]) + (input_shape[-1] * self.m,)

    def get_config(self):
        return {**super().get_config(), "m": self.m}


def packed_shape(data_shape, m: int) -> tuple:
    """The inner discriminator's input shape for ``data_shape`` packed ``m`` times."""
    data_shape = tuple(int(s) for s in data_shape)
    return data_shape[:-1] + (data_shape[-1] * int(m),)


def packed_discriminator(inner: keras.Model, data_shape, m: int, name=None) -> keras.Model:
    """``[B, *data_shape]`` -> ``inner(Pack(m)(x))``; ``inner`` takes :func:`packed_shape`."""
    data_shape = tuple(int(s) for s in data_shape)
    want = packed_shape(data_shape, m)
    got = tuple(inner.input_shape[1:]) if hasattr(inner, "input_shape") else None
    if got is not None and got != want:
        raise ValueError(f"the inner discriminator takes inputs of shape {got}; packing "
                         f"{data_shape} {m} times needs {want}")
    x = keras.Input(data_shape, name="x")
    out = inner(Pack(m, name="pack")(x))
    return keras.Model(x, out, name=name or f"packed{m}_{inner.name}")
