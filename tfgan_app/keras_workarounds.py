"""What Keras 3 ``fit`` needs to work under every ``tf.distribute`` strategy, in one place.

:class:`KerasFitWorkarounds` is a mixin for a ``keras.Model`` (``GANModel`` inherits it). Each
workaround names the upstream issue it works around:

* keras-team/keras#20585 and tensorflow/tensorflow#72388 -- ``fit`` under
  ``MultiWorkerMirroredStrategy``: the eager symbolic build reduces a batch of ``PerReplica``
  values, and scalar step logs cannot be reduced over axis 0.
* keras-team/keras#19246 -- ``steps_per_execution > 1`` under mirrored strategies with several
  replicas.
* ``jit_compile=True`` with several CPU replicas (turned off, as Keras' ``jit_compile="auto"``
  does) or several GPUs per process (each replica's step compiled on its own).

``tests/test_distribute.py`` checks that the multi-worker failure still happens without the
scalar-logs workaround, so it can go when Keras fixes it. Strategies themselves, chief/worker
helpers and mixed precision live in :mod:`tfgan_app.distribute`.

The same class decides how ``fit`` runs its steps on one device, since both are overrides of
Keras' ``_make_function``: with ``jit_compile=True`` and ``steps_per_execution > 1``, each
execution is one XLA program (:func:`one_program_per_execution`; bit-identical to Keras' loop,
``tests/test_model.py``), and the per-epoch metric reset and read are one graph call each.
"""

from __future__ import annotations

import warnings
import weakref

import tensorflow as tf
from keras.src import tree
from keras.src.utils.python_utils import pythonify_logs

from tfgan_app.distribute import is_multi_worker


def _fully_built(model) -> bool:
    """Whether every layer, optimizer and compile-time loss/metric of ``model`` is built."""
    if not all(layer.built for layer in model._flatten_layers()):
        return False
    for attr in ("optimizer", "d_optimizer", "g_optimizer"):
        opt = getattr(model, attr, None)
        if opt is not None and not opt.built:
            return False
    for attr in ("_compile_metrics", "_compile_loss"):
        obj = getattr(model, attr, None)
        if obj is not None and not obj.built:
            return False
    return True


def _local_devices(strategy) -> tuple:
    """This process's device names under ``strategy`` (``()`` for the default strategy)."""
    try:
        return tuple(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError, NotImplementedError):  # the default strategy
        return ()


def _multi_device(strategy) -> bool:
    """Several devices in this process (a mirrored strategy; TPUs excluded)."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False  # TPUStrategy compiles with XLA itself
    return len(_local_devices(strategy)) > 1


def _all_gpu(strategy) -> bool:
    """Whether every local device of ``strategy`` is a GPU (``False`` when it has none)."""
    devices = _local_devices(strategy)
    return bool(devices) and all("GPU" in d.upper().rsplit("/", 1)[-1] for d in devices)


def _merge_call_replicas(strategy) -> bool:
    """Several replicas synchronised through merge_call (mirrored strategies; not TPUs)."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False
    return _multi_device(strategy) or is_multi_worker(strategy)


