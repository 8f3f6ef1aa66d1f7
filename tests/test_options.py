"""The one definition of the training options: every consumer is derived from it.

Each test fails when an option defined in tfgan_app.options is missing from one of the places
that must know it: compile, get_compile_config, the presets' base settings, train.build_gan,
the CLI's --set, the README's table.
"""

import json
import os

import pytest

from tfgan_app import options, presets, train

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _other_value(opt):
    """A valid value different from the option's default (so dropping it is visible)."""
    special = {"loss": "minimax", "loss_options": {"label_smoothing": 0.1},
               "jit_compile": False, "augment": "diffaugment"}
    if opt.name in special:
        return special[opt.name]
    d = opt.default
    if isinstance(d, bool):
        return not d
    if isinstance(d, float):
        return 0.5 if d == 0 else d * 0.5
    if isinstance(d, int):
        return d + 1
    assert d is None, f"no test value rule for {opt.name}={d!r}"
    for candidate in (0.5, 100):
        try:
            return opt.validate(candidate)
        except ValueError:
            pass
    raise AssertionError(f"no valid non-default test value for {opt.name}")


def _non_default_settings():
    settings = train.resolve_settings("d2l-gaussian", overrides={"epochs": 1})
    for opt in options.training_options():
        settings[opt.name] = _other_value(opt)
    # augmentation needs images, the d2l data are points: tests/test_augment.py round-trips it
    settings["augment"] = settings["ada_target"] = None
    # InfoGAN's weight needs a generator with a categorical code: tests/test_infogan.py
    settings["info_weight"] = None
    return settings


def test_presets_base_holds_every_option_with_its_default():
    base = presets.defaults()
    for opt in options.all_settings():
        assert opt.name in base, opt.name
        assert base[opt.name] == opt.default, opt.name
    for name in presets.names():  # every preset's values are valid settings
        for key, value in presets.get(name).items():
            if key != "preset":
                options.check_setting(key, value)


def test_build_gan_compiles_every_option_and_config_round_trips():
    settings = _non_default_settings()
    ds, info = train.make_dataset(settings)
    gan = train.build_gan(settings, info)
    got = gan.options.as_dict()
    assert set(got) == set(options.training_option_names())
    for opt in options.training_options():
        if opt.name in ("loss", "loss_options"):
            continue  # folded into the loss's config, checked below
        assert got[opt.name] == settings[opt.name], opt.name
    assert got["loss"]["name"] == "minimax" and got["loss"]["label_smoothing"] == 0.1
    config = gan.get_compile_config()
    for name in options.training_option_names():
        assert name in config, name
    gan2 = train.build_gan(train.resolve_settings("d2l-gaussian"), info)
    gan2.compile_from_config(config)
    assert gan2.options == gan.options


@pytest.mark.parametrize("opt", options.training_options(), ids=lambda o: o.name)
def test_cli_set_accepts_every_option(opt):
    value = _other_value(opt)
    settings = train.resolve_settings("d2l-gaussian", overrides=[f"{opt.name}={json.dumps(value)}"])
    assert settings[opt.name] == value


def test_readme_table_is_generated_from_the_options():
    text = open(README, encoding="utf-8").read()
    start, end = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
    assert start in text and end in text
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == options.markdown_table(), (
        "README's settings table is stale: regenerate it with python -m tfgan_app.options")


def test_compile_rejects_unknown_and_invalid_options():
    with pytest.raises(TypeError, match="unknown training option.*gradient_penaly.*valid options"):
        options.TrainingOptions(gradient_penaly=10)
    with pytest.raises(ValueError, match=r"d_steps: expected an integer >= 1, got 0"):
        options.TrainingOptions(d_steps=0)
    with pytest.raises(ValueError, match=r"ema_decay: expected a number in \(0, 1\)"):
        options.TrainingOptions(ema_decay=1.5)
    opts = options.TrainingOptions(d_steps=3)
    with pytest.raises(Exception, match="immutable"):
        opts.d_steps = 4
    assert opts.replace(d_steps=4).d_steps == 4 and opts.d_steps == 3


def test_set_names_the_bad_setting():
    with pytest.raises(ValueError, match="d_lr: expected a number"):
        train.resolve_settings("d2l-gaussian", overrides=["d_lr=fast"])
    with pytest.raises(ValueError, match="batch_size: expected an integer"):
        train.resolve_settings("d2l-gaussian", overrides=["batch_size=abc"])
    with pytest.raises(ValueError, match="unknown setting 'gradient_penaly'"):
        train.resolve_settings("d2l-gaussian", overrides=["gradient_penaly=10"])
