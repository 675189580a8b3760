"""Config validation: the sample loads; bad files fail with file, key path and expectation."""

from __future__ import annotations

import json

import pytest
import yaml

from aqforecast.config import ConfigError, config_schema_json, load_config, read_yaml


def _write(tmp_path, data, name="bad.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


@pytest.fixture
def base(sample_config):
    return read_yaml(sample_config)


def test_sample_config_loads(sample_config):
    cfg = load_config(sample_config)
    assert [d.name for d in cfg.domains] == ["d01", "d02"]
    assert cfg.vertical.nz == 15
    assert cfg.time.lead_hours == 360
    assert cfg.species[0] == "NO"  # YAML 1.1 would have read NO as False
    assert cfg.base_dir == sample_config.parent.parent.resolve()


def test_yaml_no_is_a_string(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("a: [NO, no, yes, on, true]\n")
    assert read_yaml(p) == {"a": ["NO", "no", "yes", "on", True]}


def _expect(tmp_path, data, *fragments):
    p = _write(tmp_path, data)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert str(p) in msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


def test_unknown_top_level_key(tmp_path, base):
    base["colour"] = "red"
    _expect(tmp_path, base, "colour", "unknown key")


def test_unknown_nested_key_with_line(tmp_path, base):
    base["domains"][1]["dxx"] = 3
    msg = _expect(tmp_path, base, "domains[1].dxx", "unknown key")
    assert "(line " in msg


def test_missing_section(tmp_path, base):
    del base["projection"]
    _expect(tmp_path, base, "projection", "required key is missing")


def test_dx_out_of_range(tmp_path, base):
    base["domains"][0]["dx_m"] = 50.0
    _expect(tmp_path, base, "domains[0].dx_m", "greater than or equal to 100")
    base["domains"][0]["dx_m"] = 200000.0
    _expect(tmp_path, base, "domains[0].dx_m", "less than or equal to 150000")


def test_lead_over_15_days(tmp_path, base):
    base["time"]["lead_hours"] = 400
    _expect(tmp_path, base, "time.lead_hours", "less than or equal to 360")


def test_nest_outside_parent(tmp_path, base):
    base["domains"][1]["i_parent_start"] = 50
    _expect(tmp_path, base, "must lie inside its parent 'd01'", "x 50..61", "x 0..53")


def test_nest_touching_parent_edge(tmp_path, base):
    base["domains"][1]["j_parent_start"] = 0
    _expect(tmp_path, base, "must lie inside its parent", "y 0..11")


def test_nest_dx_ratio_mismatch(tmp_path, base):
    base["domains"][1]["dx_m"] = 1500.0
    _expect(tmp_path, base, "dx_m*ratio = 4500 m must equal parent dx_m = 3000 m")


def test_nest_size_not_multiple_of_ratio(tmp_path, base):
    base["domains"][1]["nx"] = 37
    _expect(tmp_path, base, "nx=37", "multiples of ratio 3")


def test_nest_unknown_parent(tmp_path, base):
    base["domains"][1]["parent"] = "d00"
    _expect(tmp_path, base, "parent 'd00' is not defined")


def test_nest_without_start(tmp_path, base):
    del base["domains"][1]["i_parent_start"]
    _expect(tmp_path, base, "domains[1]", "needs i_parent_start")


def test_sync_step_must_divide_hour(tmp_path, base):
    base["time"]["sync_step_s"] = 700
    _expect(tmp_path, base, "time", "sync_step_s=700 must divide 3600 s")


def test_sync_step_cfl(tmp_path, base):
    base["time"]["sync_step_s"] = 900
    base["time"]["max_wind_ms"] = 60.0
    _expect(tmp_path, base, "too long for dx=1000 m", "sub-steps", "use sync_step_s <=")


def test_unknown_species(tmp_path, base):
    base["species"].append("XYZ")
    _expect(tmp_path, base, "species", "unknown species 'XYZ'")


def test_tag_species_not_transported(tmp_path, base):
    base["tags"]["species"].append("CO")
    base["species"].remove("CO")
    _expect(tmp_path, base, "tags.species: 'CO' is not in the transported species")


def test_met_paths_cover_domains(tmp_path, base):
    del base["inputs"]["met"]["paths"]["d02"]
    _expect(tmp_path, base, "inputs.met.paths has no entry for domain 'd02'")


def test_windows_must_cover_lead(tmp_path, base):
    base["time"]["windows"] = [{"until_hours": 72, "every_hours": 3}]
    _expect(tmp_path, base, "windows end at 72 h, before lead_hours=360")


def test_window_step_divides(tmp_path, base):
    base["time"]["windows"][0]["every_hours"] = 5
    _expect(tmp_path, base, "5 h does not divide the window 0..72 h")


def test_wrong_type(tmp_path, base):
    base["domains"][0]["nx"] = "many"
    _expect(tmp_path, base, "domains[0].nx", "valid integer")


def test_bad_datetime(tmp_path, base):
    base["time"]["start"] = "yesterday"
    _expect(tmp_path, base, "time.start", "datetime")


def test_vertical_one_of(tmp_path, base):
    base["vertical"]["eta_interfaces"] = [1.0, 0.5, 0.0]
    _expect(tmp_path, base, "vertical", "exactly one of 'nz' or 'eta_interfaces'")


def test_truelats_hemisphere(tmp_path, base):
    base["projection"]["truelat1"] = -30.0
    _expect(tmp_path, base, "projection", "same hemisphere")


def test_yaml_syntax_error(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\ndomains: [\n  - a\n")
    with pytest.raises(ConfigError, match=r"broken.yaml \(line \d+, column \d+\): not valid YAML"):
        load_config(p)


def test_not_a_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_every_error_reported(tmp_path, base):
    base["domains"][0]["nx"] = 1
    base["time"]["lead_hours"] = 0
    msg = _expect(tmp_path, base, "domains[0].nx", "time.lead_hours")
    assert len(msg.splitlines()) >= 2


def test_schema_in_sync(repo):
    """workflow/schemas/config.schema.json is generated from the models (`aqforecast schema`)."""
    on_disk = (repo / "workflow" / "schemas" / "config.schema.json").read_text()
    assert on_disk == config_schema_json(), "run `aqforecast schema` to regenerate"
    schema = json.loads(on_disk)
    assert schema["additionalProperties"] is False
    assert "domains" in schema["required"]


def test_schema_validates_sample(sample_config):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(config_schema_json())
    data = read_yaml(sample_config)
    data["time"]["start"] = data["time"]["start"].isoformat() if hasattr(
        data["time"]["start"], "isoformat") else data["time"]["start"]
    jsonschema.validate(data, schema)
