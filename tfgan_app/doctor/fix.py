"""The closed loop (``tfgan-app train --doctor fix``): on a diagnosis, train again with its remedy.

When the doctor names a failure it stops training (:class:`tfgan_app.doctor.Doctor` with
``fix`` and ``interrupt``: :class:`~tfgan_app.doctor.DoctorStop`, so the run directory keeps its
backup as a killed run's would); :func:`train` then applies the remedy's settings and trains
again, at most ``max_restarts`` times:

* a remedy that keeps the networks and their optimizer state meaningful (a change of the loss,
  :data:`RESUMABLE_REMEDIES`) resumes from the run's last backup (a state with finite values:
  :func:`tfgan_app.checkpoint.write_backup` writes no other), whose settings become the
  remedied ones; the doctor judges the epochs from there on only;
* any other remedy (``discriminator.pack`` changes D's architecture; learning rates and
  augmentation are optimizer or model state a backup restores as they were) starts from
  scratch, as does a run without a backup yet.

The last attempt runs with the doctor ``on``, so it always finishes; a remedy already tried
is not tried again (the run is then finished as it is). The remedies tried are recorded in the
run's ``config.json`` (setting-like key ``doctor_fixes``: ``diagnosis``, ``epoch``, ``remedy``,
``resumed_from``) and ``report.json`` (``doctor_fixes``, ``doctor_fixed``); a run that could
not be fixed says what was tried.

A job (it calls :func:`tfgan_app.train.train`), in the "jobs" layer of
``docs/architecture.md``.
"""

from __future__ import annotations

import os
import sys

from tfgan_app.doctor.callback import DoctorStop
from tfgan_app.doctor.rules import remedy_text
from tfgan_app.utils import NonFiniteError

#: Restarts at most (a run is trained at most MAX_RESTARTS + 1 times).
MAX_RESTARTS = 2
#: Settings a remedy may change while the run resumes from its backup (the networks, the
#: optimizers' state and learning rates stay meaningful); any other change starts afresh.
RESUMABLE_REMEDIES = ("loss", "loss_options")


def resumable(remedy: dict) -> bool:
    """Whether a run may resume from its backup with ``remedy`` applied."""
    return all(k.split(".")[0] in RESUMABLE_REMEDIES for k in remedy)


def train(settings: dict, out_dir: str, *, max_restarts: int = MAX_RESTARTS, file=None,
          **kwargs) -> dict:
    """:func:`tfgan_app.train.train` with the doctor in ``fix`` mode and restarts.

    Args:
      settings: resolved settings (``doctor`` is set to ``"fix"``, ``"on"`` for the last
        attempt).
      out_dir: the run directory.
      max_restarts: restarts at most.
      file: where the restarts are announced (default: ``sys.stderr``).
      **kwargs: passed to :func:`tfgan_app.train.train` (``verbose``, ``resume``, ...).

    Returns:
      :func:`tfgan_app.train.train`'s result, plus ``"doctor_fixes"`` (``[{"diagnosis",
      "epoch", "remedy", "resumed_from"}]``, one per restart; ``resumed_from``: the backup's
      epochs done, 0 for a restart from scratch) and ``"doctor_fixed"`` (whether the last
      attempt finished without a diagnosis).

    Raises:
      NonFiniteError: the last attempt still stopped on non-finite values.
    """
    from tfgan_app import checkpoint, presets
    from tfgan_app import train as train_lib
    from tfgan_app.rundir import RunDir

    file = file or sys.stderr
    fixes: list[dict] = []
    run = RunDir(out_dir)
    settings = dict(settings)
    give_up = None
    for _ in range(int(max_restarts) + 2):
        last = give_up is not None or len(fixes) == int(max_restarts)
        settings["doctor"] = "on" if last else "fix"
        error = result = None
        try:
            result = train_lib.train(settings, out_dir, **kwargs)
        except NonFiniteError as e:
            error = e
        except DoctorStop:
            pass
        if last:
            break
        request = _read_request(run)
        if request is None:
            break
        if _tried(fixes, request["remedy"]):
            give_up = request  # finish the run as it is, with the doctor only watching
            run.remove(run.DOCTOR)
            kwargs = {**kwargs, "resume": True, "overwrite": False, "resume_more": False}
            continue
        new = presets.apply_overrides(settings, request["remedy"])
        backup = checkpoint.latest_backup(run.path(run.BACKUP))
        resume = resumable(request["remedy"]) and backup is not None and error is None
        fixes.append({"diagnosis": request["name"], "epoch": request["epoch"],
                      "remedy": request["remedy"],
                      "resumed_from": int(backup[1]["epoch"]) if resume else 0})
        new["doctor_fixes"] = list(fixes)
        print(f"doctor: {request['message']}. "
              + (f"Resuming from the backup of epoch {backup[1]['epoch']}" if resume
                 else "Restarting from scratch")
              + f" with {remedy_text(request['remedy'])} (restart {len(fixes)} of at most "
              f"{max_restarts})", file=file, flush=True)
        if resume:  # the backup continues under the remedied settings
            _rewrite_settings(backup[0], {**new, "doctor": "fix"})
            run.remove(run.DOCTOR)  # the request is answered; the next attempt writes its own
            kwargs = {**kwargs, "resume": True, "overwrite": False, "resume_more": False}
        else:
            kwargs = {**kwargs, "overwrite": True, "resume_more": False}
        settings = new
    report_path = run.path(run.REPORT)
    diagnoses = (result or {}).get("report", {}).get("diagnoses") or []
    fixed = give_up is None and not diagnoses and error is None
    if not fixed:
        what = give_up or (diagnoses[0] if diagnoses else None)
        print("doctor: could not fix the run"
              + (f": {what['message']}" if what else "") + "; tried "
              + ("; ".join(f"{remedy_text(f['remedy'])} (after {f['diagnosis']} in epoch "
                           f"{f['epoch']})" for f in fixes) or "nothing")
              + (" (the same remedy again)" if give_up else ""), file=file, flush=True)
    if error is not None and result is None:
        raise error
    report = {**result["report"], "doctor_fixes": fixes, "doctor_fixed": fixed}
    if result.get("is_chief", True) and os.path.isdir(os.path.dirname(report_path)):
        run.write_report(report)
    return {**result, "report": report, "doctor_fixes": fixes, "doctor_fixed": fixed}


def _rewrite_settings(backup_path: str, settings: dict) -> None:
    """Make a backup resumable under ``settings`` (its ``meta.json``, written atomically)."""
    from tfgan_app.checkpoint import _META
    from tfgan_app.utils import read_json, write_json

    meta = read_json(os.path.join(backup_path, _META))
    write_json(os.path.join(backup_path, _META), {**meta, "settings": settings})


def _read_request(run):
    from tfgan_app.utils import read_json

    path = run.path(run.DOCTOR)
    return read_json(path).get("fix_request") if os.path.isfile(path) else None


def _tried(fixes, remedy) -> bool:
    return any(f["remedy"] == remedy for f in fixes)
