"""The maths of a training step under ``tf.distribute`` replication, for :class:`GANModel`.

* Keras sums gradients over replicas, so each replica scales its per-replica mean loss by
  ``1 / num_replicas()`` before differentiating (measured: without it, two replicas update
  exactly twice as far).
* Every replica draws different noise: :func:`replica_id` is folded into the seed (a
  model-attached ``SeedGenerator`` gives every replica the same numbers).
* Batch-coupled losses (RaGAN compares each logit with the *batch mean* of the other side's)
  all-gather their logits (:func:`global_logits`), so every replica computes the loss of the
  global batch, as one device would.
* A conditional optimizer update (the generator's, every ``d_steps``) cannot sit in a
  ``tf.cond`` in replica context under strategies that synchronise through ``merge_call``:
  :func:`apply_if` applies it under the condition in cross-replica context, the way Keras'
  ``LossScaleOptimizer`` applies its conditional updates.

``tests/test_distribute.py`` checks that one step on two replicas equals one step on one
device with the same global batch and latent vectors, for every loss and penalty.
"""

from __future__ import annotations

import tensorflow as tf

#: Losses whose per-example terms depend on batch statistics; see :func:`global_logits`.
BATCH_COUPLED_LOSSES = frozenset({"relativistic"})


def replica_id() -> tf.Tensor:
    """This replica's index (``int64`` scalar; 0 outside a replica context)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return tf.constant(0, tf.int64)
    return tf.cast(ctx.replica_id_in_sync_group, tf.int64)


def num_replicas() -> int:
    """Replicas in sync under the current strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def needs_merge_call() -> bool:
    """Whether the current strategy synchronises replicas through ``merge_call`` (so no
    synchronisation point may sit inside a ``tf.cond`` in replica context). ``False`` for the
    default strategy, whose ``merge_call`` is a plain call."""
    if not tf.distribute.has_strategy() or tf.distribute.get_replica_context() is None:
        return False
    return not tf.__internal__.distribute.strategy_supports_no_merge_call()


def global_logits(loss_name: str, *logits):
    """For batch-coupled losses under replication, the logits of the whole global batch.

    ``all_gather`` passes gradients back to each replica's own slice (summed over replicas),
    so with the usual ``1 / num_replicas`` scaling the summed weight gradients are those of
    the global batch's loss. Identity on one replica and for the other losses.
    """
    ctx = tf.distribute.get_replica_context()
    if (ctx is None or ctx.num_replicas_in_sync == 1
            or loss_name not in BATCH_COUPLED_LOSSES):
        return logits
    return tuple(None if t is None else ctx.all_gather(t, axis=0) for t in logits)


def apply_if(condition, optimizer, grads, variables) -> None:
    """``optimizer.apply(grads, variables)`` when ``condition`` (the same on every replica),
    applied in cross-replica context through ``merge_call`` (see the module docstring)."""
    def apply_in_cross_replica_context(distribution, condition, grads):
        def apply():
            distribution.extended.call_for_each_replica(
                lambda g: optimizer.apply(g, variables), args=(grads,))
            return tf.constant(True)

        tf.cond(distribution.experimental_local_results(condition)[0], apply,
                lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(apply_in_cross_replica_context,
                                                   args=(condition, grads))
