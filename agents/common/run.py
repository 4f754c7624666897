"""Run directories: the config snapshot, a typed train state, atomic data-only checkpoints, resume.

Every trainer (``agents.bc``, ``agents.ppo``, ``agents.train_puzzle``) writes its run through a
:class:`RunDirectory`:

- ``run.json`` marks a directory this package created and lists every file the run wrote with
  its sha256. A new run refuses a non-empty directory; a resumed run reads only files of that
  list whose hash still matches, and refuses any other file beside them, naming it. So a file
  dropped into a run directory (a stray ``dagger_00.npz``, a crafted ``last.pt``) is never read.
- ``last.pt`` is the resume checkpoint: tensors (weights, optimizer state) plus the trainer's
  typed train state and random-generator states as JSON, loaded with
  ``torch.load(weights_only=True)``: data, never code.
- :func:`interrupted_exit` is the one answer to Ctrl-C in any phase: save, print the resume
  command, exit 130.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from agents.config import ConfigError, from_dict

RUN_FILE = "run.json"
RUN_FORMAT = "hrm-gym-run"
CHECKPOINT_FORMAT = "hrm-gym-resume"
FORMAT_VERSION = 1
LAST_FILE = "last.pt"
#: Folders a run writes through libraries (TensorBoard, SB3 loggers) or as a run of its own
#: (``scratch/`` holds its own ``run.json``); their files are never read back on resume.
LOG_DIRS = ("tb", "analysis")

S = TypeVar("S")


class RunError(ConfigError):
    """A run directory that cannot be created or resumed as asked."""


def check_env_id(env_id: str, extra_allowed: Iterable[str] = ()) -> str:
    """``env_id`` if it is one of the registered ``HRM*`` envs (or ``extra_allowed``).

    Gymnasium imports the module of an id written ``module:Env-v0``; an id read from a file
    must therefore be one we know, or a file could make Python import code.
    """
    import gymnasium as gym

    import hrm_gym  # noqa: F401  (registers the envs)

    allowed = sorted(i for i in gym.registry if i.startswith("HRM") and ":" not in i) + list(extra_allowed)
    if not isinstance(env_id, str) or env_id not in allowed:
        raise ConfigError(f"env_id {env_id!r} is not allowed; choose one of {allowed}")
    return env_id


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename over ``path``: an interrupted write never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


class RunDirectory:
    """One run's directory and the list of the files it wrote (module docstring)."""

    def __init__(self, path: Path, record: dict[str, Any]):
        self.path = Path(path)
        self.record = record

    # -- creating and opening ------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, command: str) -> RunDirectory:
        """A new run in ``path``, which must not exist or be empty."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunError(f"--out {path} is a file, not a directory")
        if path.is_dir() and any(path.iterdir()):
            if (path / RUN_FILE).is_file():
                raise RunError(f"{path} already holds a run: continue it with python -m {command} --resume {path}, "
                               "or give another --out")  # fmt: skip
            raise RunError(f"{path} is not empty and was not made by this command: give a new or empty --out")
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, {"format": RUN_FORMAT, "format_version": FORMAT_VERSION, "command": command, "files": {}})
        run._save_record()
        return run

    @classmethod
    def open(cls, path: str | Path, command: str) -> RunDirectory:
        """An existing run of ``command`` to resume; every file in it must be one it wrote."""
        path = Path(path)
        try:
            record = json.loads((path / RUN_FILE).read_text())
        except FileNotFoundError:
            raise RunError(f"--resume {path}: no {RUN_FILE} there (not a run directory of this package)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"--resume {path}: {RUN_FILE} is unreadable ({exc})") from exc
        if (
            not isinstance(record, dict)
            or record.get("format") != RUN_FORMAT
            or not isinstance(record.get("files"), dict)
        ):
            raise RunError(f"--resume {path}: {RUN_FILE} is not a {RUN_FORMAT!r} record")
        if record.get("command") != command:
            raise RunError(f"--resume {path}: a run of {record.get('command')!r}, not of {command!r}")
        run = cls(path, record)
        run.check_files()
        return run

    def check_files(self) -> None:
        """Refuse any file in the run directory that the run did not write, or that changed since."""
        files = self.record["files"]
        for entry in sorted(self.path.iterdir()):
            if entry.name == RUN_FILE or entry.name.startswith("."):
                continue
            if entry.is_dir():
                if entry.name not in LOG_DIRS and not (entry / RUN_FILE).is_file():
                    raise RunError(f"{entry}: a folder this run did not write; move it out of the run directory")
                continue
            if entry.name not in files:
                raise RunError(f"{entry}: a file this run did not write; move it out of the run directory")
            if sha256_of(entry) != files[entry.name]:
                raise RunError(f"{entry} changed since the run wrote it (sha256 differs); it is not read")
        for name in files:
            if not (self.path / name).is_file():
                raise RunError(f"{self.path / name}: written by the run, now missing")

    # -- the file list -------------------------------------------------------------------
    def _save_record(self) -> None:
        text = json.dumps(self.record, indent=1, sort_keys=True)
        _atomic_write(self.path / RUN_FILE, lambda tmp: tmp.write_text(text))

    def file(self, name: str) -> Path:
        return self.path / name

    def recorded(self, name: str) -> Path:
        """Record ``name`` (just written by this run, by any code) with its hash; its path."""
        path = self.path / name
        self.record["files"][name] = sha256_of(path)
        self._save_record()
        return path

    def has(self, name: str) -> bool:
        return name in self.record["files"] and (self.path / name).is_file()

    def verified(self, name: str) -> Path:
        """The path of ``name`` after checking that the run wrote it and it is unchanged."""
        path = self.path / name
        expected = self.record["files"].get(name)
        if expected is None:
            raise RunError(f"{path}: not a file this run wrote; it is not read")
        if not path.is_file():
            raise RunError(f"{path}: written by the run, now missing")
        if sha256_of(path) != expected:
            raise RunError(f"{path} changed since the run wrote it (sha256 differs); it is not read")
        return path

    # -- writing -------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> Path:
        _atomic_write(self.path / name, lambda tmp: tmp.write_text(text))
        return self.recorded(name)

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2))

    def save_arrays(self, name: str, **arrays: np.ndarray) -> Path:
        """An ``.npz`` of plain arrays (read back with ``allow_pickle=False``)."""

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

        _atomic_write(self.path / name, write)
        return self.recorded(name)

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self.verified(name), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    # -- the resume checkpoint -----------------------------------------------------------
    def save_checkpoint(self, state: Any, tensors: dict[str, Any], rng: dict[str, Any] | None = None) -> Path:
        """``last.pt``: ``tensors`` (state dicts) plus the typed ``state`` and ``rng`` as JSON."""
        record = {
            "format": CHECKPOINT_FORMAT,
            "format_version": FORMAT_VERSION,
            "command": self.record["command"],
            "state_type": type(state).__name__,
            "state_json": json.dumps(dataclasses.asdict(state)),
            "rng_json": json.dumps(rng or {}),
            "tensors": tensors,
        }
        _atomic_write(self.path / LAST_FILE, lambda tmp: torch.save(record, tmp))
        return self.recorded(LAST_FILE)

    def load_checkpoint(self, state_type: type[S], map_location: Any = "cpu") -> tuple[S, dict[str, Any], dict]:
        """``(state, tensors, rng)`` of ``last.pt`` (checked: this run's, unchanged, data only)."""
        path = self.verified(LAST_FILE)
        try:
            record = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # refused unpickling, truncated file
            raise RunError(f"{path} is not a readable resume checkpoint: {type(exc).__name__}: {exc}") from exc
        if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{path} is not a {CHECKPOINT_FORMAT!r} checkpoint")
        if record.get("state_type") != state_type.__name__:
            raise RunError(f"{path} holds a {record.get('state_type')!r} state, not a {state_type.__name__!r}")
        try:
            state = from_dict(state_type, json.loads(record["state_json"]), where=f"{path} state")
            rng = json.loads(record["rng_json"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise RunError(f"{path}: damaged state ({exc!r})") from exc
        return state, record["tensors"], rng


def interrupted_exit(save: Callable[[], None], command: str, run_dir: Path, where: str) -> int:
    """Ctrl-C in any phase: save (a second Ctrl-C cannot cut the save), print how to go on, 130."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        save()
    finally:
        signal.signal(signal.SIGINT, previous)
    print(f"\ninterrupted {where}: saved; continue with python -m {command} --resume {run_dir}", file=sys.stderr)
    return 130


def open_run(
    schema: type[S],
    command: str,
    *,
    config_path: str | Path | None,
    overrides: list[str] | None,
    out: str | Path | None,
    resume: str | Path | None,
    default_config: Path,
    default_out: Callable[[S], str],
    check: Callable[[S], None] | None = None,
) -> tuple[S, RunDirectory, bool]:
    """The config and run directory of a training command, new or resumed.

    ``--resume DIR`` reads the run's own ``config.yaml`` (and refuses ``--config``/``--set``: a
    resumed run keeps its settings); otherwise the config is loaded with its overrides, checked
    (``check``) before anything is written, and a new run directory is made: ``out`` or
    ``default_out(config)`` with a time stamp. Returns ``(config, run, resuming)``.
    """
    from datetime import datetime

    from agents.config import load_config

    if resume:
        if config_path or overrides:
            raise ConfigError("--resume continues a run with its own config: drop --config/--set")
        run = RunDirectory.open(resume, command)
        config = load_config(schema, run.verified("config.yaml"))
        if check is not None:
            check(config)
        return config, run, True
    config = load_config(schema, config_path or default_config, overrides)
    if check is not None:
        check(config)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run = RunDirectory.create(out or f"{default_out(config)}-{stamp}", command)
    run.write_text("config.yaml", yaml_dump(dataclasses.asdict(config)))
    return config, run, False


def yaml_dump(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)
