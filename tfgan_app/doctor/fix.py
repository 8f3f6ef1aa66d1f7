"""The closed loop (``tfgan-app train --doctor fix``): on a diagnosis, train again with its remedy.

When the doctor names a failure it stops training (:class:`tfgan_app.doctor.Doctor` with
``fix``); :func:`train` then applies the remedy's settings and trains the run again, at most
``max_restarts`` times. A remedy that changes the networks (``discriminator.pack``) or the loss
cannot reuse the failed run's weights and optimizer state, so every restart starts from
scratch (the failed attempt's backup is not resumed). The remedies tried are recorded in the
run's ``config.json`` (setting-like key ``doctor_fixes``) and ``report.json``
(``doctor_fixes``, ``doctor_fixed``); a run that could not be fixed says what was tried.

A job (it calls :func:`tfgan_app.train.train`), in the "jobs" layer of
``docs/architecture.md``.
"""

from __future__ import annotations

import sys

from tfgan_app.doctor.rules import remedy_text
from tfgan_app.utils import NonFiniteError

#: Restarts at most (a run is trained at most MAX_RESTARTS + 1 times).
MAX_RESTARTS = 2


def train(settings: dict, out_dir: str, *, max_restarts: int = MAX_RESTARTS, file=None,
          **kwargs) -> dict:
    """:func:`tfgan_app.train.train` with the doctor in ``fix`` mode and restarts.

    Args:
      settings: resolved settings (``doctor`` is set to ``"fix"``).
      out_dir: the run directory.
      max_restarts: restarts at most.
      file: where the restarts are announced (default: ``sys.stderr``).
      **kwargs: passed to :func:`tfgan_app.train.train` (``verbose``, ``resume``, ...).

    Returns:
      :func:`tfgan_app.train.train`'s result, plus ``"doctor_fixes"`` (``[{"diagnosis",
      "epoch", "remedy"}]``, one per restart) and ``"doctor_fixed"`` (whether the last
      attempt finished without a diagnosis).

    Raises:
      NonFiniteError: the last attempt still stopped on non-finite values.
    """
    from tfgan_app import presets
    from tfgan_app import train as train_lib
    from tfgan_app.rundir import RunDir

    file = file or sys.stderr
    settings = {**settings, "doctor": "fix"}
    fixes: list[dict] = []
    run = RunDir(out_dir)
    for attempt in range(int(max_restarts) + 1):
        if fixes:
            settings["doctor_fixes"] = list(fixes)
            kwargs = {**kwargs, "overwrite": True, "resume_more": False}
        error = None
        try:
            result = train_lib.train(settings, out_dir, **kwargs)
        except NonFiniteError as e:
            error, result = e, None
        request = _read_request(run)
        if request is None:
            break
        if attempt == int(max_restarts) or _tried(fixes, request["remedy"]):
            print(f"doctor: could not fix the run: {request['message']}; tried "
                  + ("; ".join(f"{remedy_text(f['remedy'])} (after {f['diagnosis']} in epoch "
                               f"{f['epoch']})" for f in fixes) or "nothing")
                  + (" (the same remedy again)" if _tried(fixes, request["remedy"]) else ""),
                  file=file, flush=True)
            break
        fixes.append({"diagnosis": request["name"], "epoch": request["epoch"],
                      "remedy": request["remedy"]})
        print(f"doctor: {request['message']}. Restarting from scratch with "
              f"{remedy_text(request['remedy'])} (restart {len(fixes)} of at most "
              f"{max_restarts})", file=file, flush=True)
        settings = presets.apply_overrides(settings, request["remedy"])
    fixed = request is None
    if error is not None and not fixed:
        raise error
    report = {**result["report"], "doctor_fixes": fixes, "doctor_fixed": fixed}
    if result.get("is_chief", True):
        run.write_report(report)
    return {**result, "report": report, "doctor_fixes": fixes, "doctor_fixed": fixed}


def _read_request(run):
    import os

    from tfgan_app.utils import read_json

    path = run.path(run.DOCTOR)
    return read_json(path).get("fix_request") if os.path.isfile(path) else None


def _tried(fixes, remedy) -> bool:
    return any(f["remedy"] == remedy for f in fixes)
