"""The doctor's diagnoses: thresholds over a run's per-epoch signals, and the messages.

Everything here is a pure function of a history dict (``{"epoch": [...], key: [...]}``, as
``history.json`` holds it) and a small context (the loss pair, the learning rates, the run's
length), so the training callback (:class:`tfgan_app.doctor.Doctor`) and ``tfgan-app doctor
RUN`` reach the same verdict from the same numbers.

Signals (keys of the history; the model logs the first five, the doctor adds the rest):

* ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (D's mean output: a probability for the
  sigmoid losses), ``g_grad_norm`` (``|grad G|``, :class:`tfgan_app.GANModel`);
* ``doctor_grad_ratio``: ``g_grad_norm`` over its running peak;
* ``doctor_d_accuracy``: D's accuracy on a fixed real and a fixed generated batch;
* ``doctor_modes`` (toy mixtures): the fraction of modes whose region (the points nearer to
  it than to any other mode) holds at least ``MODE_SHARE`` of a uniform share of the
  generated batch -- where the samples go, whatever their quality, so a young generator whose
  samples are spread but not yet sharp is not judged collapsed;
* ``doctor_quality``: the generated batch's quality -- toy mixtures: the fraction of generated
  samples of high quality (within 3 std of a mode, the VEEGAN protocol); images with a
  classifier: the fraction it classifies confidently (largest softmax probability at least
  :data:`tfgan_app.evaluation.coverage.CONFIDENT`, 0.9) over the real batch's fraction (1: as
  recognisable as real data);
* ``doctor_modes_hq`` (toy mixtures): as ``doctor_modes`` over the high-quality samples only
  (modes dropped by a generator whose samples are sharp); judged only from
  ``collapse_quality`` high-quality samples on (a few samples near modes by chance say
  nothing);
* ``doctor_classes`` (images with a classifier): the fraction of classes holding at least
  ``MODE_SHARE`` of the uniform share of the generated batch's predicted labels;
* ``doctor_diversity`` (images): mean pairwise distance of the generated batch over the real
  batch's, in the offline classifier's features (pixels when there is no classifier);
* ``doctor_overfit``: ``(D(train) - D(held-out)) / (D(train) - D(generated))``, D's mean
  logits on a fixed training batch, a held-out real batch and the generated batch: 0 when D
  judges unseen real data like its training data, 1 when it judges it like generated data
  (the ADA paper's overfitting picture, Karras et al. 2020, fig. 1);
* ``doctor_copying`` (images with a classifier and held-out data): the probability that a
  generated example lies nearer (in the classifier's features) to its nearest training example
  than a held-out real example does -- Meehan et al.'s data-copying statistic (2020): 0.5 when
  G's samples are as near the training set as unseen real data, below when they are farther
  (worse than real), above when G reproduces its training examples; the independent judge
  that tells D's overfitting from a generator as good as the data;
* ``doctor_oscillation``: the mean epoch-to-epoch change of ``d_loss`` over the last
  ``window`` epochs, relative to its mean magnitude;
* ``doctor_swing`` (sigmoid losses): the mean epoch-to-epoch change of D's verdict on generated
  data, ``logit(d_fake)``, over the last ``window`` epochs (0 without a reversal): a
  discriminator whose verdict jumps by a factor of e and back from epoch to epoch;
* ``doctor_probe``: 1 on the epochs the probes ran (the others carry the last values).

Each threshold is in :data:`THRESHOLDS` (README, "Training doctor", has the table and the
benchmark that checks them); ``tests/test_doctor.py`` checks each rule fires past its threshold
and not before.
"""

from __future__ import annotations

import math

#: The diagnoses, in the order they are checked.
DIAGNOSES = ("divergence", "vanishing_gradients", "mode_collapse", "oscillation",
             "discriminator_overfitting")

