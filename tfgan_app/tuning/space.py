"""The default search space of a preset and how hyperparameter values map onto settings.

See :mod:`tfgan_app.tuning` for the table of hyperparameters. Everything here works on plain
settings dicts (what :func:`tfgan_app.train.resolve_settings` returns); keras-tuner is not
needed.
"""

from __future__ import annotations

import copy
import inspect

from tfgan_app import kinds, presets

__all__ = ["LOSS_CHOICES", "DEFAULT_SPACE", "WIDTH_KEYS", "resolve", "settings_diff",
           "search_space", "apply_values"]

LOSS_CHOICES = ("modified", "least_squares", "wasserstein", "wasserstein_hinge")
DEFAULT_SPACE = ("d_lr", "g_lr", "beta_1", "d_steps", "loss", "gradient_penalty",
                 "latent_dim", "g_width", "d_width")
# builder name -> the keyword that sets its width (None: not tunable)
WIDTH_KEYS = {"toy": None, "mlp": "hidden_units", "dcgan": "base_filters",
              "conditional_dcgan": "base_filters", "unet": "base_filters",
              "srgan": "filters", "patchgan": "base_filters", "resnet": "base_filters"}
_ROLES = {"g_width": "generator", "d_width": "discriminator"}


def resolve(preset: str, overrides=None) -> dict:
    """The settings ``tfgan-app train --preset PRESET`` resolves, with ``overrides`` (a dict
    as from ``--config``, or ``key=value`` strings as from ``--set``).

    Raises:
      ValueError: an unknown preset or setting.
    """
    from tfgan_app import train

    if isinstance(overrides, dict):
        return train.resolve_settings(preset, config=overrides)
    return train.resolve_settings(preset, overrides=list(overrides or []))


def settings_diff(settings: dict, reference: dict) -> dict:
    """The entries of ``settings`` (deep copies) that differ from ``reference``, except
    ``preset``: the overrides that turn ``reference`` into ``settings``."""
    return {k: copy.deepcopy(v) for k, v in settings.items()
            if k != "preset" and reference.get(k, object()) != v}


# ----------------------------------------------------------------------------- widths

def _width_default(builder: str, role: str, key: str):
    from tfgan_app import builders

    fn = {("mlp", "generator"): builders.mlp_generator,
          ("mlp", "discriminator"): builders.mlp_discriminator,
          ("dcgan", "generator"): builders.dcgan_generator,
          ("dcgan", "discriminator"): builders.dcgan_discriminator,
          ("conditional_dcgan", "generator"): builders.conditional_dcgan_generator,
          ("conditional_dcgan", "discriminator"): builders.conditional_dcgan_discriminator,
          ("unet", "generator"): builders.unet_generator,
          ("srgan", "generator"): builders.srgan_generator,
          ("resnet", "generator"): builders.resnet_generator,
          ("patchgan", "discriminator"): builders.patchgan_discriminator,
          }[(builder, role)]
    return inspect.signature(fn).parameters[key].default


def _width_of(spec: dict, role: str):
    """``(width_key, current width)`` of a builder spec, or ``(None, None)``."""
    builder = spec.get("builder")
    key = WIDTH_KEYS.get(builder)
    if key is None:
        return None, None
    value = spec.get(key, _width_default(builder, role, key))
    if key == "hidden_units":
        units = list(value)
        return key, int(units[0]) if units else None
    return key, int(value)


def _with_width(spec: dict, role: str, width: int) -> dict:
    """A copy of builder ``spec`` whose width is ``width`` (mlp: every layer scaled in
    proportion to the first)."""
    spec = copy.deepcopy(spec)
    key, current = _width_of(spec, role)
    if key is None:
        raise ValueError(f"the {spec.get('builder')!r} {role} has no width to tune")
    width = int(width)
    if width == current:
        return spec  # unchanged (also when the spec relies on the builder's default)
    if key == "hidden_units":
        units = list(spec.get(key, _width_default(spec["builder"], role, key)))
        spec[key] = [max(1, int(round(u * width / current))) for u in units]
    else:
        spec[key] = width
    return spec


# ----------------------------------------------------------------------------- the space

