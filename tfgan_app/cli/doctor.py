"""``tfgan-app doctor RUN``: diagnose a finished or running run from what it wrote."""

from __future__ import annotations

import json
import os


def add_doctor(sub):
    p = sub.add_parser("doctor", help="diagnose a run directory's training (finished or "
                                      "running) from its history.json")
    p.add_argument("run", help="run directory written by `tfgan-app train`")
    p.add_argument("--json", action="store_true", help="print the diagnoses as JSON")
    p.set_defaults(func=_cmd_doctor)


def diagnose_run(path: str) -> dict:
    """The diagnoses of run directory ``path``: ``{"run", "state", "epochs_done", "epochs",
    "diagnoses", "stopped"}``. Raises :class:`tfgan_app.rundir.RunDirError` when ``path``
    holds no run (no ``config.json`` or no ``history.json`` yet)."""
    from tfgan_app.doctor import context_from_settings, diagnose
    from tfgan_app.rundir import RunDir, RunDirError
    from tfgan_app.utils import read_json

    run = RunDir(path)
    config = run.config
    if not os.path.isfile(run.path(run.HISTORY)):
        raise RunDirError(f"{run.root!r} has no {run.HISTORY} yet (expected a run directory "
                          "written by `tfgan-app train` after its first epoch)")
    history = run.history()
    context = context_from_settings(config)
    doctor_file = run.path(run.DOCTOR)
    stopped = None
    if os.path.isfile(doctor_file):
        try:
            stopped = read_json(doctor_file).get("stopped")
        except ValueError:
            stopped = None
    if stopped:
        context["stopped"] = stopped
        context["stopped_epoch"] = len(history.get("epoch", [])) + 1
    owner = run.lock_owner_alive()
    state = ("finished" if run.finished() else "running" if owner else
             "stopped (divergence)" if stopped else "stopped or killed")
    return {"run": run.root, "state": state, "epochs_done": len(history.get("epoch", [])),
            "epochs": config.get("epochs"), "diagnoses": diagnose(history, context),
            "stopped": stopped}


def _cmd_doctor(args) -> int:
    result = diagnose_run(args.run)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['run']}: {result['state']}, {result['epochs_done']}/{result['epochs']} "
          "epochs")
    if not result["diagnoses"]:
        print("no diagnosis: no sign of vanishing gradients, mode collapse, oscillation, "
              "discriminator overfitting or divergence in its history")
    for d in result["diagnoses"]:
        print(f"- {d['message']}")
    return 0