THRESHOLDS = {
    # vanishing_gradients: |grad G| below this fraction of its running peak ...
    "vanish_ratio": 0.05,
    # ... while D rejects generated data: D(G(z)) below this (sigmoid losses only); not
    # judged with a gradient penalty (see diagnose)
    "vanish_d_fake": 0.05,
    # mode_collapse: the best fraction of the mixture's modes captured over the last `window`
    # epochs below this ...
    "collapse_modes": 0.6,
    # ... or of the classes covered (images with a classifier) below this ...
    "collapse_classes": 0.5,
    # ... or generated/real mean pairwise feature distance below this (each: its best over the
    # window); in each case not improving: that best at most (1 + collapse_gain) x its best
    # over the `window` epochs before (early in training every run is low but rising). Not
    # diagnosed while D(G(z)) < vanish_d_fake: a generator without gradient is stuck.
    "collapse_diversity": 0.35,
    # doctor_modes_hq is judged only on probes with at least this fraction of high-quality
    # samples (doctor_quality)
    "collapse_quality": 0.25,
    "collapse_gain": 0.1,
    # oscillation: mean |d_loss(t) - d_loss(t-1)| / max(mean |d_loss|, LOSS_FLOOR) over the
    # window above this, the changes reversing direction at least once (not a trend)
    "oscillation": 0.5,
    # ... or D's verdict on generated data swinging by more than this in log-odds per epoch
    # (doctor_swing; sigmoid losses)
    "oscillation_swing": 1.0,
    # discriminator_overfitting: held-out real data judged this far from training data towards
    # generated data (0: no gap, 1: like generated data). Named past 1: D rejects real data it
    # has not seen at least as firmly as generated data, its "real" is its training set. (A
    # milder gap is common and harmless: the digits-dcgan preset's rises from 0.3 at epoch 100
    # to 0.7 at epoch 800 while its samples keep improving, 0.74 -> 0.89 of the real digits'
    # confident rate; the 64-digit case of benchmarks/doctor.py passes 1 by epoch ~770 and
    # reaches 1.7. benchmarks/results/doctor.md)
    "overfit": 1.0,
    # ... and, where doctor_copying is measured, G's samples told apart from unseen real data
    # by that independent judge: doctor_copying below 0.5 - this (D ranks samples above real
    # data that lie nearer the data than they do) or above 0.5 + this (G copies the training
    # set D memorised). Within the band G's samples are as near the training data as unseen
    # real data, and D's gap is what a generator as good as the data produces: with a perfect
    # G, D can tell its samples from training data only by memorising the training data, and
    # the ratio is 1 whatever D learns. 0.1 is 5 standard deviations of the statistic between
    # two real samples (0.50 +- 0.02 over 30 random splits of the digits, 200 against 200).
    # (The 64-digit case: 0.24-0.27 when r_v passes 1; the digits-dcgan preset, r_v 0.86-0.99
    # at epoch 600: 0.50-0.54. benchmarks/results/doctor.md)
    "overfit_copying": 0.1,
    # divergence (finite; training stops unless the doctor is off): a loss magnitude above
    # this ...
    "divergence_loss": 1e3,
    # ... or |grad G| above this multiple of its first epoch's value
    "divergence_grad": 1e4,
    # every rule but divergence needs this many consecutive probed epochs past its threshold
    "patience": 3,
    # and is silent during the first fraction of the run (at least MIN_WARMUP epochs)
    "warmup": 0.05,
}
MIN_WARMUP = 3
#: A mode or class "holds" samples when it has this fraction of a uniform share.
MODE_SHARE = 0.1
#: Epochs of the oscillation window: run length / 10, clipped to [5, 20].
WINDOW = (5, 20)

SIGMOID_LOSSES = ("minimax", "modified", "relativistic", "acgan")


#: Probes per run at most: the probe period is ``epochs // PROBES`` (at least 1). The loss
#: rules count their patience on the same period (a failure must last ``patience`` periods:
#: a spike of a long run's losses is not an oscillation).
PROBES = 50


