"""A search directory's results: the per-run log, the trials table and ``best.json``."""

from __future__ import annotations

import json
import math
import numbers
import os

__all__ = ["RUNS_FILE", "append_run", "read_runs", "load_trials", "best_trial", "write_best",
           "format_trials"]

#: One JSON line per trial run (trial, tuner id, pid, host, status, objective, seconds).
RUNS_FILE = "trial_runs.jsonl"


def is_finite(v) -> bool:
    """Whether ``v`` is a real number (not a bool), neither NaN nor infinite."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def append_run(project_dir: str, record: dict) -> None:
    """Append ``record`` as one JSON line to ``PROJECT_DIR/trial_runs.jsonl`` (numpy values as
    Python ones, anything else unserialisable as its ``str``)."""
    line = json.dumps(record, default=lambda o: getattr(o, "tolist", lambda: str(o))())
    fd = os.open(os.path.join(project_dir, RUNS_FILE),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))  # one write on O_APPEND: workers' lines
    finally:                                         # do not mix
        os.close(fd)


def read_runs(out_dir: str) -> list[dict]:
    """The records of ``OUT_DIR/trial_runs.jsonl`` in order (``[]`` when there is none)."""
    path = os.path.join(out_dir, RUNS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _last_observations(state: dict) -> dict:
    metrics = {}
    for name, m in (state.get("metrics") or {}).get("metrics", {}).items():
        obs = m.get("observations") or []
        if obs:
            v = obs[-1]["value"]
            metrics[name] = v[0] if isinstance(v, list) and len(v) == 1 else v
    return metrics


def load_trials(out_dir: str) -> list[dict]:
    """The trials of a search directory, from keras-tuner's ``trial_<id>/trial.json`` files
    (written by the oracle: on the chief in a distributed search) and ``trial_runs.jsonl``.

    Returns:
      rows sorted by trial id: ``{"trial_id", "status"`` (``COMPLETED``, ``FAILED``,
      ``INVALID``, ``RUNNING``), ``"score"`` (the objective or ``None``), ``"metrics"``
      (``{name: value}``), ``"hyperparameters"`` (``{name: value}``), ``"message"`` (the
      failure's last line, or ``None``), ``"tuner_id"``, ``"seconds"``, ``"settings"``,
      ``"runs"`` (how many times it was run)``}``.
    """
    runs = {}
    for r in read_runs(out_dir):
        runs.setdefault(r.get("trial_id"), []).append(r)
    rows = []
    if not os.path.isdir(out_dir):
        return rows
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name, "trial.json")
        if not (name.startswith("trial_") and os.path.exists(path)):
            continue
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        message = state.get("message")
        if message:
            lines = [ln for ln in message.strip().splitlines() if ln.strip()]
            message = lines[-1] if lines else message
        tid = state["trial_id"]
        last = (runs.get(tid) or [{}])[-1]
        rows.append({
            "trial_id": tid, "status": state.get("status"), "score": state.get("score"),
            "metrics": _last_observations(state),
            "hyperparameters": (state.get("hyperparameters") or {}).get("values", {}),
            "message": message, "tuner_id": last.get("tuner_id"),
            "seconds": last.get("seconds"), "settings": last.get("settings"),
            "runs": len(runs.get(tid, [])),
        })
    return rows


def best_trial(rows: list[dict], direction: str) -> dict | None:
    """The best ``COMPLETED`` row with a finite score (``direction`` ``"min"`` or ``"max"``),
    ``None`` if there is none."""
    done = [r for r in rows if r["status"] == "COMPLETED" and is_finite(r["score"])]
    if not done:
        return None
    return (min if direction == "min" else max)(done, key=lambda r: r["score"])


def write_best(out_dir: str, hypermodel, row: dict) -> dict:
    """Write ``OUT_DIR/best.json`` for trial ``row`` of ``hypermodel``'s search and return it::

        {"preset", "objective": {"name", "direction"}, "value", "trial_id",
         "hyperparameters": {...}, "settings": {...overrides...}, "command"}

    ``tfgan-app train --preset PRESET --config best.json`` reads ``settings``.
    """
    from tfgan_app.utils import write_json

    path = os.path.join(out_dir, "best.json")
    best = {
        "preset": hypermodel.preset,
        "objective": {"name": hypermodel.objective.name,
                      "direction": hypermodel.objective.direction},
        "value": row["score"],
        "trial_id": row["trial_id"],
        "hyperparameters": row["hyperparameters"],
        "settings": hypermodel.overrides_for(row["hyperparameters"]),
        "command": f"tfgan-app train --preset {hypermodel.preset} --config {path}",
    }
    write_json(path, best)
    return best


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return f"{v:.4g}"
    return str(v)


def format_trials(rows: list[dict], objective_name: str | None = None,
                  best_id: str | None = None, max_message: int = 60) -> str:
    """A plain-text table of :func:`load_trials` rows: trial, status, objective, tuner,
    seconds, one column per hyperparameter (Hyperband's ``tuner/epochs`` as ``epochs``), then
    failure messages (cut to ``max_message`` characters); ``*`` marks trial ``best_id``."""
    hp_names = []
    for r in rows:
        for k in r["hyperparameters"]:
            if (not k.startswith("tuner/") or k == "tuner/epochs") and k not in hp_names:
                hp_names.append(k)
    head = ["trial", "status", objective_name or "objective", "tuner", "s"] + [
        "epochs" if k == "tuner/epochs" else k for k in hp_names]
    table = [head]
    notes = []
    for r in rows:
        mark = "*" if r["trial_id"] == best_id else " "
        table.append([mark + r["trial_id"], r["status"] or "-", _fmt(r["score"]),
                      r["tuner_id"] or "-", _fmt(r["seconds"])]
                     + [_fmt(r["hyperparameters"].get(k)) for k in hp_names])
        if r.get("message") and r["status"] != "COMPLETED":
            notes.append(f"  trial {r['trial_id']}: {r['message'][:max_message]}")
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + notes)
