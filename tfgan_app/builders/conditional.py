"""Conditional DCGANs: the class label goes into both networks (Mirza & Osindero 2014).

Generator: ``[z float32 [B, latent_dim], labels int32 [B]]``; a learned label embedding
(``Embedding(num_classes, embed_dim)``) is concatenated with ``z`` and fed to the DCGAN
generator body (:mod:`tfgan_app.builders.dcgan`).

Discriminator, ``conditioning=``:

* ``"projection"`` (default): the projection discriminator of Miyato & Koyama (2018):
  ``logit = w^T phi(x) + b + <embed(y), phi(x)>``, where ``phi(x)`` are the flattened
  DCGAN features and ``embed`` a learned ``Embedding(num_classes, dim phi)``. The label
  acts on the output through an inner product -- it cannot be ignored, and it does not
  double the input width.
* ``"concat"``: the original conditional-GAN recipe for convolutional D (e.g. the Keras
  ``conditional_gan`` example): a learned ``H x W`` label map
  (``Embedding(num_classes, H*W)`` reshaped) is concatenated to the image as an extra
  channel.

``acgan=True`` (Odena et al. 2017): the discriminator takes ``x`` **only** (an AC-GAN
discriminator must infer the class) and returns ``[logits float32 [B, 1], class_logits
float32 [B, num_classes]]`` from two heads on the shared features.

The conditional MLPs for 2-D toy data are :func:`tfgan_app.builders.mlp_generator` /
``mlp_discriminator`` with ``num_classes``.
"""

from __future__ import annotations

import keras

from tfgan_app.builders.dcgan import (
    _positive_int,
    check_image_shape,
    discriminator_features,
    generator_body,
    logits_layer,
)

CONDITIONINGS = ("projection", "concat")


def _label_input():
    return keras.Input((), dtype="int32", name="labels")


def conditional_dcgan_generator(latent_dim: int, image_shape, num_classes: int,
                                base_filters: int = 64, *, embed_dim: int = 50,
                                variant: str = "dcgan", kernel_size: int = 4,
                                num_upsamples=None, max_filters: int = 512,
                                name: str = "conditional_dcgan_generator"):
    """Conditional DCGAN generator.

    Inputs ``[z float32 [B, latent_dim], labels int32 [B]]`` (class ids in
    ``[0, num_classes)``) -> images ``float32 [B, H, W, C]`` in ``[-1, 1]``.

    The label's ``embed_dim``-dimensional learned embedding is concatenated with ``z``;
    the rest is :func:`~tfgan_app.builders.dcgan_generator` (same options).

    Raises:
      ValueError: unsupported ``image_shape`` (H, W not divisible by 4; C not 1/3) or
        non-positive sizes.
    """
    latent_dim = _positive_int(latent_dim, "latent_dim")
    num_classes = _positive_int(num_classes, "num_classes")
    embed_dim = _positive_int(embed_dim, "embed_dim")
    check_image_shape(image_shape)
    z = keras.Input((latent_dim,), name="z")
    labels = _label_input()
    e = keras.layers.Embedding(num_classes, embed_dim, name="g_label_embedding")(labels)
    h = keras.layers.Concatenate(name="g_z_label")([z, e])
    out = generator_body(h, image_shape, variant=variant, base_filters=base_filters,
                         kernel_size=kernel_size, num_upsamples=num_upsamples,
                         max_filters=max_filters)
    return keras.Model([z, labels], out, name=name)


def conditional_dcgan_discriminator(image_shape, num_classes: int, base_filters: int = 64, *,
                                    acgan: bool = False, conditioning: str = "projection",
                                    variant: str = "dcgan", norm: str = "batch",
                                    dropout: float = 0.0, kernel_size: int = 4,
                                    num_downsamples=None, max_filters: int = 512,
                                    name: str | None = None):
    """Conditional (or AC-GAN) DCGAN discriminator.

    * ``acgan=False``: inputs ``[x float32 [B, H, W, C], labels int32 [B]]`` -> logits
      ``float32 [B, 1]``; the label enters by ``conditioning`` (``"projection"`` or
      ``"concat"``, see module docs).
    * ``acgan=True``: input ``x`` only -> ``[logits float32 [B, 1], class_logits float32
      [B, num_classes]]`` (unnormalized; softmax cross-entropy is the loss's job).

    Other options as :func:`~tfgan_app.builders.dcgan_discriminator`. Default ``name``:
    ``"conditional_dcgan_discriminator"`` or ``"acgan_discriminator"``.

    Raises:
      ValueError: unsupported ``image_shape``, unknown ``conditioning``/``norm``, bad sizes.
    """
    num_classes = _positive_int(num_classes, "num_classes")
    H, W, C = check_image_shape(image_shape)
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
    L = keras.layers
    opts = dict(variant=variant, base_filters=base_filters, kernel_size=kernel_size,
                num_downsamples=num_downsamples, max_filters=max_filters, norm=norm,
                dropout=dropout)
    head_norm = norm if variant == "dcgan" else "none"
    x = keras.Input((H, W, C), name="x")
    if acgan:
        feats = discriminator_features(x, (H, W, C), **opts)
        logits = logits_layer(1, head_norm, "logits")(feats)
        class_logits = logits_layer(num_classes, head_norm, "class_logits")(feats)
        return keras.Model(x, [logits, class_logits], name=name or "acgan_discriminator")

    labels = _label_input()
    if conditioning == "concat":
        m = L.Embedding(num_classes, H * W, name="d_label_map_embedding")(labels)
        m = L.Reshape((H, W, 1), name="d_label_map")(m)
        h = L.Concatenate(axis=-1, name="d_x_label_map")([x, m])
        feats = discriminator_features(h, (H, W, C), **opts)
        logits = logits_layer(1, head_norm, "logits")(feats)
    else:
        feats = discriminator_features(x, (H, W, C), **opts)
        dim = feats.shape[-1]
        uncond = logits_layer(1, head_norm, "d_unconditional_logit")(feats)
        e = L.Embedding(num_classes, dim, name="d_label_projection")(labels)
        proj = L.Dot(axes=1, dtype="float32", name="d_projection")([e, feats])
        logits = L.Add(dtype="float32", name="logits")([uncond, proj])
    return keras.Model([x, labels], logits, name=name or "conditional_dcgan_discriminator")