def probe_every(epochs: int | None) -> int:
    """The probe period of a run of ``epochs`` epochs."""
    return max(1, int(epochs or 0) // PROBES)


def window(epochs: int | None) -> int:
    """The oscillation window for a run of ``epochs`` epochs."""
    lo, hi = WINDOW
    return int(min(hi, max(lo, (epochs or 0) // 10)))


def warmup(epochs: int | None, thresholds: dict = THRESHOLDS) -> int:
    """Epochs during which only ``divergence`` can fire."""
    return max(MIN_WARMUP, int(math.ceil(thresholds["warmup"] * (epochs or 0))))


#: Below this mean magnitude a loss's changes are measured against this floor.
LOSS_FLOOR = 0.5


def oscillation(d_loss, n: int) -> float:
    """Mean epoch-to-epoch change of the last ``n`` values over their mean magnitude (at
    least :data:`LOSS_FLOOR`); 0 when the changes keep one direction over the whole window (a
    trend, not an oscillation) or with fewer than ``n`` values."""
    x = [float(v) for v in d_loss][-n:]
    if len(x) < n:
        return 0.0
    deltas = [b - a for a, b in zip(x, x[1:])]
    reversals = sum(a * b < 0 for a, b in zip(deltas, deltas[1:]))
    if reversals == 0:
        return 0.0
    step = sum(abs(d) for d in deltas) / len(deltas)
    return step / max(sum(abs(v) for v in x) / len(x), LOSS_FLOOR)


def swing(d_fake, n: int) -> float:
    """Mean epoch-to-epoch change of ``logit(d_fake)`` over the last ``n`` values (``d_fake``
    a probability, clipped to [1e-6, 1 - 1e-6]); 0 without a reversal or with fewer values."""
    def logit(p):
        p = min(max(float(p), 1e-6), 1 - 1e-6)
        return math.log(p / (1 - p))
    x = [logit(v) for v in d_fake][-n:]
    if len(x) < n:
        return 0.0
    deltas = [b - a for a, b in zip(x, x[1:])]
    if not any(a * b < 0 for a, b in zip(deltas, deltas[1:])):
        return 0.0
    return sum(abs(d) for d in deltas) / len(deltas)


def derived(history: dict, epochs: int | None = None, sigmoid: bool = False) -> dict:
    """``doctor_grad_ratio`` and ``doctor_oscillation`` per epoch, from the logged losses
    (only those the history does not hold for every epoch already)."""
    out = {}
    n = len(history.get("d_loss") or [])
    g = history.get("g_grad_norm")
    if g and len(history.get("doctor_grad_ratio") or []) != len(g):
        peak, ratios = 0.0, []
        for v in g:
            peak = max(peak, float(v))
            ratios.append(float(v) / peak if peak > 0 else 1.0)
        out["doctor_grad_ratio"] = ratios
    d = history.get("d_loss")
    if d and len(history.get("doctor_oscillation") or []) != n:
        w = window(epochs)
        out["doctor_oscillation"] = [oscillation(d[max(0, i + 1 - w):i + 1], w)
                                     for i in range(n)]
    f = history.get("d_fake")
    if sigmoid and f and len(history.get("doctor_swing") or []) != len(f):
        w = window(epochs)
        out["doctor_swing"] = [swing(f[max(0, i + 1 - w):i + 1], w) for i in range(len(f))]
    return out


def _fmt(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 0.01 or abs(x) >= 1000 else f"{x:.3f}".rstrip("0").rstrip(".")


def remedy(name: str, context: dict) -> dict:
    """The settings that remedy diagnosis ``name`` in a run with ``context``: ``{setting:
    value}`` (a dotted key reaches into a nested setting, as ``--set`` does)."""
    loss = context.get("loss", "modified")
    # (a rate read from a float32 optimizer variable: 3 significant digits)
    d_lr, g_lr = (float(f"{float(context.get(k) or 2e-4):.3g}") for k in ("d_lr", "g_lr"))
    if name == "vanishing_gradients":
        if loss == "minimax":
            return {"loss": "modified"}
        return {"instance_noise": 0.1}
    if name == "mode_collapse":
        # the ring/grid presets' recipe (tfgan_app/presets.py): PacGAN packing (doubled if
        # already packed); a generator no faster than D (one faster hops from mode to mode);
        # learning rates decayed over the run (each mode sharpens); one-sided label smoothing
        # for a sigmoid loss without it. (Not packing with InfoGAN's categorical code: its
        # code head reads one sample, a packed D sees m; tfgan_app.builders.build refuses it.)
        fix = ({} if context.get("categorical_code")
               else {"discriminator.pack": 2 * int(context.get("pack") or 1)})
        if g_lr > d_lr:
            fix["g_lr"] = d_lr
        if context.get("lr_decay", "none") in (None, "none"):
            fix["lr_decay"] = "linear"
        if loss in SIGMOID_LOSSES and context.get("smoothing") == 0:
            fix["loss_options.label_smoothing"] = 0.25
        return fix
    if name == "oscillation":
        return {"d_lr": float(f"{min(d_lr / 10, g_lr):.3g}")}
    if name == "discriminator_overfitting":
        return {"augment": "ada", "ada_target": 0.6}
    if name == "divergence":
        return {"d_lr": float(f"{d_lr / 10:.3g}"), "g_lr": float(f"{g_lr / 10:.3g}")}
    raise ValueError(f"unknown diagnosis {name!r}; expected one of {DIAGNOSES}")


def remedy_text(fix: dict) -> str:
    """``--set a=1 --set b=x`` for a remedy."""
    return " ".join(f"--set {k}={v}" for k, v in fix.items())


def _streak(history: dict, condition, start: int, patience: int, period: int | None = None):
    """The first epoch index from which ``condition(i)`` held on ``patience`` consecutive
    probed epochs (with ``period``: on the epochs of that period, the losses' rules -- the
    losses are logged every epoch, the probes' schedule depends on time) at or after
    ``start``, or ``None``."""
    n = len(history.get("epoch", history.get("d_loss", [])))
    probed = ([float(i == 0 or (i + 1) % period == 0) for i in range(n)] if period
              else history.get("doctor_probe") or [1.0] * n)
    run, first = 0, None
    for i in range(start, len(probed)):
        if not probed[i]:
            continue
        if condition(i):
            first = i if run == 0 else first
            run += 1
            if run >= patience:
                return first
        else:
            run = 0
    return None


def _get(history, key, i):
    values = history.get(key)
    return float(values[i]) if values and i < len(values) else None


def divergence_evidence(history: dict, i: int, thresholds: dict | None = None) -> str | None:
    """The evidence that epoch index ``i`` of ``history`` diverged with finite values (a loss
    beyond ``divergence_loss``, or ``|grad G|`` beyond ``divergence_grad`` x its first
    epoch's), or ``None``. Cheap: the callback checks every epoch with it, whatever its time
    budget, so a diverging epoch stops training before it is backed up."""
    t = {**THRESHOLDS, **(thresholds or {})}
    losses = {k: _get(history, k, i) for k in ("d_loss", "g_loss")}
    big = {k: v for k, v in losses.items() if v is not None and abs(v) > t["divergence_loss"]}
    if big:
        return (", ".join(f"|{k}| = {_fmt(v)}" for k, v in big.items())
                + f" > {_fmt(t['divergence_loss'])}")
    g0, g = _get(history, "g_grad_norm", 0), _get(history, "g_grad_norm", i)
    if g0 and g is not None and g > t["divergence_grad"] * g0:
        return (f"|grad G| = {_fmt(g)}, {_fmt(g / g0)} x its first epoch's "
                f"(> {_fmt(t['divergence_grad'])} x)")
    return None


def diagnose(history: dict, context: dict | None = None, thresholds: dict | None = None,
             ) -> list[dict]:
    """Every diagnosis the history supports, each once, in order of first epoch.

    Args:
      history: per-epoch signals (``history.json``).
      context: ``loss`` (the loss pair's name), ``d_lr``, ``g_lr``, ``epochs`` (the run's
        planned length; warm-up and window), ``stopped`` (why the callback stopped training: a
        non-finite or a diverging epoch), ``since`` (epochs done when the closed loop
        resumed the run with a remedy: the epochs before it are not judged again, and the
        warm-up and windows start over from it).
      thresholds: overrides of :data:`THRESHOLDS`.

    Returns:
      ``[{"name", "epoch" (1-based, first), "evidence", "remedy" ({setting: value}),
      "message"}]``.
    """
    context = dict(context or {})
    t = {**THRESHOLDS, **(thresholds or {})}
    epochs = context.get("epochs") or len(history.get("epoch", []))
    sigmoid = context.get("loss", "modified") in SIGMOID_LOSSES
    h = {**history, **derived(history, epochs, sigmoid)}
    n = len(h.get("epoch", h.get("d_loss", [])))
    since = int(context.get("since") or 0)
    start, patience = since + warmup(epochs, t), int(t["patience"])
    found = []

    def add(name, i, evidence):
        fix = remedy(name, context)
        epoch = int(h["epoch"][i]) + 1 if h.get("epoch") else i + 1
        found.append({"name": name, "epoch": epoch, "evidence": evidence, "remedy": fix,
                      "message": f"{name.replace('_', ' ')} since epoch {epoch}: {evidence}; "
                                 f"remedy: {remedy_text(fix)}"})

    # divergence: a stop on non-finite values, or a finite blow-up
    if context.get("stopped"):
        add("divergence", max(0, n - 1) if n else 0, context["stopped"])
        if found and context.get("stopped_epoch"):
            found[-1]["epoch"] = int(context["stopped_epoch"])
    else:
        for i in range(since, n):
            evidence = divergence_evidence(h, i, t)
            if evidence:
                add("divergence", i, evidence)
                break

    # Not with a gradient penalty: the penalty holds D's gradient at the data near norm 1 (the
    # remedy WGAN-GP is for vanishing gradients), so G's gradient cannot fade through D; its
    # norm falls from a first-epoch peak taken before the penalty holds (mnist-wgan-gp: to
    # 0.06-0.08 of it in 20 healthy epochs), which is no failure.
    if "doctor_grad_ratio" in h and not context.get("gradient_penalty"):
        def vanishing(i):
            ok = h["doctor_grad_ratio"][i] < t["vanish_ratio"]
            d_fake = _get(h, "d_fake", i)
            return ok and (not sigmoid or (d_fake is not None and d_fake < t["vanish_d_fake"]))
        i = _streak(h, vanishing, start, patience, probe_every(epochs))
        if i is not None:
            d_fake = _get(h, "d_fake", i)
            add("vanishing_gradients", i,
                f"|grad G| is {_fmt(h['doctor_grad_ratio'][i])} of its peak"
                + (f" and D(G(z)) = {_fmt(d_fake)}" if sigmoid and d_fake is not None else "")
                + f" with the {context.get('loss', '?')} loss")

    checks = [("doctor_modes", "collapse_modes", "of the modes holding generated samples"),
              ("doctor_modes_hq", "collapse_modes", "of the modes holding high-quality samples"),
              ("doctor_classes", "collapse_classes", "of the classes covered"),
              ("doctor_diversity", "collapse_diversity",
               "generated/real mean pairwise distance")]
    def d_wins(j):  # G gets no gradient: its samples are stuck, not collapsed
        d_fake = _get(h, "d_fake", j)
        return sigmoid and d_fake is not None and d_fake < t["vanish_d_fake"]

    w = window(epochs)

    def low(key, tkey, j):  # below the threshold and not improving
        x = h[key]
        recent, before = max(x[max(0, j - w + 1):j + 1]), max(x[max(0, j - 2 * w + 1):
                                                                   max(0, j - w + 1)] or [0.0])
        if key == "doctor_modes_hq" and not (_get(h, "doctor_quality", j) or 0.0) >= t[
                "collapse_quality"]:
            return False
        return (recent < t[tkey] and recent <= (1 + t["collapse_gain"]) * before
                and not d_wins(j))

    for key, tkey, what in checks:
        if key in h:
            i = _streak(h, lambda j, key=key, tkey=tkey: low(key, tkey, j), start, patience)
            if i is not None:
                best = max(h[key][max(0, i - w + 1):i + 1])
                add("mode_collapse", i, f"at most {_fmt(best)} {what} over {w} epochs "
                                        f"(< {_fmt(t[tkey])}), not improving")
                break

    def oscillating(j):
        return (h["doctor_oscillation"][j] > t["oscillation"] if "doctor_oscillation" in h
                else False) or (sigmoid and _get(h, "doctor_swing", j) is not None
                                and h["doctor_swing"][j] > t["oscillation_swing"])

    if "doctor_oscillation" in h or (sigmoid and "doctor_swing" in h):
        i = _streak(h, oscillating, max(start, since + w - 1), patience, probe_every(epochs))
        if i is not None:
            loss_osc, d_swing = _get(h, "doctor_oscillation", i), _get(h, "doctor_swing", i)
            add("oscillation", i, f"d_loss moves by {_fmt(loss_osc or 0.0)} of its size "
                                  f"(> {_fmt(t['oscillation'])} names it) and D's verdict "
                                  f"on generated data by {_fmt(d_swing or 0.0)} in log-odds "
                                  f"(> {_fmt(t['oscillation_swing'])} names it) from epoch to "
                                  f"epoch over {w} epochs")

    def overfitting(j):
        copying = _get(h, "doctor_copying", j)
        return h["doctor_overfit"][j] > t["overfit"] and (
            copying is None or abs(copying - 0.5) > t["overfit_copying"])

    if "doctor_overfit" in h:
        i = _streak(h, overfitting, start, patience)
        if i is not None:
            copying = _get(h, "doctor_copying", i)
            judge = "" if copying is None else (
                f", while G's samples lie {'nearer to' if copying > 0.5 else 'farther from'} "
                f"the training images than unseen real images do (copying rate "
                f"{_fmt(copying)}, outside 0.5 +- {_fmt(t['overfit_copying'])}"
                + ("; G reproduces the training set D memorised)" if copying > 0.5 else ")"))
            add("discriminator_overfitting", i,
                f"D judges held-out real data {_fmt(h['doctor_overfit'][i])} of the way from "
                f"its training data to generated data (> {_fmt(t['overfit'])}){judge}")
    diverged = [d["epoch"] for d in found if d["name"] == "divergence"]
    if diverged:  # after a divergence the other signals mean nothing
        found = [d for d in found if d["name"] == "divergence" or d["epoch"] < diverged[0]]
    found.sort(key=lambda d: (d["epoch"], DIAGNOSES.index(d["name"])))
    return found


def context_from_settings(settings: dict) -> dict:
    """The diagnosis context of a run's settings (``config.json``)."""
    loss = settings.get("loss")
    if isinstance(loss, dict):  # a loss config
        loss = loss.get("name") or loss.get("config", {}).get("name")
    fixes = settings.get("doctor_fixes") or []
    return {"loss": loss or "modified", "d_lr": settings.get("d_lr"),
            "g_lr": settings.get("g_lr"), "epochs": settings.get("epochs"),
            "pack": (settings.get("discriminator") or {}).get("pack") or 1,
            "categorical_code": settings.get("categorical_code") or 0,
            "smoothing": (settings.get("loss_options") or {}).get("label_smoothing"),
            "lr_decay": settings.get("lr_decay"),
            "gradient_penalty": float(settings.get("gradient_penalty") or 0.0),
            "since": (fixes[-1].get("resumed_from") or 0) if fixes else 0}
