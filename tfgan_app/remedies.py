"""Remedies for GAN training failures that act inside the training step.

Used by :class:`tfgan_app.GANModel` through ``compile()`` options (and by the presets' settings
of the same names):

* ``unrolled_steps=k`` -- unrolled GAN (Metz et al. 2017): the generator's loss is computed
  against the discriminator *after* ``k`` further gradient steps on the discriminator's loss,
  with gradients flowing through those steps (:func:`unrolled_discriminator_weights`). The
  unrolled steps are plain gradient descent with rate ``unrolled_lr`` (default: the
  discriminator optimizer's learning rate); the real discriminator is then updated by its own
  optimizer as usual, so unrolling only changes the generator's gradient.
* ``instance_noise=sigma`` -- Gaussian noise of standard deviation ``sigma_t`` added to every
  input of the discriminator, real and generated (Sønderby et al. 2017; Arjovsky & Bottou 2017),
  annealed linearly from ``sigma`` to 0 over ``instance_noise_steps`` discriminator steps
  (default: the whole ``fit()`` run)
  (:func:`instance_noise_std`). It makes the two distributions overlap early on, so the
  discriminator cannot become perfect and the generator's gradient does not vanish.

Other remedies live where they belong: Wasserstein losses, label smoothing (TF-GAN's) and
weight clipping in :mod:`tfgan_app.losses`; terms added to the discriminator's loss (WGAN-GP,
R1, the L2 penalty ``d_l2``, ...) in :mod:`tfgan_app.penalties`; spectral normalization in the
discriminator builders (``norm="spectral"`` for DCGAN, ``spectral_norm=True`` for MLPs); the
generator EMA in ``compile(ema_decay=...)``. Every option is defined in :mod:`tfgan_app.options`.
"""

from __future__ import annotations

import tensorflow as tf


def instance_noise_std(step, initial_std: float, anneal_steps: int):
    """``initial_std * max(0, 1 - step / anneal_steps)``: the noise level at ``step`` (float32)."""
    step = tf.cast(step, tf.float32)
    frac = tf.maximum(0.0, 1.0 - step / float(max(int(anneal_steps), 1)))
    return float(initial_std) * frac


def add_instance_noise(x, std, seed):
    """``x + N(0, std^2)`` elementwise (stateless, seeded); ``x`` is returned when ``std`` is 0."""
    noise = tf.random.stateless_normal(tf.shape(x), seed=seed, dtype=x.dtype)
    return x + tf.cast(std, x.dtype) * noise


def unrolled_discriminator_weights(discriminator, d_loss_fn, steps: int, lr):
    """Take ``steps`` differentiable gradient-descent steps on the discriminator's loss.

    Args:
      discriminator: the ``keras.Model``; its variables are *not* changed.
      d_loss_fn: ``(call) -> scalar`` computing the discriminator loss, where
        ``call(inputs)`` runs the discriminator with the unrolled weights
        (``keras.Model.stateless_call``, training mode).
      steps: number of unrolled steps ``k >= 1``.
      lr: step size.

    Returns:
      ``call``: a function ``inputs -> outputs`` running the discriminator with the weights
      after ``k`` steps. Run it under the caller's ``GradientTape``: the unrolled weights
      depend on the generator's output through ``d_loss_fn``, so gradients with respect to the
      generator flow through the unrolling (second-order terms included).
    """
    trainable = [tf.convert_to_tensor(v) for v in discriminator.trainable_variables]
    non_trainable = [tf.convert_to_tensor(v) for v in discriminator.non_trainable_variables]

    def make_call(weights):
        def call(inputs):
            out, _ = discriminator.stateless_call(weights, non_trainable, inputs, training=True)
            return out
        return call

    for _ in range(int(steps)):
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            loss = d_loss_fn(make_call(trainable))
        grads = tape.gradient(loss, trainable)
        trainable = [w - tf.cast(lr, w.dtype) * (g if g is not None else tf.zeros_like(w))
                     for w, g in zip(trainable, grads)]
    return make_call(trainable)
