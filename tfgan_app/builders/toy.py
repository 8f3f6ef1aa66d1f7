"""The d2l.ai two-Gaussian GAN's networks.

* generator: one ``Dense(output_dim)`` layer (an affine map, so it can represent any Gaussian
  ``N(b, A^T A)`` from ``z ~ N(0, I)``), weights ``N(0, 0.02)``.
* discriminator: ``Dense(5, tanh) -> Dense(3, tanh) -> Dense(1)`` (logits).
"""

from __future__ import annotations

import keras


def toy_generator(latent_dim: int = 2, output_dim: int = 2, name: str = "toy_generator"):
    """Affine generator ``z float32 [B, latent_dim] -> x float32 [B, output_dim]``."""
    init = keras.initializers.RandomNormal(stddev=0.02)
    z = keras.Input((int(latent_dim),), name="z")
    x = keras.layers.Dense(int(output_dim), kernel_initializer=init, name="affine")(z)
    return keras.Model(z, x, name=name)


def toy_discriminator(input_dim: int = 2, name: str = "toy_discriminator"):
    """``x float32 [B, input_dim] -> logits float32 [B, 1]`` through Dense 5 tanh, 3 tanh, 1."""
    x_in = keras.Input((int(input_dim),), name="x")
    h = keras.layers.Dense(5, activation="tanh", name="hidden1")(x_in)
    h = keras.layers.Dense(3, activation="tanh", name="hidden2")(h)
    out = keras.layers.Dense(1, name="logits")(h)
    return keras.Model(x_in, out, name=name)
