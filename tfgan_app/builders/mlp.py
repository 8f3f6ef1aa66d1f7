"""Multilayer perceptrons in the style of the original GAN paper (Goodfellow et al. 2014).

* generator: ReLU hidden layers, configurable output activation (``tanh`` for data in [-1, 1],
  ``None``/``linear`` for unbounded toy data, ``sigmoid`` for [0, 1]);
* discriminator: maxout (optional) or LeakyReLU/ReLU hidden layers with dropout, logits out.

Both accept flat vectors or images: ``output_shape``/``input_shape`` may be ``(D,)`` or
``(H, W, C)``; images are flattened/reshaped at the ends.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfgan_app")
class Maxout(keras.layers.Layer):
    """Maxout unit (Goodfellow et al. 2013): ``max_k (x W_k + b_k)`` over ``pieces`` pieces.

    Input ``[B, D]`` -> output ``[B, units]``.
    """

    def __init__(self, units: int, pieces: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.pieces = int(pieces)
        self.dense = keras.layers.Dense(self.units * self.pieces)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        h = self.dense(x)
        h = ops.reshape(h, (-1, self.units, self.pieces))
        return ops.max(h, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pieces": self.pieces}


def _shape(shape, what):
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"{what} must be a tuple of positive ints, got {shape!r}")
    return shape


def _with_labels(inputs, h, num_classes):
    """Conditional nets: add a ``labels int32 [B]`` input and concatenate its one-hot to ``h``."""
    if not num_classes:
        return inputs, h
    labels = keras.Input((), dtype="int32", name="labels")
    return inputs + [labels], keras.layers.Concatenate()([h, ops.one_hot(labels,
                                                                          int(num_classes))])


def mlp_generator(latent_dim: int, output_shape=(2,), hidden_units=(128, 128),
                  output_activation=None, num_classes=None, batch_norm=False,
                  name="mlp_generator"):
    """``z float32 [B, latent_dim]`` (and ``labels int [B]`` if ``num_classes``) -> ``[B, *output_shape]``.

    Conditional (``num_classes``): the one-hot label is concatenated with ``z`` (Mirza &
    Osindero 2014). ``output_activation``: ``None`` (linear), ``"tanh"``, ``"sigmoid"``, ...
    ``batch_norm``: batch normalization before each hidden ReLU (PacGAN's toy generator).
    """
    output_shape = _shape(output_shape, "output_shape")
    z = keras.Input((int(latent_dim),), name="z")
    inputs, h = _with_labels([z], z, num_classes)
    for i, u in enumerate(hidden_units):
        if batch_norm:
            h = keras.layers.Dense(int(u), use_bias=False, name=f"hidden{i + 1}")(h)
            h = keras.layers.BatchNormalization(name=f"bn{i + 1}")(h)
            h = keras.layers.Activation("relu", name=f"relu{i + 1}")(h)
        else:
            h = keras.layers.Dense(int(u), activation="relu", name=f"hidden{i + 1}")(h)
    h = keras.layers.Dense(math.prod(output_shape), activation=output_activation, name="out")(h)
    if len(output_shape) > 1:
        h = keras.layers.Reshape(output_shape)(h)
    return keras.Model(inputs if num_classes else z, h, name=name)


def mlp_discriminator(input_shape=(2,), hidden_units=(128, 128), dropout=0.0, maxout_pieces=None,
                      activation="leaky_relu", num_classes=None, spectral_norm=False,
                      name="mlp_discriminator"):
    """``x float32 [B, *input_shape]`` (and ``labels int [B]``) -> logits ``float32 [B, 1]``.

    ``maxout_pieces``: use :class:`Maxout` hidden units with that many pieces (the paper's
    choice), else Dense layers with ``activation``. ``dropout`` is applied to each hidden layer's
    output. Conditional: the one-hot label is concatenated with the flattened input.
    ``spectral_norm``: wrap every Dense layer in ``keras.layers.SpectralNormalization``
    (Miyato et al. 2018: each layer's weight divided by its largest singular value, estimated by
    one power iteration per training step), making D roughly 1-Lipschitz.
    """
    input_shape = _shape(input_shape, "input_shape")
    if spectral_norm and maxout_pieces:
        raise ValueError("spectral_norm applies to Dense layers; it cannot be combined with "
                         "maxout_pieces")

    def dense(units, activation, name):
        if spectral_norm:
            return keras.layers.SpectralNormalization(
                keras.layers.Dense(units, activation=activation, name=f"{name}_dense"), name=name)
        return keras.layers.Dense(units, activation=activation, name=name)

    x_in = keras.Input(input_shape, name="x")
    inputs, h = _with_labels([x_in], keras.layers.Flatten()(x_in) if len(input_shape) > 1
                             else x_in, num_classes)
    for i, u in enumerate(hidden_units):
        if maxout_pieces:
            h = Maxout(int(u), int(maxout_pieces), name=f"maxout{i + 1}")(h)
        else:
            h = dense(int(u), activation, f"hidden{i + 1}")(h)
        if dropout:
            h = keras.layers.Dropout(float(dropout))(h)
    out = dense(1, None, "logits")(h)
    return keras.Model(inputs if num_classes else x_in, out, name=name)