def _xla_supported(strategy) -> bool:
    """Whether Keras ``fit`` can run with ``jit_compile=True`` under ``strategy``."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if _multi_device(strategy) or is_multi_worker(strategy):
        return _all_gpu(strategy)
    return True


class KerasFitWorkarounds:
    """Mixin for a ``keras.Model`` whose ``fit`` must work under every ``tf.distribute``
    strategy: the ONE place for the workarounds; :class:`tfgan_app.GANModel` uses it.

    Keras 3 ``fit`` under ``MultiWorkerMirroredStrategy`` across processes is broken
    (keras-team/keras#20585, open; tensorflow/tensorflow#72388) in two ways:

    1. ``fit`` calls ``_maybe_symbolic_build``, which takes a batch from the iterator and
       ``strategy.reduce``-s it eagerly; for a batch of ``PerReplica`` values across workers
       this fails with "Attempt to convert a value (PerReplica ...)". Fix: return at once when
       the model, its optimizers and compile state are built (``GANModel.compile`` builds both
       optimizers inside the strategy scope), else defer to Keras. (With one CPU device per
       worker, as in this project's tests, the batch is a plain tensor and Keras' version
       passes; the failure needs several devices per worker. The override is unit-tested.)
    2. The logs a ``train_step`` returns are reduced with ``strategy.reduce("MEAN", v,
       axis=0)``, which fails for scalars: "Invalid reduction dimension 0 for input with 0
       dimensions". Fix: :meth:`_distributed_logs` returns them with shape ``[1]`` under a
       multi-worker strategy (epoch logs are read from the metrics, so they stay scalars).
       ``tests/test_distribute.py`` runs two workers without this and checks they still fail
       that way, so the workaround can go when Keras fixes it.

    Found while doing this (``compile``, with a warning):

    * ``steps_per_execution > 1`` fails under ``MirroredStrategy`` (several devices) and
      ``MultiWorkerMirroredStrategy`` ("You must feed a value for placeholder tensor
      '.../while/cond/.../Placeholder'", keras-team/keras#19246, also with a plain
      ``Sequential`` model): set to 1.
    * ``jit_compile=True`` fails with several CPU devices or CPU workers (see
      :meth:`compile`): turned off, as Keras' own ``jit_compile="auto"`` does under
      ``tf.distribute``. Several GPUs per process compile each replica's step instead
      (:meth:`_make_function`).

    Not a bug, also here: under ``TPUStrategy`` Keras keeps only the first replica's step
    logs; :meth:`_distributed_logs` averages them over replicas so progress bars show global
    values there too.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if _fully_built(self):
            # keras-team/keras#20585, tensorflow#72388: nothing to build, so nothing to reduce
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile(self, *args, **kwargs):
        strategy = self.distribute_strategy
        if int(kwargs.get("steps_per_execution") or 1) > 1 and _merge_call_replicas(strategy):
            # keras-team/keras#19246 (open), measured here with a plain Sequential model too:
            # under MirroredStrategy (2 CPU devices) and MultiWorkerMirroredStrategy (2
            # workers) Keras' steps_per_execution loop -- a tf.cond inside a tf.while_loop
            # around `strategy.run`, whose replicas synchronise through merge_call -- fails
            # with "You must feed a value for placeholder tensor
            # '.../while/cond/then/.../while/cond/Placeholder_3'".
            warnings.warn("steps_per_execution > 1 fails under MirroredStrategy and "
                          "MultiWorkerMirroredStrategy in Keras 3 (keras-team/keras#19246); "
                          "using steps_per_execution=1", stacklevel=3)
            kwargs["steps_per_execution"] = 1
        if kwargs.get("jit_compile") is True and not _xla_supported(strategy):
            # Several CPU devices: Keras compiles the cross-device call as one XLA cluster,
            # which cannot reach the other devices' variables ("Trying to access resource ...
            # located in device ...:1 from device ...:0"); several CPU workers: "Collectives
            # are not yet implemented for CPU devices when compiling with XLA". Keras' own
            # jit_compile="auto" turns XLA off under tf.distribute: do that, with a warning.
            warnings.warn("jit_compile=True is not supported with this strategy on these "
                          "devices (XLA with replicas needs GPUs or TPUs); training without XLA",
                          stacklevel=3)
            kwargs["jit_compile"] = False
        return super().compile(*args, **kwargs)

    def _make_function(self, step_function):
        # Several GPUs per process with jit_compile=True: compiling the whole `strategy.run`
        # call as one XLA cluster fails (variables on several devices), so compile each
        # replica's step instead, as tf.keras did. TensorFlow's mirrored strategies skip
        # merge_call inside XLA when every device is a GPU, so the optimizer's all-reduce works.
        strategy = self.distribute_strategy
        if not (self.jit_compile and _multi_device(strategy)):
            keras_function = super()._make_function(step_function)
            if self.jit_compile and self.steps_per_execution > 1 and self._one_device_graph():
                return one_program_per_execution(step_function, self.steps_per_execution,
                                                 keras_function)
            return keras_function
        compiled = {}

        def xla_step(data):
            # One XLA function per replica: one trace would capture the first replica's copies
            # of the mirrored variables and be reused on the other devices.
            ctx = tf.distribute.get_replica_context()
            key = tf.get_static_value(ctx.replica_id_in_sync_group)
            key = None if key is None else int(key)
            if key not in compiled:
                compiled[key] = tf.function(step_function, jit_compile=True,
                                            reduce_retracing=True)
            return compiled[key](data)

        saved = self._jit_compile
        self._jit_compile = False
        try:
            return super()._make_function(xla_step)
        finally:
            self._jit_compile = saved

    def _one_device_graph(self) -> bool:
        """Compiled (not ``run_eagerly``) on the default strategy: a model built outside any
        ``tf.distribute`` scope and used outside one."""
        return (not self.run_eagerly and self._distribute_strategy is None
                and not tf.distribute.has_strategy())

    def _metrics_function(self, kind: str):
        """One ``tf.function`` resetting (``kind="reset"``) or reading (``"result"``) every
        metric, or ``None`` where Keras' own per-metric eager calls must run (in a trace,
        under a strategy, ``run_eagerly``). Keras calls both once per epoch (and per
        ``evaluate``): eagerly, a reset is two ``assign`` ops and a result a division per
        metric, ~0.1 ms each here, which for the five GAN trackers was 20% of a d2l-gaussian
        epoch of 125 steps; as one graph call it is one dispatch."""
        if not tf.executing_eagerly() or not self._one_device_graph():
            return None
        metrics = tuple(self.metrics)
        ids = tuple(id(m) for m in metrics)
        cache = _METRICS_FUNCTIONS.setdefault(self, {})
        if kind not in cache or cache[kind][0] != ids:  # built, or the metrics changed
            if kind == "reset":
                def fn():
                    for m in metrics:
                        m.reset_state()
            else:
                def fn():
                    logs = {}
                    for m in metrics:
                        result = m.result()
                        logs.update(result if isinstance(result, dict) else {m.name: result})
                    return logs
            cache[kind] = (ids, tf.function(fn))
        return cache[kind][1]

    def reset_metrics(self):
        fn = self._metrics_function("reset")
        if fn is None:
            return super().reset_metrics()
        fn()

    def get_metrics_result(self):
        fn = self._metrics_function("result")
        if fn is None:
            return super().get_metrics_result()
        return pythonify_logs(fn())

    def _distributed_logs(self, logs: dict) -> dict:
        """Step logs (scalars, in replica context) in the form Keras can reduce."""
        strategy = tf.distribute.get_strategy()
        if is_multi_worker(strategy):
            # keras-team/keras#20585 / tensorflow#72388: MEAN over axis 0 needs a rank >= 1.
            return {k: tf.reshape(v, [1]) for k, v in logs.items()}
        if isinstance(strategy, tf.distribute.TPUStrategy) and strategy.num_replicas_in_sync > 1:
            ctx = tf.distribute.get_replica_context()
            if ctx is not None:
                return {k: ctx.all_reduce("MEAN", v) for k, v in logs.items()}
        return logs


#: model -> {key: tf.function} of :meth:`KerasFitWorkarounds._metrics_function` (weakly keyed:
#: not an attribute, which Keras would track and serialise).
_METRICS_FUNCTIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _stackable(spec) -> bool:
    """Whether every component of a dataset element is a tensor of fully known shape."""
    return all(isinstance(s, tf.TensorSpec) and s.shape.is_fully_defined()
               for s in tf.nest.flatten(spec))


def one_program_per_execution(step_function, steps: int, keras_function):
    """A ``train_function`` (or ``test_function``) that runs each execution's ``steps`` steps
    as ONE XLA program, where Keras runs a graph ``tf.while_loop`` that launches the compiled
    step once per step.

    Keras 3 (TensorFlow backend) compiles only ``one_step_on_data`` with XLA; its
    ``steps_per_execution`` loop -- a ``tf.while_loop`` of ``tf.cond`` s over
    ``get_next_as_optional`` -- runs in the graph executor, so every step pays a kernel
    launch of the compiled cluster, the Optional plumbing and an iterator read. For a small
    model that is nearly all of the step: the d2l-gaussian preset (batch 8, an affine G and a
    2-5-3-1 D) trained at ~3,300 steps/s through Keras' loop; its 125 steps as one compiled
    loop over a pre-stacked epoch ran at 30,000-50,000 steps/s. Through this function ``fit``
    runs at ~7,500 steps/s (``benchmarks/vs_pytorch.py``): reading the batches from the
    ``tf.data`` iterator (~70 us each here) and Keras' per-epoch work are the rest.

    Here each call first reads up to ``steps`` batches from the iterator into a stacked
    tensor (one graph function), then runs the step over them inside one
    ``tf.while_loop`` compiled with the step (``jit_compile=True``): the same steps, the same
    order, the same variable updates and random draws; the logs are the last step's, as in
    Keras. A short last execution (fewer batches left) runs the same program with a smaller
    count. Only on the default strategy and for datasets whose elements all have static shapes
    (batched with ``drop_remainder=True``, as :mod:`tfgan_app.data` does); anything else --
    or an iterator that is not a ``tf.data.Iterator`` -- goes through ``keras_function``.
    """

    @tf.function(reduce_retracing=True, autograph=False)
    def read(iterator):
        spec = iterator.element_spec
        arrays = [tf.TensorArray(s.dtype, size=steps, element_shape=s.shape)
                  for s in tf.nest.flatten(spec)]

        def body(i, more, arrays):
            nxt = iterator.get_next_as_optional()
            more = nxt.has_value()

            def write():
                return [a.write(i, v) for a, v in zip(arrays, tf.nest.flatten(nxt.get_value()))]

            arrays = tf.cond(more, write, lambda: arrays)
            return i + tf.cast(more, tf.int32), more, arrays

        n, _, arrays = tf.while_loop(lambda i, more, _: tf.logical_and(more, i < steps), body,
                                     (tf.constant(0), tf.constant(True), arrays))
        return n, tf.nest.pack_sequence_as(spec, [a.stack() for a in arrays])

    @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
    def run(batches, n):
        def body(i, _):
            return i + 1, step_function(tree.map_structure(lambda t: t[i], batches))

        # The step is traced once more, on its own, only for the structure of its logs (the
        # loop's initial values), so that XLA compiles one copy of it, in the loop: the first
        # execution (tracing and compiling) took 3.4-4.0 s on d2l-gaussian with a second copy
        # run before the loop, 2.8-3.4 s so, and 2.2-2.5 s through Keras' loop. AutoGraph is
        # off, as in Keras' own step functions (with it, tracing alone took 5 s).
        spec = tree.map_structure(lambda t: tf.TensorSpec(t.shape[1:], t.dtype), batches)
        traced = tf.function(step_function, autograph=False).get_concrete_function(spec)
        logs = tree.map_structure(lambda t: tf.zeros(t.shape, t.dtype), traced.structured_outputs)
        _, logs = tf.while_loop(lambda i, _: i < n, body, (tf.constant(0), logs))
        return logs

    def function(iterator):
        if not (isinstance(iterator, tf.data.Iterator) and _stackable(iterator.element_spec)):
            return keras_function(iterator)
        n, batches = read(iterator)
        if int(n) == 0:
            raise StopIteration
        return run(batches, n)

    return function
