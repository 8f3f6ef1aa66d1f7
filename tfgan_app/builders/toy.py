"""The d2l.ai two-Gaussian GAN's networks.

* generator: one ``Dense(output_dim)`` layer (an affine map, so it can represent any Gaussian
  ``N(b, A^T A)`` from ``z ~ N(0, I)``), weights ``N(0, 0.02)``.
* discriminator: ``Dense(5, tanh) -> Dense(3, tanh) -> Dense(1)`` (logits).

Both initialise every weight (kernels and biases) from ``N(0, 0.02)``, as d2l.ai's PyTorch code
does (``nn.init.normal_(w, 0, 0.02)`` over all parameters); ``init_std`` changes it.
"""

from __future__ import annotations

import keras


def _init(std, seed):
    return keras.initializers.RandomNormal(stddev=float(std), seed=seed)


def toy_generator(latent_dim: int = 2, output_dim: int = 2, init_std: float = 0.02,
                  name: str = "toy_generator"):
    """Affine generator ``z float32 [B, latent_dim] -> x float32 [B, output_dim]``."""
    z = keras.Input((int(latent_dim),), name="z")
    x = keras.layers.Dense(int(output_dim), kernel_initializer=_init(init_std, None),
                           bias_initializer=_init(init_std, None), name="affine")(z)
    return keras.Model(z, x, name=name)


def toy_discriminator(input_dim: int = 2, init_std: float = 0.02,
                      name: str = "toy_discriminator"):
    """``x float32 [B, input_dim] -> logits float32 [B, 1]`` through Dense 5 tanh, 3 tanh, 1."""
    x_in = keras.Input((int(input_dim),), name="x")
    h = x_in
    for units, act, lname in ((5, "tanh", "hidden1"), (3, "tanh", "hidden2"), (1, None, "logits")):
        h = keras.layers.Dense(units, activation=act, kernel_initializer=_init(init_std, None),
                               bias_initializer=_init(init_std, None), name=lname)(h)
    out = h
    return keras.Model(x_in, out, name=name)
