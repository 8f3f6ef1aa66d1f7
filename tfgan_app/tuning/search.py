"""Running a search: :func:`make_tuner`, :func:`distributed_env` and :func:`search` (what
``tfgan-app tune`` does)."""

from __future__ import annotations

import contextlib
import json
import os

import keras_tuner as kt

from tfgan_app.tuning import results, space
from tfgan_app.tuning.hypermodel import GANHyperModel

__all__ = ["TUNERS", "SEARCH_FILE", "make_tuner", "distributed_env", "search"]

TUNERS = ("random", "bayesian", "hyperband", "grid")
#: The search's own arguments, checked by ``--resume``.
SEARCH_FILE = "search.json"


def make_tuner(hypermodel: GANHyperModel, tuner: str = "random", max_trials: int = 10, *,
               directory: str = "tuning", project_name: str | None = None,
               overwrite: bool = False, seed: int | None = 0, hyperparameters=None,
               tune_new_entries: bool = True, allow_new_entries: bool = True,
               max_consecutive_failed_trials: int = 3, max_epochs: int | None = None,
               factor: int = 3, **kwargs):
    """A keras-tuner tuner for ``hypermodel`` with its objective.

    Args:
      tuner: ``"random"`` (``kt.RandomSearch``), ``"bayesian"`` (``kt.BayesianOptimization``),
        ``"hyperband"`` (``kt.Hyperband``; ``max_epochs`` defaults to the settings' epochs,
        ``max_trials`` caps its brackets) or ``"grid"`` (``kt.GridSearch``, for Choice-only
        spaces).
      max_trials: total number of trials (a resumed search counts the earlier ones).
      directory, project_name: trials go to ``directory/project_name/trial_<id>/``.
      overwrite: start again (``True``) or reload an existing search (``False``).
      seed: the search's seed (``None``: random). The oracle gets ``seed + 1``: keras-tuner
        replaces a falsy seed by a random one (``Oracle``: ``seed or random.randint(...)``),
        so seed 0 would otherwise draw different trials on every run.
      hyperparameters, tune_new_entries, allow_new_entries: narrow or extend the space (see
        :mod:`tfgan_app.tuning`).
      max_consecutive_failed_trials: stop the search after that many failures in a row.
      **kwargs: passed to the tuner (e.g. ``num_initial_points`` for ``bayesian``).

    Raises:
      ValueError: an unknown tuner.
    """
    if tuner not in TUNERS:
        raise ValueError(f"unknown tuner {tuner!r}; valid tuners: {', '.join(TUNERS)}")
    oracle_seed = None if seed is None else int(seed) + 1
    common = dict(objective=hypermodel.objective, seed=oracle_seed,
                  hyperparameters=hyperparameters,
                  tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
                  max_consecutive_failed_trials=max_consecutive_failed_trials,
                  directory=directory, project_name=project_name or hypermodel.preset,
                  overwrite=overwrite, **kwargs)
    if tuner == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if tuner == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if tuner == "grid":
        return kt.GridSearch(hypermodel, max_trials=max_trials, **common)
    t = kt.Hyperband(hypermodel, max_epochs=int(max_epochs or hypermodel.base_settings["epochs"]),
                     factor=factor, **common)
    if max_trials:
        t.oracle.max_trials = int(max_trials)  # honoured by Oracle.create_trial
    return t


@contextlib.contextmanager
def _environ(values: dict):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def distributed_env(role: str, oracle_address: str, tuner_id: str | None = None) -> dict:
    """The ``KERASTUNER_*`` variables (``{name: str}``) for a chief (``role="chief"``) or a
    worker (``role="worker"``).

    ``oracle_address`` is ``HOST:PORT`` (the chief listens there). Worker ids must not contain
    ``chief`` (keras-tuner tells the chief by that substring); the chief's id is ``chief``.

    Raises:
      ValueError: a malformed address, an unknown role or a tuner id of the wrong role.
    """
    host, sep, port = str(oracle_address).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--oracle-address must be HOST:PORT, got {oracle_address!r}")
    if role == "chief":
        tid = tuner_id or "chief"
        if "chief" not in tid:
            raise ValueError(f"the chief's tuner id must contain 'chief', got {tid!r}")
    elif role == "worker":
        tid = tuner_id or "tuner0"
        if "chief" in tid:
            raise ValueError(f"a worker's tuner id must not contain 'chief', got {tid!r}")
    else:
        raise ValueError(f"role must be 'chief' or 'worker', got {role!r}")
    return {"KERASTUNER_TUNER_ID": tid, "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": port}


