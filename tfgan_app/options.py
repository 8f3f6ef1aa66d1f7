"""The one definition of every training option and run setting.

Two tables, each a tuple of :class:`Option` records (name, default, validation, doc):

* :func:`training_options` -- what ``GANModel.compile`` takes besides the two optimizers:
  the loss pair, Algorithm 1's ``d_steps``, the discriminator penalties (contributed by
  :mod:`tfgan_app.penalties`, one small class each), the other remedies and the execution
  options. :class:`TrainingOptions` validates them; ``compile``, ``get_compile_config``, the
  presets' base settings, ``train.build_gan``, ``--set`` and the README's table are derived
  from this table (``tests/test_options.py`` fails when one of them misses an option).
* :data:`RUN_SETTINGS` -- the rest of a run's settings (data, networks, optimizers,
  bookkeeping), read by :mod:`tfgan_app.train`.

``python -m tfgan_app.options`` prints both tables as Markdown (the README's copy).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Option:
    """One option or setting.

    Attributes:
      name: the keyword of ``compile`` / the settings key.
      default: its default value.
      check: ``value -> value``: normalises a valid value, raises ``ValueError`` (with a
        message saying what was expected, without the option's name) otherwise.
      doc: one line for the README's table.
      group: ``"loss"``, ``"penalty"``, ``"remedy"``, ``"execution"`` (training options) or
        ``"data"``, ``"networks"``, ``"optimizers"``, ``"run"`` (run settings).
    """

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str
    group: str

    def validate(self, value):
        """``check(value)``, with the option's name in the error message."""
        try:
            return self.check(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{self.name}: {e}") from None


# --------------------------------------------------------------------------- checks

def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def number(minimum=None, maximum=None, *, open_min=False, open_max=False, optional=False):
    """A check for a float in ``[minimum, maximum]`` (open ends as asked); ``None`` allowed
    when ``optional``."""
    lo = "(" if open_min else "["
    hi = ")" if open_max else "]"
    rng = f"{lo}{'-inf' if minimum is None else minimum}, {'inf' if maximum is None else maximum}{hi}"

    def check(value):
        if value is None and optional:
            return None
        v = _number(value)
        if minimum is not None and (v < minimum or (open_min and v == minimum)):
            raise ValueError(f"expected a number in {rng}{' or None' if optional else ''}, "
                             f"got {value!r}")
        if maximum is not None and (v > maximum or (open_max and v == maximum)):
            raise ValueError(f"expected a number in {rng}{' or None' if optional else ''}, "
                             f"got {value!r}")
        return v
    return check


def integer(minimum=None, *, optional=False):
    """A check for an integer ``>= minimum``; ``None`` allowed when ``optional``."""
    def check(value):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) and not (
                isinstance(value, float) and value.is_integer()):
            raise ValueError(f"expected an integer, got {value!r}")
        if minimum is not None and int(value) < minimum:
            raise ValueError(f"expected an integer >= {minimum}"
                             f"{' or None' if optional else ''}, got {value!r}")
        return int(value)
    return check


def boolean(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def choice(*values, optional=False):
    """A check for one of ``values`` (``None`` allowed when ``optional``)."""
    def check(value):
        if value is None and optional:
            return None
        if value not in values:
            raise ValueError(f"expected one of {', '.join(map(repr, values))}, got {value!r}")
        return value
    return check


def mapping(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object (dict), got {value!r}")
    return dict(value)


def builder_spec(value) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("builder"), str):
        raise ValueError(f'expected {{"builder": NAME, ...}}, got {value!r}')
    return dict(value)


#: The CycleGAN keywords a run's ``cyclegan`` setting may hold (:class:`tfgan_app.cyclegan.
#: CycleGAN`; ``tests/test_cyclegan_cli.py`` checks they match its signature).
CYCLEGAN_KEYWORDS = {"cycle_weight": number(0), "identity_weight": number(0),
                     "pool_size": integer(0), "pool_probability": number(0, 1)}


def _cyclegan(value):
    if value is None:
        return None
    value = mapping(value)
    unknown = sorted(set(value) - set(CYCLEGAN_KEYWORDS))
    if unknown:
        raise ValueError(f"unknown CycleGAN keyword(s) {unknown}; valid: "
                         f"{', '.join(CYCLEGAN_KEYWORDS)}")
    out = {}
    for k, v in value.items():
        try:
            out[k] = CYCLEGAN_KEYWORDS[k](v)
        except ValueError as e:
            raise ValueError(f"{k}: {e}") from None
    return out


def anything(value):
    return value


def _loss(value):
    if not isinstance(value, (str, dict)) and not hasattr(value, "generator_loss"):
        raise ValueError(f"expected a loss name, a loss config dict or a GANLoss, got {value!r}")
    return value


def _augment(value):
    from tfgan_app.augment import check_policy  # lazily: it imports TensorFlow

    return check_policy(value)


def _jit(value):
    if value not in ("auto", True, False):
        raise ValueError(f"expected 'auto', true or false, got {value!r}")
    return value


# --------------------------------------------------------------------------- training options

_CORE = (
    Option("loss", "modified", _loss, "loss pair name (`tg.losses.names()`), a config dict or "
           "a `GANLoss`; discriminators output logits", "loss"),
    Option("loss_options", {}, mapping, "TF-GAN options of the loss pair (`minimax`/`modified` "
           "smooth D's real labels by **0.25** unless `label_smoothing=0`)", "loss"),
    Option("d_steps", 1, integer(1), "k: discriminator updates per generator update "
           "(Algorithm 1)", "loss"),
    Option("info_weight", None, number(0, optional=True), "InfoGAN's lambda: weight of the "
           "mutual-information term CE(c, Q(G(z))) in both losses, for a generator with a "
           "categorical code (setting `categorical_code`); None: 1 there (the paper's)",
           "loss"),
    Option("weight_clip", None, number(0, open_min=True, optional=True),
           "clip D's weights to [-c, c] after each update (WGAN); None: off", "remedy"),
    Option("ema_decay", None, number(0, 1, open_min=True, open_max=True, optional=True),
           "generator weight EMA used for sampling and export; None: off", "remedy"),
    Option("unrolled_steps", 0, integer(0), "unrolled GAN: G's loss looks through k "
           "differentiable D steps; 0: off", "remedy"),
    Option("unrolled_lr", None, number(0, open_min=True, optional=True),
           "step size of the unrolled D steps; None: D's learning rate", "remedy"),
    Option("instance_noise", 0.0, number(0), "initial std of Gaussian noise on every D "
           "input, annealed linearly to 0; 0: off", "remedy"),
    Option("instance_noise_steps", None, integer(1, optional=True), "D steps of the "
           "annealing; None: the whole `fit()` run (epochs x steps per epoch)", "remedy"),
    Option("augment", None, _augment, "differentiable augmentation of every D input, real and "
           "generated: 'diffaugment', 'ada' or comma-separated ops (`tfgan_app.augment`); "
           "None: off", "remedy"),
    Option("augment_p", None, number(0, 1, optional=True), "probability of each augmentation "
           "op; None: 1 with a fixed p, 0 to start an adaptive p", "remedy"),
    Option("ada_target", None, number(0, 1, open_min=True, optional=True), "ADA: move p so "
           "r_t = E[sign D(real)] tends to this (the paper: 0.6); None: p fixed", "remedy"),
    Option("ada_interval", 4, integer(1), "ADA: D steps between adjustments of p", "remedy"),
    Option("ada_kimg", 500.0, number(0, open_min=True), "ADA: thousands of real images over "
           "which p can move by 1", "remedy"),
    Option("jit_compile", "auto", _jit, "XLA-compile the training step ('auto', true, false)",
           "execution"),
    Option("steps_per_execution", 1, integer(1), "training steps per compiled call",
           "execution"),
)

#: Registered discriminator penalties, in the order their terms are added to D's loss.
PENALTIES: list = []


def register_penalty(cls):
    """Class decorator: register a :class:`tfgan_app.penalties.Penalty` subclass. Its
    ``options`` join the training options (the first one is its weight; 0 switches it off)."""
    names = {o.name for o in _CORE} | {o.name for p in PENALTIES for o in p.options}
    clash = [o.name for o in cls.options if o.name in names]
    if clash:
        raise ValueError(f"penalty {cls.__name__} redefines option(s) {clash}")
    PENALTIES.append(cls())
    return cls


def training_options() -> tuple:
    """Every training option: the core ones, then each registered penalty's."""
    import tfgan_app.penalties  # noqa: F401  (registers the built-in penalties)

    return _CORE + tuple(o for p in PENALTIES for o in p.options)


def training_option_names() -> list[str]:
    return [o.name for o in training_options()]


class TrainingOptions:
    """Validated, immutable values of every training option (see :func:`training_options`).

    ``TrainingOptions(d_steps=5, gradient_penalty=10)``: unknown names raise ``TypeError``
    listing the valid ones; invalid values raise ``ValueError`` naming the option and what
    was expected; omitted options take their defaults. Read values as attributes
    (``opts.d_steps``); :meth:`as_dict` gives a JSON-ready copy.
    """

    __slots__ = ("_values",)

    def __init__(self, **values):
        table = {o.name: o for o in training_options()}
        unknown = sorted(set(values) - set(table))
        if unknown:
            raise TypeError(f"unknown training option(s) {', '.join(unknown)}; valid options: "
                            f"{', '.join(sorted(table))}")
        resolved = {name: (opt.validate(values[name]) if name in values
                           else copy.deepcopy(opt.default)) for name, opt in table.items()}
        object.__setattr__(self, "_values", resolved)

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(f"no training option {name!r}") from None

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"TrainingOptions are immutable; use "
                                              f"replace({name}=...)")

    def replace(self, **changes) -> "TrainingOptions":
        return TrainingOptions(**{**self._values, **changes})

    def as_dict(self) -> dict:
        return copy.deepcopy(self._values)

    def __eq__(self, other):
        return isinstance(other, TrainingOptions) and self._values == other._values

    def __repr__(self):
        changed = {k: v for k, v in self._values.items()
                   if v != next(o.default for o in training_options() if o.name == k)}
        return f"TrainingOptions({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def active_penalties(opts: TrainingOptions) -> list:
    """The registered penalties whose weight (first option) is non-zero in ``opts``."""
    return [p for p in PENALTIES if getattr(opts, p.options[0].name)]


# --------------------------------------------------------------------------- run settings

RUN_SETTINGS = (
    Option("description", "", anything, "one line shown by `tfgan-app presets`", "run"),
    Option("dataset", "digits", anything, "data source name (`tfgan_app.data."
           "dataset_by_name`)", "data"),
    Option("dataset_options", {}, mapping, "keyword arguments of the data source", "data"),
    Option("batch_size", 64, integer(1), "global batch size (divisible by the replicas)",
           "data"),
    Option("epochs", 10, integer(1), "passes over the data", "run"),
    Option("seed", 0, integer(0), "data order, initial weights, training noise", "run"),
    Option("latent_dim", 64, integer(1), "size of z", "networks"),
    Option("num_classes", None, integer(1, optional=True), "classes of a conditional model; "
           "None: unconditional", "networks"),
    Option("categorical_code", 0, integer(0), "InfoGAN: a uniform categorical code of K "
           "values in z's first K entries, which G reads and a head of D predicts "
           "(`tfgan_app.builders.infogan`; unconditional GANs; image-to-image runs, which have no "
           "z, ignore it); 0: none", "networks"),
    Option("generator", {"builder": "mlp"}, builder_spec, '`{"builder": NAME, **kwargs}` '
           "(`tfgan_app.builders.build`)", "networks"),
    Option("discriminator", {"builder": "mlp"}, builder_spec, "same, for the discriminator",
           "networks"),
    Option("translation", None, lambda v: None if v is None else mapping(v),
           "image-to-image runs: `TranslationGAN` keywords (`reconstruction`, "
           "`reconstruction_weight`, `adversarial_weight`, `gradient_ratio`, "
           "`reconstruction_only`); None: noise-to-sample GANs", "networks"),
    Option("cyclegan", None, _cyclegan, "unpaired runs (`unpaired*` data): `CycleGAN` keywords "
           "(`cycle_weight` 10, `identity_weight` 0.5 x cycle, `pool_size` 50, "
           "`pool_probability` 0.5); None: the paper's values", "networks"),
    Option("d_lr", 2e-4, number(0, open_min=True), "discriminator Adam learning rate",
           "optimizers"),
    Option("g_lr", 2e-4, number(0, open_min=True), "generator Adam learning rate",
           "optimizers"),
    Option("beta_1", 0.5, number(0, 1, open_max=True), "Adam beta_1 (both networks)",
           "optimizers"),
    Option("beta_2", 0.999, number(0, 1, open_max=True), "Adam beta_2 (both networks)",
           "optimizers"),
    Option("lr_decay", None, choice("linear", "linear_second_half", "none", optional=True),
           "'linear': both rates fall linearly to lr x lr_decay_floor over the run's steps; "
           "'linear_second_half': constant for the first half, then linearly to 0 (the "
           "CycleGAN paper's); None: constant", "optimizers"),
    Option("lr_decay_floor", 0.01, number(0, 1), "final fraction of the learning rate",
           "optimizers"),
    Option("plot_every", 1, integer(1), "sample grids and plots every N epochs and after the "
           "last (`tfgan_app.callbacks.due`)", "run"),
    Option("backup_every", 1, integer(1), "resumable backups every N epochs and after the "
           "last (`tfgan_app.callbacks.due`)", "run"),
    Option("plot_seconds", 10.0, number(0), "pictures, plots, history.json and TensorBoard "
           "events at most every N s of training (and after the last epoch); 0: every due "
           "epoch (`tfgan_app.callbacks.Schedule`)", "run"),
    Option("backup_seconds", 30.0, number(0), "resumable backups at most every N s (and after "
           "the last epoch): a killed run loses at most N s plus one epoch; 0: every due epoch",
           "run"),
    Option("report", None, choice("gaussian", "mode_coverage", "translation", "cyclegan",
                                  optional=True),
           "what the job measures at the end into report.json", "run"),
    Option("strategy", "default", anything, "`tf.distribute` strategy name "
           "(`tfgan_app.distribute.get_strategy`)", "run"),
    Option("mixed_precision", None, anything, "dtype policy: mixed_float16, mixed_bfloat16, "
           "auto or None", "run"),
    Option("doctor", "on", choice("on", "off", "fix"), "the training doctor "
           "(`tfgan_app.doctor`): 'on' names failures and remedies, 'fix' also restarts with "
           "the remedy, 'off'", "run"),
)


def all_settings() -> tuple:
    """Every settings key a run has: the run settings, then the training options."""
    return RUN_SETTINGS + training_options()


def default_settings() -> dict:
    """The settings every preset starts from (a fresh copy): no remedy switched on."""
    return {o.name: copy.deepcopy(o.default) for o in all_settings()}


def check_setting(name: str, value):
    """Validate one top-level setting (``ValueError`` naming it and what was expected)."""
    table = {o.name: o for o in all_settings()}
    if name not in table:
        raise ValueError(f"unknown setting {name!r}; valid settings: "
                         f"{', '.join(sorted(table))}")
    return table[name].validate(value)


def compile_kwargs(settings: dict) -> dict:
    """The training options of a settings dict, as ``GANModel.compile`` keywords."""
    return {name: copy.deepcopy(settings[name]) for name in training_option_names()
            if name in settings}


def markdown_table() -> str:
    """The README's table of settings: one row per option, training options first."""
    rows = ["| setting | default | what | group |", "| --- | --- | --- | --- |"]
    for o in training_options() + RUN_SETTINGS:
        default = "None" if o.default is None else repr(o.default).replace("|", "\\|")
        rows.append(f"| `{o.name}` | `{default}` | {o.doc} | {o.group} |")
    return "\n".join(rows)


if __name__ == "__main__":
    # the penalties register into the imported module, not into this __main__ copy
    from tfgan_app import options as _options

    print(_options.markdown_table())
