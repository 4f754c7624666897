"""The shared run layer: run directories that refuse foreign files, data-only checkpoints, BC on it."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import bc
from agents.checkpoint import CheckpointError, build_policy, load_policy, save_policy
from agents.common.machine import machine_facts, resolve_device
from agents.common.run import RunDirectory, RunError, check_env_id
from agents.config import ConfigError

#: Foraging alone: the default BC config adds the Chase planner's data (minutes of planning)
FORAGING = ["--config", str(Path(__file__).resolve().parents[1] / "configs" / "foraging_bc.yaml")]

TINY_RUN = [
    "episodes=24", "val_episodes=6", "batch_size=16", "max_batches=6", "eval_every=3",
    "val_states=64", "val_rollouts=2", "test_episodes=2", "checkpoint_every=1",
    "model.hidden_size=16", "model.num_heads=2", "model.halt_max_steps=2",
    "model.H_cycles=1", "model.L_cycles=1", "num_threads=1", "dagger_episodes=3", "decision_views=1",
]  # fmt: skip


@dataclass
class ToyState:
    phase: str = "train"
    batches: int = 0
    history: list = field(default_factory=list)


def bc_run(out, *extra: str) -> int:
    return bc.main(["--no-progress", *FORAGING, "--out", str(out), *[f"--set={o}" for o in TINY_RUN + list(extra)]])


def test_new_run_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty and was not made by this command"):
        RunDirectory.create(tmp_path, "agents.bc")
    run_dir = tmp_path / "run"
    RunDirectory.create(run_dir, "agents.bc").write_text("config.yaml", "seed: 0\n")
    with pytest.raises(RunError, match="already holds a run: continue it with python -m agents.bc --resume"):
        RunDirectory.create(run_dir, "agents.bc")


def test_resume_refuses_foreign_changed_and_missing_files(tmp_path):
    run = RunDirectory.create(tmp_path / "run", "agents.bc")
    run.save_checkpoint(ToyState(batches=3), {"w": torch.ones(2)})
    run.save_arrays("dagger_00.npz", states=np.zeros((2, 3), np.uint8))
    state, tensors, _ = RunDirectory.open(run.path, "agents.bc").load_checkpoint(ToyState)
    assert state.batches == 3 and torch.equal(tensors["w"], torch.ones(2))

    stray = run.path / "dagger_01.npz"
    np.savez(stray, states=np.ones((2, 3), np.uint8))
    with pytest.raises(RunError, match="dagger_01.npz: a file this run did not write"):
        RunDirectory.open(run.path, "agents.bc")
    stray.unlink()
    np.savez(run.path / "dagger_00.npz", states=np.ones((2, 3), np.uint8))  # replaced by someone else
    with pytest.raises(RunError, match="dagger_00.npz changed since the run wrote it"):
        RunDirectory.open(run.path, "agents.bc")
    with pytest.raises(RunError, match="a run of 'agents.bc', not of 'agents.ppo'"):
        RunDirectory.open(run.path, "agents.ppo")
    with pytest.raises(RunError, match="no run.json there"):
        RunDirectory.open(tmp_path, "agents.bc")


def test_a_crafted_resume_checkpoint_is_refused_without_running_code(tmp_path):
    run = RunDirectory.create(tmp_path / "run", "agents.bc")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (run.path / "last.pt").write_bytes(pickle.dumps({"format": "hrm-gym-resume", "x": Exploit()}))
    run.recorded("last.pt")  # even a file the run lists is read as data only
    with pytest.raises(RunError, match="not a readable resume checkpoint"):
        run.load_checkpoint(ToyState)
    assert not marker.exists()


def test_env_ids_must_be_registered_hrm_envs(tmp_path):
    assert check_env_id("HRMForaging-v0") == "HRMForaging-v0"
    for bad in ("os:Env-v0", "CartPole-v1", "HRMNope-v0"):
        with pytest.raises(ConfigError, match="is not allowed; choose one of"):
            check_env_id(bad)
    env = gym.make("HRMForaging-v0")
    save_policy(tmp_path, build_policy(env, "mlp", {"net_arch": [8]}), "json:Env-v0", {}, sb3_zip=False)
    with pytest.raises(CheckpointError, match="env_id 'json:Env-v0' is not allowed"):
        load_policy(tmp_path)


def test_device_names_are_checked():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="device='tpu' is not allowed; choose auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    facts = machine_facts("cpu")
    assert facts["threads"] >= 1 and facts["cpu"] and facts["dtype"] == "float32"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval_every=0", "eval_every=0 must be >= 1"),
        ("checkpoint_every=0", "checkpoint_every=0 must be >= 1"),
        ("batch_size=0", "batch_size=0 must be >= 1"),
        ("device=tpu", "device='tpu' is not allowed"),
        ("env_id=os:Env-v0", "env_id 'os:Env-v0' is not allowed"),
    ],  # fmt: skip
)
def test_bc_bad_settings_are_one_line_errors(tmp_path, capsys, override, message):
    assert bc_run(tmp_path / "run", override) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written for a refused config


@pytest.mark.slow
def test_bc_same_seed_gives_identical_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bc_run(tmp_path / "a", "dagger_rounds=1") == 0
    assert bc_run(tmp_path / "b", "dagger_rounds=1") == 0
    assert bc_run(tmp_path / "c", "dagger_rounds=1", "seed=1") == 0
    a, b, c = (torch.load(tmp_path / n / "policy.pt", weights_only=True)["state_dict"] for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["train_samples"] == 6 * 16 and metrics["stopped_by"] == "max_batches"
    assert {"cpu", "threads", "dtype", "device"} <= set(metrics["machine"]) and metrics["samples_per_s"] > 0


@pytest.mark.slow
def test_bc_interrupted_in_its_test_phase_resumes_the_test(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    original = bc.run_episodes
    calls = {"n": 0}

    def interrupt_the_test(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # validations at batches 3 and 6 ran; this is the test
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(bc, "run_episodes", interrupt_the_test)
    out = tmp_path / "run"
    assert bc_run(out) == 130
    err = capsys.readouterr().err
    assert f"python -m agents.bc --resume {out}" in err and "Traceback" not in err
    assert not (out / "metrics.json").exists()
    monkeypatch.setattr(bc, "run_episodes", original)
    assert bc.main(["--no-progress", "--resume", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["batches"] == 6 and [row["batch"] for row in metrics["history"]] == [3, 6]


def test_bc_resume_refuses_a_stray_dagger_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert bc_run(out, "dagger_rounds=1") == 0
    np.savez(out / "dagger_05.npz", states=np.zeros((1, 2), np.uint8))
    assert bc.main(["--no-progress", "--resume", str(out)]) == 2
    assert "dagger_05.npz: a file this run did not write" in capsys.readouterr().err