def _prepare_out(out: str, meta: dict, resume: bool, overwrite: bool) -> bool:
    """Check ``out`` for a local search or a chief; returns keras-tuner's ``overwrite``."""
    meta_path = os.path.join(out, SEARCH_FILE)
    exists = os.path.exists(os.path.join(out, "oracle.json")) or os.path.exists(meta_path)
    if exists and not (resume or overwrite):
        raise ValueError(f"{out} already holds a search: pass --resume to continue it or "
                         "--overwrite to start again")
    if not exists and os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"{out} is not empty and holds no search; choose another --out")
    if resume and os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            stored = json.load(f)
        for key in ("preset", "objective", "tuner", "overrides"):
            if stored.get(key) != meta[key]:
                raise ValueError(f"--resume: the search in this directory used {key}="
                                 f"{stored.get(key)!r}, not {meta[key]!r}")
    return bool(exists and overwrite and not resume)


def search(preset: str, tuner: str = "random", max_trials: int = 10, out: str | None = None,
           *, resume: bool = False, overwrite: bool = False, epochs: int | None = None,
           overrides=None, objective: str | None = None, tune=None, seed: int | None = 0,
           distributed: str | None = None, oracle_address: str | None = None,
           tuner_id: str | None = None, hyperparameters=None, tune_new_entries: bool = True,
           max_consecutive_failed_trials: int = 3, num_samples: int | None = None,
           verbose: int = 0, fit_verbose: int = 0, **tuner_kwargs) -> dict:
    """Run (or resume, or join) a search; what ``tfgan-app tune`` does.

    Writes into ``out`` (default ``tuning/<preset>``): keras-tuner's ``oracle.json`` and
    ``trial_<id>/trial.json`` (+ checkpoints), ``trial_runs.jsonl`` (who ran what),
    ``search.json`` (the search's arguments), and -- except on workers -- ``trials.json``
    (the table) and ``best.json`` (see :func:`tfgan_app.tuning.results.write_best`).

    Args:
      resume: continue the search in ``out`` (keras-tuner ``overwrite=False``); the preset,
        objective, tuner and overrides must match the stored ``search.json``.
      overwrite: replace an existing search in ``out``. Without ``resume`` or ``overwrite``
        an existing search is an error, and a non-empty ``out`` that holds no search is
        never deleted.
      epochs: shorthand for ``overrides["epochs"]`` (and Hyperband's ``max_epochs``).
      distributed: ``None``, ``"chief"`` or ``"worker"`` (with ``oracle_address`` and, for
        workers, ``tuner_id``); see :mod:`tfgan_app.tuning`.
      Others: see :class:`GANHyperModel` and :func:`make_tuner`.

    Returns:
      ``{"out_dir", "role", "tuner", "hypermodel", "trials": [row, ...], "best": dict or None}``
      where rows are :func:`tfgan_app.tuning.results.load_trials` rows (workers: the trials
      they ran).

    Raises:
      ValueError: see ``resume``/``overwrite``, and bad presets, settings or objectives.
    """
    from tfgan_app.utils import write_json

    out = os.path.abspath(out or os.path.join("tuning", preset))
    overrides = space.settings_diff(space.resolve(preset, overrides), space.resolve(preset))
    if epochs is not None:
        overrides["epochs"] = int(epochs)
    hm = GANHyperModel(preset, overrides=overrides, objective=objective, tune=tune,
                       num_samples=num_samples, fit_verbose=fit_verbose)
    role = distributed or "local"
    env = distributed_env(distributed, oracle_address, tuner_id) if distributed else {}
    meta = {"preset": preset, "objective": hm.objective_key, "tuner": tuner,
            "overrides": overrides,
            "tune": None if tune is None else list(tune if not isinstance(tune, str)
                                                   else tune.split(",")),
            "max_trials": max_trials, "seed": seed}
    overwrite_dir = role != "worker" and _prepare_out(out, meta, resume, overwrite)
    with _environ(env):
        t = make_tuner(hm, tuner, max_trials, directory=os.path.dirname(out),
                       project_name=os.path.basename(out), overwrite=overwrite_dir, seed=seed,
                       hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                       max_consecutive_failed_trials=max_consecutive_failed_trials,
                       **tuner_kwargs)
        if role != "worker":
            write_json(os.path.join(out, SEARCH_FILE), meta)
        t.search(verbose=verbose)
    rows = results.load_trials(out)
    result = {"out_dir": out, "role": role, "tuner": t, "hypermodel": hm, "best": None}
    if role == "worker":
        mine = env["KERASTUNER_TUNER_ID"]
        ran = {r["trial_id"] for r in results.read_runs(out) if r.get("tuner_id") == mine}
        result["trials"] = [r for r in rows if r["trial_id"] in ran]
        return result
    result["trials"] = rows
    write_json(os.path.join(out, "trials.json"), rows)
    best = results.best_trial(rows, hm.objective.direction)
    if best is not None:
        result["best"] = results.write_best(out, hm, best)
    return result
