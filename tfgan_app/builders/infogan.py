"""InfoGAN's categorical code (Chen et al. 2016) around any unconditional generator and
discriminator.

A generator with a categorical code of ``K`` values reads the code from its own latent
vector: ``c = argmax(z[:, :K])`` (:func:`tfgan_app.sampling.categorical_code`; for
``z ~ N(0, I)`` every one of the K values is equally likely, by symmetry), and takes
``[one_hot(c), z[:, K:]]`` in place of ``z``. The model stays a one-input generator of
``z``: sampling, interpolation, the exported signatures and ``tfgan-app sample`` are
unchanged, and a caller picks the code with :func:`tfgan_app.sampling.with_code`.

The discriminator gains InfoGAN's ``Q`` head: a ``Dense(K)`` on the features its logits are
computed from, returning ``[logits [B, 1], code_logits [B, K]]``. :class:`tfgan_app.model.
GANModel` adds ``info_weight x CE(c, code_logits(G(z)))`` to both networks' losses: the
variational lower bound of the mutual information ``I(c; G(z, c))`` (up to the constant
``H(c) = log K``), TF-GAN's ``mutual_information_penalty`` for a categorical code.

Why it matters for multi-class data: ``G`` is continuous and ``z``'s Gaussian is connected,
so an unconditional generator of several well-separated classes must cross the space between
them, and the samples it draws there are no class at all (Khayatkhoei et al. 2018). A
categorical code gives ``G`` a discrete input to jump on; the mutual-information term makes
it use the code. No labels are read: the codes are found, not given.
"""

from __future__ import annotations

import keras

from tfgan_app.sampling import categorical_code, code_vector


@keras.saving.register_keras_serializable(package="tfgan_app")
class CategoricalCode(keras.layers.Layer):
    """``z [B, D]`` -> ``[one_hot(argmax(z[:, :K]), K), z[:, K:]]`` of the same shape."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, z):
        return code_vector(z, categorical_code(z, self.size), self.size)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _check_size(size, what):
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"categorical_code must be an integer >= 2 (the code's number of "
                         f"values), got {size!r} for the {what}")
    return size


def with_categorical_code(generator, size: int, name: str | None = None):
    """``generator`` (one input ``z [B, D]``) reading a categorical code of ``size`` values
    from ``z[:, :size]`` (module docs). ``D`` must exceed ``size``."""
    size = _check_size(size, "generator")
    inputs = list(generator.inputs or [])
    if len(inputs) != 1 or len(inputs[0].shape) != 2:
        raise ValueError("a categorical code needs an unconditional generator of one latent "
                         f"vector z [B, D]; {generator.name!r} takes {len(inputs)} input(s) "
                         f"{[tuple(i.shape) for i in inputs]}")
    dim = inputs[0].shape[-1]
    if dim is None or dim <= size:
        raise ValueError(f"categorical_code={size} needs latent_dim > {size} (the code takes "
                         f"z's first {size} entries, the rest stays continuous); got {dim}")
    z = keras.Input((dim,), name="z")
    out = generator(CategoricalCode(size, name="categorical_code")(z))
    return keras.Model(z, out, name=name or generator.name)


def with_code_head(discriminator, size: int, name: str | None = None):
    """``discriminator`` (one input, logits ``[B, 1]`` from a last ``Dense``-like layer) with
    InfoGAN's ``Q`` head: ``[logits, code_logits [B, size]]`` from the same features."""
    size = _check_size(size, "discriminator")
    inputs, outputs = list(discriminator.inputs or []), list(discriminator.outputs or [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError("InfoGAN's code head needs an unconditional discriminator with one "
                         f"input and one output; {discriminator.name!r} has {len(inputs)} "
                         f"and {len(outputs)}")
    last = discriminator.layers[-1]
    feats = last.input
    if isinstance(feats, (list, tuple)) or len(feats.shape) != 2:
        raise ValueError(f"InfoGAN's code head reads the features the logits come from; the "
                         f"last layer of {discriminator.name!r} ({type(last).__name__}) does "
                         "not take one flat feature vector")
    code_logits = keras.layers.Dense(size, dtype="float32", name="code_logits")(feats)
    return keras.Model(inputs, [outputs[0], code_logits], name=name or discriminator.name)


def code_size(generator) -> int:
    """The number of values of ``generator``'s categorical code (0: it has none, or it is
    not a Keras model)."""
    for layer in getattr(generator, "layers", ()):
        if isinstance(layer, CategoricalCode):
            return layer.size
    return 0
