"""GANModel: a ``keras.Model`` that trains a generator and a discriminator with ``fit()``.

Algorithm 1 of Goodfellow et al. (2014), k = ``d_steps``
------------------------------------------------------
Each ``train_step`` receives one minibatch of ``m`` real examples from the dataset and

1. draws ``m`` fresh latent vectors, and updates the discriminator once on that real minibatch
   against the generated one (plus any gradient penalty / R1 / weight clipping);
2. if the discriminator has now taken a multiple of ``k`` steps (its optimizer's
   ``iterations % k == 0``), draws ``m`` fresh latent vectors and updates the generator once.

So the k discriminator updates of one round each see a *different* real minibatch and fresh
noise -- exactly as in the paper's inner loop (and as TF-GAN's sequential train hooks did with
``GANTrainSteps(1, k)``) -- and one epoch of ``N`` batches makes ``N`` discriminator and
``N / k`` generator updates. The step counter is the discriminator optimizer's ``iterations``,
so it is saved and restored with the optimizer (``.keras`` files, ``BackupAndRestore``).

Logged per epoch (means over the epoch's steps): ``d_loss`` and ``g_loss`` (the generator loss
averages only the steps that updated the generator), ``d_real`` and ``d_fake``: the
discriminator's mean output on real and on generated data -- a probability ``sigmoid(logit)`` for
the sigmoid losses (``minimax``, ``modified``, ``relativistic``, ``acgan``), the raw critic score
otherwise. At the optimum of the minimax game ``D*(x) = p_data / (p_data + p_g) = 1/2``.

Conditional models
------------------
With ``num_classes`` set, the dataset must yield ``(images, labels)`` (``int [B]``). The
generator takes ``[z, labels]``. The discriminator takes ``[x, labels]`` when it has two inputs;
with the ``acgan`` loss it takes ``x`` alone and returns ``(logits, class_logits)``. Generated
examples use the labels of the real minibatch they are compared with.
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf

from tfgan_app import losses as losses_lib

_DEFAULT_LR = 2e-4


def _replica_id():
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return tf.constant(0, tf.int64)
    return tf.cast(ctx.replica_id_in_sync_group, tf.int64)


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def latent_vectors(n: int, latent_dim: int, seed: int) -> tf.Tensor:
    """The latent vectors used by :meth:`GANModel.generate` (and the exported ``sample``).

    ``tf.random.stateless_normal([n, latent_dim], seed=[seed, 0])``: ``float32 [n, latent_dim]``,
    N(0, 1), identical on every platform and process for the same ``seed``.
    """
    return tf.random.stateless_normal([int(n), int(latent_dim)],
                                      seed=tf.constant([int(seed), 0], tf.int64))


@keras.saving.register_keras_serializable(package="tfgan_app")
class GANModel(keras.Model):
    """A GAN as one Keras model: ``compile()`` with two optimizers and a loss pair, ``fit()``.

    Args:
      generator: ``keras.Model`` mapping ``z float32 [B, latent_dim]`` (and ``labels int [B]``
        when conditional, as inputs ``[z, labels]``) to samples ``float32 [B, *data_shape]``
        (images: ``[B, H, W, C]`` in ``[-1, 1]``).
      discriminator: ``keras.Model`` mapping samples (and labels, when it has two inputs) to
        logits ``float32 [B, 1]``; for ``acgan``, to ``(logits [B, 1], class_logits [B, K])``.
      latent_dim: size of the latent vector ``z``.
      num_classes: number of classes for a conditional GAN, ``None`` otherwise.
      seed: seed of the training noise (a ``keras.random.SeedGenerator``).

    Example::

        gan = GANModel(tfgan_app.builders.toy_generator(2),
                       tfgan_app.builders.toy_discriminator(), latent_dim=2)
        gan.compile(d_optimizer=keras.optimizers.Adam(0.05),
                    g_optimizer=keras.optimizers.Adam(0.005), loss="modified")
        gan.fit(dataset, epochs=20)
        points = gan.generate(1000, seed=0)
    """

    def __init__(self, generator, discriminator, latent_dim, num_classes=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(generator, keras.Model) or not isinstance(discriminator, keras.Model):
            raise ValueError("generator and discriminator must be keras.Model instances, got "
                             f"{type(generator).__name__} and {type(discriminator).__name__}")
        latent_dim = int(latent_dim)
        if latent_dim <= 0:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim}")
        num_classes = None if num_classes in (None, 0) else int(num_classes)
        g_inputs = list(generator.inputs or [])
        if g_inputs:
            z_dim = g_inputs[0].shape[-1]
            if z_dim is not None and z_dim != latent_dim:
                raise ValueError(f"the generator takes latent vectors of size {z_dim}, "
                                 f"but latent_dim={latent_dim}")
            if num_classes is None and len(g_inputs) != 1:
                raise ValueError("the generator has several inputs ([z, labels]?) but "
                                 "num_classes is not set")
            if num_classes is not None and len(g_inputs) != 2:
                raise ValueError(f"num_classes={num_classes} needs a conditional generator "
                                 f"with inputs [z, labels]; it has {len(g_inputs)} input(s)")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self._seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.ema_generator = None
        # Both sub-models are built; mark the wrapper built so fit() (also under a strategy)
        # does not try to build it symbolically by calling it on a data batch.
        self.built = True

    # ------------------------------------------------------------------ Keras plumbing

    def call(self, inputs, training=False):
        """The generator: ``z`` (or ``[z, labels]``) to samples."""
        return self.generator(inputs, training=training)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker,
                self.d_fake_tracker]

    @property
    def d_conditional(self) -> bool:
        """Whether the discriminator takes ``[x, labels]``."""
        return self.num_classes is not None and len(self.discriminator.inputs or []) == 2

    def compile(self, d_optimizer=None, g_optimizer=None, loss="modified", d_steps=1,
                loss_options=None, gradient_penalty=0.0, gp_target=1.0, gp_one_sided=False,
                gp_epsilon=1e-10, r1_gamma=0.0, weight_clip=None, ema_decay=None,
                jit_compile="auto", steps_per_execution=1, **kwargs):
        """Configure training.

        Args:
          d_optimizer, g_optimizer: Keras optimizers (names or instances); default
            ``Adam(2e-4, beta_1=0.5)`` (DCGAN). Built here, on the models' variables, so call
            ``compile`` inside a ``tf.distribute`` strategy's scope when using one.
          loss: a loss name (see :func:`tfgan_app.losses.names`), a dict config or a
            :class:`tfgan_app.losses.GANLoss`. Minimax losses take logits and smooth the
            discriminator's real labels by 0.25 unless ``loss_options={"label_smoothing": 0}``.
          d_steps: ``k``, discriminator updates per generator update (Algorithm 1).
          loss_options: options passed to :func:`tfgan_app.losses.get`.
          gradient_penalty: weight of the WGAN-GP penalty (0 disables; 10 is usual), with
            TF-GAN's ``gp_target``, ``gp_one_sided`` and ``gp_epsilon``.
          r1_gamma: weight ``gamma`` of the R1 penalty on real data (0 disables).
          weight_clip: clip the discriminator's weights to ``[-c, c]`` after each update (WGAN).
          ema_decay: keep an exponential moving average of the generator's weights
            (``ema = decay * ema + (1 - decay) * w`` after every generator update; Yazici et al.
            2019) in ``self.ema_generator``, used by :meth:`generate` and by exports. ``None``
            disables it. Non-trainable state (batch-norm statistics) is copied, not averaged.
          jit_compile, steps_per_execution, **kwargs: passed to ``keras.Model.compile``.
        """
        super().compile(optimizer=None, jit_compile=jit_compile,
                        steps_per_execution=steps_per_execution, **kwargs)
        d_steps = int(d_steps)
        if d_steps < 1:
            raise ValueError(f"d_steps must be an integer >= 1, got {d_steps}")
        if gradient_penalty < 0 or r1_gamma < 0:
            raise ValueError("gradient_penalty and r1_gamma must be >= 0")
        if weight_clip is not None and weight_clip <= 0:
            raise ValueError(f"weight_clip must be positive or None, got {weight_clip}")
        self.gan_loss = losses_lib.get(loss, **(loss_options or {}))
        if self.gan_loss.needs_aux and self.num_classes is None:
            raise ValueError("the 'acgan' loss needs a conditional model (num_classes) whose "
                             "discriminator returns (logits, class_logits)")
        self.d_optimizer = keras.optimizers.get(
            d_optimizer or keras.optimizers.Adam(_DEFAULT_LR, beta_1=0.5))
        self.g_optimizer = keras.optimizers.get(
            g_optimizer or keras.optimizers.Adam(_DEFAULT_LR, beta_1=0.5))
        if self.d_optimizer is self.g_optimizer:
            raise ValueError("d_optimizer and g_optimizer must be two different optimizer "
                             "instances (each keeps its own state)")
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_steps = d_steps
        self.gradient_penalty = float(gradient_penalty)
        self.gp_target = float(gp_target)
        self.gp_one_sided = bool(gp_one_sided)
        self.gp_epsilon = float(gp_epsilon)
        self.r1_gamma = float(r1_gamma)
        self.weight_clip = None if weight_clip is None else float(weight_clip)
        if ema_decay is not None and not 0.0 < float(ema_decay) < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {ema_decay}")
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        if self.ema_decay is not None and getattr(self, "ema_generator", None) is None:
            self.ema_generator = keras.models.clone_model(self.generator)
            self.ema_generator.set_weights(self.generator.get_weights())
            self.ema_generator.trainable = False
        self._gan_compile_config = {
            "loss": self.gan_loss.get_config(), "d_steps": d_steps,
            "gradient_penalty": self.gradient_penalty, "gp_target": self.gp_target,
            "gp_one_sided": self.gp_one_sided, "gp_epsilon": self.gp_epsilon,
            "r1_gamma": self.r1_gamma, "weight_clip": self.weight_clip,
            "ema_decay": self.ema_decay, "jit_compile": jit_compile,
            "steps_per_execution": steps_per_execution,
        }

    def get_compile_config(self):
        if not getattr(self, "compiled", False) or not hasattr(self, "_gan_compile_config"):
            return None
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            **self._gan_compile_config,
        }

    def compile_from_config(self, config):
        config = dict(config)
        d_opt = keras.optimizers.deserialize(config.pop("d_optimizer"))
        g_opt = keras.optimizers.deserialize(config.pop("g_optimizer"))
        self.compile(d_optimizer=d_opt, g_optimizer=g_opt, **config)

    def get_config(self):
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "seed": self._seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(config.pop("generator"),
                                                          custom_objects=custom_objects)
        discriminator = keras.saving.deserialize_keras_object(config.pop("discriminator"),
                                                              custom_objects=custom_objects)
        return cls(generator=generator, discriminator=discriminator, **config)

    # ------------------------------------------------------------------ training

    def _unpack(self, data):
        if isinstance(data, dict):
            raise ValueError("GANModel expects a dataset of images or (images, labels) tuples, "
                             "got a dict")
        if isinstance(data, (tuple, list)):
            real = data[0]
            labels = data[1] if len(data) > 1 else None
        else:
            real, labels = data, None
        if self.num_classes is not None:
            if labels is None:
                raise ValueError(f"this GAN is conditional (num_classes={self.num_classes}) "
                                 "but the dataset yields no labels: use with_labels=True")
            labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        else:
            labels = None
        expected = tuple(self.generator.outputs[0].shape[1:]) if self.generator.outputs else None
        if expected is not None and real.shape.rank is not None:
            got = tuple(real.shape[1:])
            if len(got) != len(expected) or any(
                    a is not None and b is not None and a != b for a, b in zip(got, expected)):
                raise ValueError(f"the dataset yields examples of shape {got} but the generator "
                                 f"produces {expected}")
        if not real.dtype.is_floating:
            raise ValueError(f"real data must be floating point (images scaled to [-1, 1]), got "
                             f"{real.dtype.name}; use tfgan_app.data to build the pipeline")
        return real, labels

    def _next_seed(self):
        """A stateless-op seed ``int64 [2]`` from the model's SeedGenerator, per replica.

        All training randomness (noise, gradient-penalty interpolation) comes from here, so it
        is saved with the model and a resumed run continues the same random stream. The
        replica id is folded in: a model-attached SeedGenerator gives every replica the same
        seed, i.e. the same noise, under tf.distribute (GUIDE).
        """
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        return seed + tf.stack([tf.constant(0, tf.int64), _replica_id() * 1_000_003])

    def _noise(self, batch):
        return tf.random.stateless_normal([batch, self.latent_dim], seed=self._next_seed())

    def _g_inputs(self, z, labels):
        return z if self.num_classes is None else [z, labels]

    def _d_forward(self, x, labels, training=True):
        out = self.discriminator([x, labels] if self.d_conditional else x, training=training)
        if self.gan_loss.needs_aux:
            logits, class_logits = out
            return tf.cast(logits, tf.float32), tf.cast(class_logits, tf.float32)
        if isinstance(out, (list, tuple)):
            out = out[0]
        return tf.cast(out, tf.float32), None

    def _loss_ctx(self, labels, cls_real=None, cls_fake=None):
        if not self.gan_loss.needs_aux:
            return {}
        return {"one_hot_labels": tf.one_hot(labels, self.num_classes),
                "class_logits_real": cls_real, "class_logits_fake": cls_fake}

    def _d_output_mean(self, logits):
        return tf.reduce_mean(tf.sigmoid(logits) if self.gan_loss.sigmoid else logits)

    def discriminator_loss(self, real, labels, training=True):
        """Discriminator loss and its pieces on one batch (also used by tests and benchmarks).

        Returns ``(loss, d_real_logits, d_fake_logits)``; the loss includes the penalties.
        """
        batch = tf.shape(real)[0]
        fake = self.generator(self._g_inputs(self._noise(batch), labels), training=training)
        fake = tf.cast(fake, real.dtype)
        d_real, cls_real = self._d_forward(real, labels, training)
        d_fake, cls_fake = self._d_forward(fake, labels, training)
        loss = self.gan_loss.discriminator_loss(d_real, d_fake,
                                                **self._loss_ctx(labels, cls_real, cls_fake))
        if self.gradient_penalty > 0:
            d_fn = self.discriminator
            loss += self.gradient_penalty * losses_lib.wasserstein_gradient_penalty(
                d_fn, real, fake, conditioning=labels if self.d_conditional else None,
                epsilon=self.gp_epsilon, target=self.gp_target, one_sided=self.gp_one_sided,
                seed=self._next_seed())
        if self.r1_gamma > 0:
            loss += losses_lib.r1_penalty(self.discriminator, real,
                                          conditioning=labels if self.d_conditional else None,
                                          gamma=self.r1_gamma)
        return loss, d_real, d_fake

    def generator_loss(self, real, labels, training=True):
        """Generator loss on one batch: fresh noise, the real batch's labels. A scalar."""
        batch = tf.shape(real)[0]
        fake = self.generator(self._g_inputs(self._noise(batch), labels), training=training)
        fake = tf.cast(fake, real.dtype)
        d_fake, cls_fake = self._d_forward(fake, labels, training)
        # Only the relativistic loss uses D(real) in the generator loss.
        d_real = (self._d_forward(real, labels, training)[0]
                  if self.gan_loss.name == "relativistic" else d_fake)
        return self.gan_loss.generator_loss(d_real, d_fake,
                                            **self._loss_ctx(labels, None, cls_fake))

    def _d_step(self, real, labels):
        with tf.GradientTape() as tape:
            d_loss, d_real, d_fake = self.discriminator_loss(real, labels)
            # Keras sums gradients over replicas: scale the per-replica mean (GUIDE).
            scaled = d_loss / _num_replicas()
        grads = tape.gradient(scaled, self.discriminator.trainable_variables)
        self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
        if self.weight_clip is not None:
            losses_lib.clip_weights(self.discriminator.trainable_variables, self.weight_clip)
        return d_loss, d_real, d_fake

    def _g_step(self, real, labels):
        with tf.GradientTape() as tape:
            g_loss = self.generator_loss(real, labels)
            scaled = g_loss / _num_replicas()
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        if self.ema_decay is not None:
            self._update_ema()
        return g_loss

    def _update_ema(self):
        d = self.ema_decay
        trainable = {id(w) for w in self.generator.trainable_weights}
        for ema_w, w in zip(self.ema_generator.weights, self.generator.weights):
            ema_w.assign(d * ema_w + (1.0 - d) * w if id(w) in trainable else w)

    def train_step(self, data):
        if not hasattr(self, "gan_loss"):
            raise RuntimeError("call compile() before fit()")
        real, labels = self._unpack(data)
        d_loss, d_real, d_fake = self._d_step(real, labels)
        if self.d_steps == 1:
            g_loss = self._g_step(real, labels)
            g_weight = 1.0
        else:
            do_g = tf.equal(self.d_optimizer.iterations % self.d_steps, 0)
            g_loss = tf.cond(do_g, lambda: self._g_step(real, labels),
                             lambda: tf.constant(0.0, tf.float32))
            g_weight = tf.cast(do_g, tf.float32)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss, sample_weight=g_weight)
        self.d_real_tracker.update_state(self._d_output_mean(d_real))
        self.d_fake_tracker.update_state(self._d_output_mean(d_fake))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        real, labels = self._unpack(data)
        d_loss, d_real, d_fake = self.discriminator_loss(real, labels, training=False)
        g_loss = self.generator_loss(real, labels, training=False)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(self._d_output_mean(d_real))
        self.d_fake_tracker.update_state(self._d_output_mean(d_fake))
        return {m.name: m.result() for m in self.metrics}

    # ------------------------------------------------------------------ sampling

    @property
    def sampling_generator(self):
        """The generator used for sampling and export: the EMA copy when enabled."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def generate(self, n, labels=None, seed=None, batch_size=1024, use_ema=True):
        """Draw ``n`` samples from the generator in inference mode.

        Args:
          n: number of samples.
          labels: class labels ``int [n]`` for a conditional model; default
            ``arange(n) % num_classes``. Not allowed for an unconditional model.
          seed: int; the same seed gives the same samples (latent vectors from
            :func:`latent_vectors`). ``None`` draws a random seed.
          batch_size: generator batch size.
          use_ema: sample from the EMA generator when ``compile(ema_decay=...)`` enabled it.

        Returns:
          ``np.ndarray float32 [n, *data_shape]`` (images in ``[-1, 1]``).
        """
        n = int(n)
        if n <= 0:
            raise ValueError(f"n must be a positive integer, got {n}")
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        z = latent_vectors(n, self.latent_dim, seed)
        if self.num_classes is None:
            if labels is not None:
                raise ValueError("labels were given but this GAN is unconditional")
        else:
            labels = (np.arange(n) % self.num_classes if labels is None
                      else np.asarray(labels).reshape(-1))
            if labels.shape[0] != n:
                raise ValueError(f"expected {n} labels, got {labels.shape[0]}")
            if labels.min() < 0 or labels.max() >= self.num_classes:
                raise ValueError(f"labels must be in [0, {self.num_classes}), got "
                                 f"[{labels.min()}, {labels.max()}]")
            labels = tf.constant(labels, tf.int32)
        gen = self.sampling_generator if use_ema else self.generator
        out = []
        for start in range(0, n, batch_size):
            zb = z[start:start + batch_size]
            inputs = zb if labels is None else [zb, labels[start:start + batch_size]]
            out.append(np.asarray(gen(inputs, training=False), dtype=np.float32))
        return np.concatenate(out, axis=0)
