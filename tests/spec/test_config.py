import dataclasses
import json

import pytest
from click.testing import CliRunner

from tinycl_hdl.cli import main
from tinycl_hdl.spec.catalogue import PRESETS, load_config
from tinycl_hdl.spec.config import ConfigError, TinyCLConfig

REQUIRED_FIELDS = ["in_h", "in_w", "in_c", "kernel", "filters", "classes", "slots", "data_width",
                   "frac_bits", "acc_width", "n_pu", "pixel_offset", "window", "datapath", "update_rounding",
                   "lr_shift", "epochs", "seed"]


def test_fields_are_the_documented_ones():
    names = [f.name for f in dataclasses.fields(TinyCLConfig)]
    assert names == REQUIRED_FIELDS


def test_presets_match_architecture_table():
    d, c = PRESETS["digits"], PRESETS["cifar10"]
    assert (d.in_h, d.in_w, d.in_c, d.kernel, d.filters, d.classes, d.slots) == (8, 8, 1, 3, 8, 10, 500)
    assert (c.in_h, c.in_w, c.in_c, c.kernel, c.filters, c.classes, c.slots) == (32, 32, 3, 3, 8, 10, 500)
    assert (d.data_width, d.frac_bits, d.acc_width) == (16, 10, 48)


def test_serial_datapath_is_validated():
    with pytest.raises(ConfigError, match="datapath"):
        TinyCLConfig(datapath="systolic")
    with pytest.raises(ConfigError, match="n_pu"):
        TinyCLConfig(datapath="serial", n_pu=2)
    with pytest.raises(ConfigError, match="frac_bits"):
        TinyCLConfig(datapath="serial", data_width=12, frac_bits=11)
    assert TinyCLConfig(datapath="serial", data_width=12, frac_bits=10).lanes == 1
    assert TinyCLConfig(datapath="serial").lanes == 1


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["digits"].kernel = 5


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    cfg = PRESETS[name]
    assert TinyCLConfig.from_json(cfg.to_json()) == cfg


def test_required_acc_width_cifar10():
    # Independent derivation (docs/fixed-point.md): the dense forward of cifar10 sums
    # 8*30*30 = 7200 products plus the bias; 7201 <= 2**13 terms of 32-bit
    # products need 32 + 13 = 45 bits.
    assert PRESETS["cifar10"].required_acc_width == 45
    dataclasses.replace(PRESETS["cifar10"], acc_width=45)
    with pytest.raises(ConfigError, match="acc_width"):
        dataclasses.replace(PRESETS["cifar10"], acc_width=44)


@pytest.mark.parametrize("change, field", [
    ({"kernel": 9}, "kernel"),
    ({"in_w": 2}, "kernel"),
    ({"frac_bits": 16}, "frac_bits"),
    ({"frac_bits": 0}, "frac_bits"),
    ({"acc_width": 30}, "acc_width"),
    ({"classes": 1}, "classes"),
    ({"slots": 5}, "slots"),
    ({"window": "zigzag"}, "window"),
    ({"n_pu": 9}, "n_pu"),
    ({"n_pu": 3}, "n_pu"),
    ({"in_c": 5}, "in_c"),
    ({"n_pu": 0}, "n_pu"),
    ({"epochs": 0}, "epochs"),
    ({"seed": -1}, "seed"),
    ({"seed": 1 << 31}, "seed"),
    ({"filters": 2.5}, "filters"),
    ({"in_c": True}, "in_c"),
    ({"lr_shift": -1}, "lr_shift"),
    ({"data_width": 40}, "data_width"),
])
def test_invalid_values_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(PRESETS["digits"], **change)


def test_overrides_parse_and_validate():
    cfg = PRESETS["digits"].with_overrides(["kernel=5", "window=raster", "seed=0x10"])
    assert (cfg.kernel, cfg.window, cfg.seed) == (5, "raster", 16)
    with pytest.raises(ConfigError, match="unknown configuration key 'colour'"):
        PRESETS["digits"].with_overrides(["colour=3"])
    with pytest.raises(ConfigError, match="key=value"):
        PRESETS["digits"].with_overrides(["kernel"])
    with pytest.raises(ConfigError, match="filters must be an integer"):
        PRESETS["digits"].with_overrides(["filters=many"])


def test_config_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "cifar10"\nfilters = 4\nwindow = "raster"\n')
    cfg = load_config(config_file=str(toml), overrides=["n_pu=2"])
    assert (cfg.in_h, cfg.in_c, cfg.filters, cfg.window, cfg.n_pu) == (32, 3, 4, "raster", 2)
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"in_h": 7, "in_w": 5}))
    assert load_config(config_file=str(js)).out_w == 3
    js.write_text(json.dumps({"bogus": 1}))
    with pytest.raises(ConfigError, match="bogus"):
        load_config(config_file=str(js))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(config_file=str(tmp_path / "missing.json"))


def test_cli_rejects_before_work():
    result = CliRunner().invoke(main, ["train", "--set", "frac_bits=20"])
    assert result.exit_code == 2
    assert "frac_bits" in result.output


def test_cli_config_prints_resolved():
    result = CliRunner().invoke(main, ["config", "--preset", "cifar10", "--set", "filters=4"])
    assert result.exit_code == 0
    assert json.loads(result.output)["filters"] == 4


@pytest.mark.parametrize("command", ["config", "train", "vectors"])
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "--preset" in result.output and "--set" in result.output
