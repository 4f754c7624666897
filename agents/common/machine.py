"""Device, threads, dtype and seeds of a run, and the machine facts every ``metrics.json`` records.

A figure means little without the machine it came from: samples/s depend on the CPU (bf16
units or not), the thread count and the load, while the model a run ends with must not. Runs
are bounded by samples, so these facts only explain the wall time.
"""

from __future__ import annotations

import os
import platform
import random
import re

import numpy as np
import torch

from agents.config import ConfigError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str, key: str = "device") -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; anything else is a
    :class:`ConfigError` naming the value and what is allowed."""
    if not isinstance(name, str) or not DEVICE_PATTERN.match(name):
        raise ConfigError(f"{key}={name!r} is not allowed; choose auto, cpu, cuda or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}={name!r}: this machine has no CUDA device; use auto or cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{key}={name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device(name)


def resolve_dtype(name: str, key: str = "dtype") -> torch.dtype:
    """A dtype name of :data:`DTYPES` as a torch dtype (a clear error otherwise)."""
    if name not in DTYPES:
        raise ConfigError(f"{key}={name!r} is not allowed; choose one of {sorted(DTYPES)}")
    return DTYPES[name]


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy and torch, and fix torch's thread count (results depend on it)."""
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"num_threads={threads} must be >= 1")
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """The CPU features that change torch's speed most: bf16 and AMX units."""
    from agents.hrm.model import cpu_flag_set

    return sorted(f for f in cpu_flag_set() or () if f.startswith(("amx", "avx512_bf16", "avx512f", "avx2")))


def machine_facts(device: torch.device | str = "cpu", dtype: torch.dtype | str = torch.float32) -> dict:
    """What ``metrics.json`` records beside every time: CPU, cores, threads, device, dtype, torch."""
    device = torch.device(device)
    facts = {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    return facts