def _around(p: int) -> list[int]:
    p = int(p)
    return sorted({max(1, p // 2), p, 2 * p})


def _with(values, p) -> list:
    return sorted(set(values) | {p})


def _loss_options_for(loss: str, options: dict) -> dict:
    """The subset of ``options`` that loss ``loss`` accepts."""
    from tfgan_app import losses

    accepted = set(losses.get(loss).options)
    return {k: v for k, v in (options or {}).items() if k in accepted}


def search_space(settings: dict) -> dict:
    """The default hyperparameters that apply to ``settings`` (resolved settings of a preset):
    ``{name: (kind, kwargs)}``, ``kind`` ``"float"`` (``hp.Float``) or ``"choice"``
    (``hp.Choice``), every ``kwargs["default"]`` the settings' own value. Learning rates span
    ``[p/10, 10p]`` on a log scale; ``loss`` is absent for ``acgan``; ``latent_dim`` for
    translation, and ``d_steps``/``gradient_penalty`` too for CycleGAN; ``g_width``/``d_width``
    only for builders with a width (:data:`WIDTH_KEYS`)."""
    s = settings
    space = {}
    for name in ("d_lr", "g_lr"):
        p = float(s[name])
        space[name] = ("float", dict(min_value=p / 10, max_value=p * 10, sampling="log",
                                     default=p))
    space["beta_1"] = ("choice", dict(values=_with([0.0, 0.5, 0.9], float(s["beta_1"])),
                                      default=float(s["beta_1"])))
    kind = kinds.kind_of(s["dataset"], num_classes=s.get("num_classes"))
    if kind is not kinds.CYCLEGAN:  # CycleGAN takes neither (tfgan_app.cyclegan)
        space["d_steps"] = ("choice", dict(values=_with([1, 2, 5], int(s["d_steps"])),
                                           default=int(s["d_steps"])))
    if s["loss"] != "acgan":
        values = list(LOSS_CHOICES) + ([s["loss"]] if s["loss"] not in LOSS_CHOICES else [])
        space["loss"] = ("choice", dict(values=values, default=s["loss"]))
    gp = float(s["gradient_penalty"])
    if kind is not kinds.CYCLEGAN:
        space["gradient_penalty"] = ("choice", dict(values=_with([0.0, 1.0, 10.0], gp),
                                                    default=gp))
    if kind not in (kinds.TRANSLATION, kinds.CYCLEGAN):
        # a translation generator has no latent input (TranslationGAN ignores latent_dim)
        space["latent_dim"] = ("choice", dict(values=_around(s["latent_dim"]),
                                              default=int(s["latent_dim"])))
    for name, role in _ROLES.items():
        key, width = _width_of(s[role], role)
        if key is not None and width:
            space[name] = ("choice", dict(values=_around(width), default=width))
    return space


def apply_values(settings: dict, values: dict) -> dict:
    """A copy of ``settings`` with hyperparameter ``values`` (``{name: value}``) applied.

    Default-space names set their settings key (``loss`` also keeps only the
    ``loss_options`` the new loss accepts; ``g_width``/``d_width`` rescale the builder spec);
    any other settings key is applied as an override (dotted keys nest); names starting with
    ``tuner/`` (keras-tuner's own) are skipped.

    Raises:
      ValueError: a name that is neither in the default space nor a settings key.
    """
    s = copy.deepcopy(settings)
    extra = {}
    for name, v in values.items():
        if name.startswith("tuner/"):
            continue
        if name in ("d_lr", "g_lr", "beta_1", "gradient_penalty"):
            s[name] = float(v)
        elif name in ("d_steps", "latent_dim"):
            s[name] = int(v)
        elif name == "loss":
            s["loss"] = str(v)
            s["loss_options"] = _loss_options_for(str(v), s.get("loss_options"))
        elif name in _ROLES:
            s[_ROLES[name]] = _with_width(s[_ROLES[name]], _ROLES[name], v)
        elif name.split(".")[0] in s:
            extra[name] = v
        else:
            raise ValueError(f"hyperparameter {name!r} is neither in the default search "
                             f"space ({', '.join(DEFAULT_SPACE)}) nor a settings key")
    return presets.apply_overrides(s, extra) if extra else s
