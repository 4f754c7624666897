from dataclasses import dataclass, field
from typing import Literal

import pytest

from agents.config import ConfigError, load_config, parse_overrides


@dataclass
class Optim:
    lr: float = 1e-3
    warmup: int = 10


@dataclass
class Schema:
    env_id: str = "HRMForaging-v0"
    policy: Literal["hrm", "mlp"] = "hrm"
    epochs: int = 3
    optim: Optim = field(default_factory=Optim)
    model: dict = field(default_factory=dict)
    seed: int | None = None


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\noptim:\n  lr: 0.01\nmodel:\n  hidden_size: 64\n")
    config = load_config(Schema, path, ["optim.warmup=3", "model.H_cycles=1", "policy=mlp", "seed=4"])
    assert config.epochs == 5 and config.optim.lr == 0.01 and config.optim.warmup == 3
    assert config.model == {"hidden_size": 64, "H_cycles": 1}
    assert config.policy == "mlp" and config.seed == 4


@pytest.mark.parametrize(
    "override, message",
    [
        (["epoch=3"], "unknown key.*'epoch'.*allowed.*'epochs'"),
        (["optim.beta=3"], "unknown key.*'beta'"),
        (["policy=cnn"], "policy='cnn' is not allowed.*'hrm', 'mlp'"),
        (["epochs=three"], "epochs must be an integer"),
        (["optim=3"], "optim must be a mapping"),
        (["noequals"], "key=value"),
    ],
)
def test_bad_input_is_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Schema, None, override)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Schema, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at the top"):
        load_config(Schema, bad)


def test_parse_overrides_reads_yaml_scalars():
    assert parse_overrides(["a=1", "b=0.5", "c=true", "d=[1, 2]", "e.f=x"]) == {
        "a": 1, "b": 0.5, "c": True, "d": [1, 2], "e": {"f": "x"},
    }  # fmt: skip
