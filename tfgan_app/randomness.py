"""Training randomness of :class:`~tfgan_app.GANModel`: one seeded stream, saved and per replica.

All training randomness (latent noise, gradient-penalty interpolation, a penalty's own draws)
comes from :meth:`SeededTraining.next_seed`: stateless ops seeded from the model's
``keras.random.SeedGenerator``, with the replica id folded in (a model-attached
``SeedGenerator`` gives every replica the same numbers under ``tf.distribute``). Its state, and
that of any layer's seed generator (dropout), is saved with the model's weights
(``save_weights``, ``.keras``, ``BackupAndRestore``), which Keras' ``Layer.save_own_variables``
does not do, so a resumed run continues the same random stream.
"""

from __future__ import annotations

import tensorflow as tf

from tfgan_app import replication


class SeededTraining:
    """Mixin for :class:`~tfgan_app.GANModel` (needs ``self.seed_generator`` and
    ``self.latent_dim``). Override :meth:`sample_latent` and
    :meth:`sample_interpolation_weights` to control the training noise (as the distribution
    tests do to feed one device and N replicas the same vectors)."""

    def next_seed(self):
        """A stateless-op seed ``int64 [2]`` from the model's SeedGenerator, per replica.

        All training randomness (noise, gradient-penalty interpolation, a penalty's own
        draws) comes from here, so it is saved with the model and a resumed run continues the
        same random stream. The
        replica id is folded in: a model-attached SeedGenerator gives every replica the same
        seed, i.e. the same noise, under tf.distribute (:mod:`tfgan_app.replication`).
        """
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        return seed + tf.stack([tf.constant(0, tf.int64), replication.replica_id() * 1_000_003])

    def sample_latent(self, batch):
        """Latent vectors for one draw of training noise on this replica.

        Args:
          batch: this replica's batch size (an ``int32`` scalar tensor).

        Returns:
          ``float32 [batch, latent_dim]``, N(0, 1), from :meth:`next_seed` (so replicas
          differ and the stream is restored with the model). Override to control the training
          noise, e.g. to feed one device and N replicas the same vectors in tests.
        """
        return tf.random.stateless_normal([batch, self.latent_dim], seed=self.next_seed())

    def sample_interpolation_weights(self, real):
        """The WGAN-GP interpolation weights ``alpha ~ U[0, 1)`` for one batch on this replica.

        Args:
          real: this replica's real batch ``[B, ...]``.

        Returns:
          ``alpha`` of ``real``'s dtype and shape ``[B, 1, ..., 1]`` (same rank as ``real``);
          ``x_hat = real + alpha * (generated - real)``. Override together with
          :meth:`sample_latent`.
        """
        shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], 0)
        return tf.random.stateless_uniform(shape, seed=self.next_seed(), dtype=real.dtype)

    # The training noise's SeedGenerator state (and any layer's, e.g. dropout) is not in
    # Layer.save_own_variables, so `save_weights` -- which BackupAndRestore uses -- and `.keras`
    # files would not restore the random stream. Save it with the model's own variables.
    def _random_states(self):
        states, seen = [self.seed_generator.state], {id(self.seed_generator.state)}
        for layer in self._flatten_layers(include_self=False):
            for sg in getattr(layer, "_seed_generators", []):
                if id(sg.state) not in seen:
                    seen.add(id(sg.state))
                    states.append(sg.state)
        return states

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, state in enumerate(self._random_states()):
            store[f"random_state_{i}"] = state

    def load_own_variables(self, store):
        keys = list(store.keys())
        random_keys = sorted((k for k in keys if str(k).startswith("random_state_")),
                             key=lambda k: int(str(k).rsplit("_", 1)[1]))
        super().load_own_variables({k: store[k] for k in keys if k not in random_keys})
        states = self._random_states()
        if len(random_keys) == len(states):
            for k, state in zip(random_keys, states):
                state.assign(store[k])
        elif random_keys:  # different layers (e.g. an EMA copy added since): the noise only
            states[0].assign(store[random_keys[0]])
