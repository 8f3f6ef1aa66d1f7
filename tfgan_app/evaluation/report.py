"""Evaluate a run directory into ``RUN_DIR/eval.json`` (:func:`evaluate_run`) and print the
result as a table (:func:`format_table`)."""

from __future__ import annotations

import math
import time

import numpy as np

from tfgan_app.evaluation import registry as _reg
from tfgan_app.evaluation.evaluator import PARZEN_NUM_SAMPLES, Evaluator

__all__ = ["evaluate_run", "format_table", "finite_or_none"]


def finite_or_none(v):
    """``v``, or ``None`` when it is a non-finite float (``eval.json`` is strict JSON)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate_run(run_dir, metrics=None, num_samples=None, *, seed: int = 0, extractor=None,
                 real=None, cache_dir=None, parzen_samples: int = PARZEN_NUM_SAMPLES,
                 write: bool = True) -> dict:
    """Evaluate a training run directory and write its ``eval.json``.

    Reads the run through :class:`tfgan_app.rundir.RunDir`: its data description
    (``config["data"]``) picks the evaluator (:class:`~tfgan_app.evaluation.Evaluator`) and
    the real data. A translation run is judged on its held-out pairs (its translator against
    the targets, beside the input's own baseline: :mod:`tfgan_app.evaluation.translation`);
    otherwise its sampler (:meth:`RunDir.sampler`: the EMA generator when the run kept
    one, labels balanced over ``num_classes`` for a conditional run) draws ``num_samples``
    samples exactly as ``GANModel.generate(num_samples, seed=seed)`` would. The metrics for
    the run's data (see :mod:`tfgan_app.evaluation.evaluator`) and the real-vs-real floor are
    written atomically by :meth:`RunDir.write_eval`, and returned.

    Args:
      run_dir: the run directory.
      metrics: metric names (list or comma-separated string) or ``None`` for the data's
        default set.
      num_samples: generated samples (``None``: see :class:`Evaluator`).
      seed: sampling seed. extractor: feature extractor for images (default: offline
        classifier). real: override the real data (anything :class:`Evaluator` takes).
      cache_dir: classifier cache folder. parzen_samples: samples for Parzen (10,000).
      write: write ``eval.json`` (default ``True``).

    Returns:
      ``{"run_dir", "preset", "data", "kind", "metrics": {name: value}, "floor": {name:
      value}, "floor_label", "baseline" and "baseline_label" (translation), "num_samples",
      "num_reference", "num_heldout", "extractor" (images), "seed",
      "seconds", "protocol": {...}}``; non-finite numbers become ``None``.

    Raises:
      ValueError: missing/invalid run files (:class:`tfgan_app.rundir.RunDirError`), unknown
        metrics, data without a real source.
    """
    from tfgan_app.rundir import RunDir

    t0 = time.time()
    run = RunDir(run_dir)
    data = run.data
    ev = Evaluator(real if real is not None else data, metrics=metrics, extractor=extractor,
                   num_samples=num_samples, cache_dir=cache_dir, seed=seed,
                   parzen_samples=parzen_samples)
    subject = ev.subject(run)
    gen = ev.evaluate(subject, seed=seed)
    floor = ev.floor()
    baseline = ev.baseline()
    result = {
        "run_dir": run.root,
        "preset": run.config.get("preset"),
        **ev.info,
        "metrics_requested": list(ev.metrics),
        "num_samples": ev.num_samples,
        "seed": seed,
        "metrics": {k: finite_or_none(v) for k, v in gen.items()},
        "floor": {k: finite_or_none(v) for k, v in floor.items()},
        "floor_label": ev.floor_label,
        **({} if baseline is None else {
            "baseline": {k: finite_or_none(v) for k, v in baseline.items()},
            "baseline_label": ev.baseline_label}),
        **({"details": ev.details(subject)} if hasattr(ev, "details") else {}),
        "protocol": _reg.protocol(ev),
        "seconds": round(time.time() - t0, 3),
    }
    if write:
        run.write_eval(result)
    return result


_PAIRS = {"kid": "kid_std", "is": "is_std", "parzen_ll": "parzen_ll_stderr", "swd": "swd_stderr"}
_HIDDEN = {"kid_std", "kid_stderr", "is_std", "parzen_ll_stderr", "swd_stderr", "class_counts",
           "mode_counts", "num_modes"}


def _fmt(values, key):
    v = values.get(key)
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        if key == "modes_captured" and values.get("num_modes"):
            return f"{v}/{values['num_modes']}"
        return str(v)
    s = f"{v:.4g}"
    err = values.get(_PAIRS.get(key, ""))
    if err is not None and key in _PAIRS:
        s += f" ± {err:.2g}"
    return s


def format_table(results: dict) -> str:
    """A plain-text table of an :func:`evaluate_run` result: one row per metric, columns
    ``generated``, the input baseline (translation) and ``real floor`` / ``real targets``
    (``±`` gives the std over subsets/splits, or the standard error for Parzen and for SWD's
    random projections)."""
    if not isinstance(results, dict) or "metrics" not in results:
        raise ValueError("results must be the dict returned by evaluate_run (with 'metrics')")
    gen = results["metrics"]
    columns = [("generated", gen)]
    if results.get("baseline") is not None:
        columns.append((results.get("baseline_label") or "baseline", results["baseline"]))
    columns.append((results.get("floor_label") or "real floor", results.get("floor") or {}))
    keys = [k for k in gen if k not in _HIDDEN]
    rows = [("metric", *(name for name, _ in columns))]
    rows += [(k, *(_fmt(values, k) for _, values in columns)) for k in keys]
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    what = "pairs" if "baseline" in results else "samples"
    head = f"{results.get('data', '?')} ({results.get('kind', '?')}), " \
           f"{results.get('num_samples', '?')} {what}"
    ext = results.get("extractor")
    if isinstance(ext, dict):
        head += f", features: {ext.get('name')}"
        if ext.get("test_accuracy") is not None:
            head += f" (test accuracy {ext['test_accuracy']:.3f})"
    if results.get("baseline_is"):
        head += f"; baseline: {results['baseline_is']}"
    lines.append(head)
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * x for x in w))
    return "\n".join(lines)
