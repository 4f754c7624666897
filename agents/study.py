"""A study of the HRM against its variants and controls, and a check of published claims with numbers.

    python -m agents.study [--config configs/study.yaml] [--preset quick|full] [--out DIR]
                           [--only VARIANT ...] [--report FILE] [--dry-run]

Why: single runs say little about which part of the HRM matters. The study trains every variant
of ``configs/study.yaml`` (the 1-step HRM, other gradients, widths, depths, a GRU, a control
without recurrence, Deep Thinking) on each task at the same sample budget (``max_batches`` per
task and preset), analyses each run (:mod:`agents.analyze`), and writes ``OUT/study.json`` and a
report (default ``docs/study.md``): one table per task (mean and min-max over seeds), then each
published claim (PR_H/PR_L near 3 vs 1 untrained; test-time scaling; the outer loop over the H/L
hierarchy; full backprop over the 1-step gradient; failures on one-blank Sudoku boards) with the
numbers, and a verdict computed from them: confirmed, not confirmed or not measured.

Reads top to bottom: the study config (checked: a bad preset, variant or task name is a one-line
error, exit 2) -> the plan, one run per (task, variant, seed) in ``OUT/<task>/<variant>/seed<S>``
-> execution: a finished run (``metrics.json``) is skipped, a started one (``run.json`` only)
resumed with ``--resume``, then analysed into ``<run>/analysis/`` unless that exists; so Ctrl-C
and the same command again continues where it stopped, retraining nothing -> aggregation ->
claims -> report. The trainer and the analysis run in this process, as their ``main`` functions;
a run that fails is listed in the report and the others go on (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agents.config import ConfigError, load_config
from agents.puzzles.cli import Parser, fail

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "study.yaml"
VERDICTS = ("confirmed", "not confirmed", "not measured")
#: What the study sets itself: one sample budget per task, the seeds, the preset's machine settings.
RESERVED = ("max_batches", "seed", "device", "num_threads")
METRICS = ("exact_accuracy", "valid_rate", "cell_accuracy")
FIGURES = ("convergence", "participation_ratio", "inference_scaling")
PR_THRESHOLD = 2.0  # PR_H / PR_L above it: the exploration guide's success metric (docs/analysis.md)


# ---- the study config --------------------------------------------------------------------
@dataclass
class Task:
    name: str
    config: Path
    metric: str
    main_set: str | None = None  # claim (d)
    scaling_set: str | None = None  # claim (b)
    one_blank_set: str | None = None  # claim (e)


@dataclass
class Variant:
    name: str
    description: str
    overrides: dict[str, Any]
    tasks: list[str] | None = None  # None: every task


@dataclass
class PresetTask:
    max_batches: int
    variants: list[str]
    overrides: dict[str, Any]


@dataclass
class Preset:
    name: str
    seeds: list[int]
    device: str
    num_threads: int | None
    analysis_n: int
    scaling: int
    tasks: dict[str, PresetTask]


@dataclass
class Study:
    tasks: dict[str, Task]
    variants: dict[str, Variant]
    presets: dict[str, dict[str, Any]]  # raw: only the chosen one is resolved
    claims: dict[str, Any]
    figures: list[str]
    margin: float
    report: str
    out: str


def pick(name: str, allowed: dict[str, Any] | list[str], what: str) -> str:
    if name not in allowed:
        raise ConfigError(f"unknown {what} {name!r}; allowed: {', '.join(allowed)}")
    return name


def repo_path(text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() or path.exists() else ROOT / path


def check_overrides(overrides: Any, where: str) -> dict[str, Any]:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}.overrides must be a mapping key: value, got {overrides!r}")
    for key in overrides:
        if str(key).split(".")[0] in RESERVED:
            raise ConfigError(f"{where} sets {key}: the study sets {', '.join(RESERVED)} itself (one budget a task)")
    return overrides


def load_study(path: str | Path) -> Study:
    """``path`` read and checked (names, metrics, overrides); presets stay raw until chosen."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read study config {path}: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), dict) for k in ("tasks", "presets")):
        raise ConfigError(f"{path}: needs mappings tasks and presets and a list variants")
    tasks = {}
    for name, spec in raw["tasks"].items():
        if not isinstance(spec, dict) or "config" not in spec:
            raise ConfigError(f"task {name} needs a mapping with config (the trainer's YAML) and metric")
        metric = pick(spec.get("metric", "exact_accuracy"), list(METRICS), f"metric of task {name}")
        keys = ("main_set", "scaling_set", "one_blank_set")
        tasks[name] = Task(name, repo_path(spec["config"]), metric, **{k: spec.get(k) for k in keys})
        if not tasks[name].config.is_file():
            raise ConfigError(f"task {name}: no config file {spec['config']}")
    variants = {}
    for i, spec in enumerate(raw.get("variants") or []):
        where = f"variants[{i}]"
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"{where} must be a mapping with name, description, overrides")
        for task in spec.get("tasks") or []:
            pick(task, tasks, f"task of variant {spec['name']}")
        variants[spec["name"]] = Variant(spec["name"], spec.get("description", ""),
                                         check_overrides(spec.get("overrides", {}), where), spec.get("tasks"))  # fmt: skip
    if not variants:
        raise ConfigError(f"{path}: variants is empty")
    claims = dict(raw.get("claims") or {})
    for key, value in claims.items():
        for name in value if isinstance(value, list) else [value]:
            pick(name, variants, f"variant of claims.{key}")
    figures = [pick(name, variants, "variant of figures") for name in raw.get("figures", [])]
    return Study(tasks, variants, raw["presets"], claims, figures, float(raw.get("margin", 0.02)),
                 raw.get("report", "docs/study.md"), raw.get("out", "runs/study"))  # fmt: skip


def resolve_preset(study: Study, name: str) -> Preset:
    """The preset ``name``, each task's budget read from its config when the preset gives none."""
    from agents.config import load_config
    from agents.train_puzzle import PuzzleTrainConfig

    raw = study.presets[pick(name, study.presets, "preset")]
    if not isinstance(raw, dict):
        raise ConfigError(f"preset {name} must be a mapping with seeds, device and tasks")
    analysis = raw.get("analysis") or {}
    tasks = {}
    for task, spec in (raw.get("tasks") or {}).items():
        pick(task, study.tasks, f"task of preset {name}")
        spec = spec or {}
        budget = spec.get("max_batches") or load_config(PuzzleTrainConfig, study.tasks[task].config).max_batches
        wanted = spec.get("variants", "all")
        usable = [v.name for v in study.variants.values() if v.tasks is None or task in v.tasks]
        names = usable if wanted == "all" else [pick(v, usable, f"variant for {task}") for v in wanted]
        tasks[task] = PresetTask(int(budget), names, check_overrides(spec.get("overrides", {}), f"{name}.{task}"))
    seeds = raw.get("seeds", [0])
    if not tasks or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"preset {name} needs tasks and a list of integer seeds")
    return Preset(name, seeds, str(raw.get("device", "auto")), raw.get("num_threads"),
                  int(analysis.get("n", 256)), int(analysis.get("scaling", 8)), tasks)  # fmt: skip


# ---- the plan ----------------------------------------------------------------------------
@dataclass
class Run:
    task: str
    variant: str
    seed: int
    dir: Path
    train_argv: list[str]
    analyze_argv: list[str]

    @property
    def label(self) -> str:
        return f"{self.task}/{self.variant}/seed{self.seed}"


def set_value(value: Any) -> str:
    """A value as ``--set key=value`` reads it (YAML; flow style for lists and mappings)."""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def plan(study: Study, preset: Preset, out: Path, only: list[str] | None = None) -> list[Run]:
    """Every run of ``preset`` (only the variants ``only`` names, if given), its config checked and
    its model built: a bad combination fails before anything trains."""
    from agents.config import load_config
    from agents.train_puzzle import PuzzleTrainConfig, build, check_config, task_setup

    runs = []
    for task_name, spec in preset.tasks.items():
        task = study.tasks[task_name]
        for variant in spec.variants:
            if only and variant not in only:
                continue
            for seed in preset.seeds:
                run_dir = out / task_name / variant / f"seed{seed}"
                study_keys = {"max_batches": spec.max_batches, "seed": seed, "device": preset.device}
                if preset.num_threads:
                    study_keys["num_threads"] = preset.num_threads
                keys = {**spec.overrides, **study.variants[variant].overrides, **study_keys}
                sets = [f"{key}={set_value(value)}" for key, value in keys.items()]
                try:
                    config = load_config(PuzzleTrainConfig, task.config, sets)
                    check_config(config)
                    if seed == preset.seeds[0]:  # the model does not depend on the seed
                        build(config, *task_setup(config))
                except ValueError as exc:
                    raise ConfigError(f"{task_name}/{variant}: {exc}") from None
                train = ["--config", str(task.config), *[a for s in sets for a in ("--set", s)], "--out", str(run_dir),
                         "--no-progress"]  # fmt: skip
                analyze = ["--checkpoint", str(run_dir), "--out", str(run_dir / "analysis"), "--n",
                           str(preset.analysis_n), "--scaling", str(preset.scaling), "--device", preset.device]  # fmt: skip
                if preset.num_threads:
                    analyze += ["--num-threads", str(preset.num_threads)]
                runs.append(Run(task_name, variant, seed, run_dir, train, analyze))
    return runs


# ---- execution ---------------------------------------------------------------------------
def trained(run_dir: Path) -> bool:
    """The run finished: its ``metrics.json`` is there and recorded by the run."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (run_dir / "metrics.json").is_file() and "metrics.json" in record.get("files", {})


def analysed(run_dir: Path) -> bool:
    folder = run_dir / "analysis"
    try:
        json.loads((folder / "analysis.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (folder / "report.md").is_file()


def state_of(run: Run) -> str:
    if trained(run.dir):
        return "done"
    return "started" if (run.dir / "run.json").is_file() else "new"


def train_argv(run: Run) -> list[str]:
    """The trainer's arguments: resume a started run, else start it."""
    return ["--resume", str(run.dir), "--no-progress"] if state_of(run) == "started" else run.train_argv


def execute(runs: list[Run]) -> list[str]:
    """Train and analyse what is missing, in order; the runs that failed. Ctrl-C (in the trainer:
    its exit 130 after it saved) raises ``KeyboardInterrupt``."""
    from agents import analyze, train_puzzle

    failures = []
    for i, run in enumerate(runs, 1):
        head = f"[{i}/{len(runs)}] {run.label}"
        try:
            state = state_of(run)
            if state == "done":
                print(f"{head}: trained, skipped", flush=True)
            else:
                print(f"{head}: {'resuming' if state == 'started' else 'training'} in {run.dir}", flush=True)
                code = train_puzzle.main(train_argv(run))
                if code == 130:
                    raise KeyboardInterrupt
                if code != 0 or not trained(run.dir):
                    failures.append(f"{run.label}: the trainer exited {code}")
                    continue
            if analysed(run.dir):
                print(f"{head}: analysed, skipped", flush=True)
            else:
                print(f"{head}: analysing", flush=True)
                if analyze.main(run.analyze_argv) != 0:
                    failures.append(f"{run.label}: the analysis failed")
        except Exception as exc:  # one broken run must not lose the others
            print(f"{head}: failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            failures.append(f"{run.label}: {type(exc).__name__}: {exc}")
    return failures


# ---- aggregation -------------------------------------------------------------------------
@dataclass
class Stat:
    """Mean and range over seeds."""

    mean: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Any) -> Stat | None:
        vals = [float(v) for v in values if v is not None]
        return cls(sum(vals) / len(vals), min(vals), max(vals), len(vals)) if vals else None

    def text(self, digits: int = 3) -> str:
        mean = f"{self.mean:,.{digits}f}"
        if self.n == 1 or self.hi - self.lo < 10**-digits:
            return mean
        return f"{mean} [{self.lo:,.{digits}f}, {self.hi:,.{digits}f}]"


def show(stat: Stat | None, digits: int = 3) -> str:
    return "-" if stat is None else stat.text(digits)


def jsonable(value: Any) -> Any:
    """``value`` with every :class:`Stat` as ``{mean, min, max, n}`` (for ``study.json``)."""
    if isinstance(value, Stat):
        return {"mean": value.mean, "min": value.lo, "max": value.hi, "n": value.n}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


@dataclass
class Result:
    """A finished run: its ``metrics.json`` and ``analysis.json`` (None: not analysed)."""

    run: Run
    metrics: dict[str, Any]
    analysis: dict[str, Any] | None

    @property
    def segments(self) -> int:
        return int(self.metrics["model_config"]["halt_max_steps"])

    def test(self, eval_set: str | None, row: str | int, metric: str) -> float | None:
        return self.metrics.get("test", {}).get(eval_set, {}).get(str(row), {}).get(metric)

    def analysed(self, *keys: Any) -> Any:
        node = self.analysis
        for key in keys:
            if node is None:
                return None
            node = node[key] if isinstance(node, list) else node.get(key)
        return node


def load_results(runs: list[Run]) -> dict[str, dict[str, list[Result]]]:
    """task -> variant -> the finished runs (seed order)."""
    out: dict[str, dict[str, list[Result]]] = {}
    for run in runs:
        out.setdefault(run.task, {}).setdefault(run.variant, [])
        if trained(run.dir):
            analysis_file = run.dir / "analysis" / "analysis.json"
            analysis = json.loads(analysis_file.read_text()) if analysed(run.dir) else None
            metrics = json.loads((run.dir / "metrics.json").read_text())
            out[run.task][run.variant].append(Result(run, metrics, analysis))
    return out


def numeric_rows(results: list[Result], eval_set: str) -> list[int]:
    """The plain segment counts every run tested on ``eval_set``."""
    rows = [{int(k) for k in r.metrics.get("test", {}).get(eval_set, {}) if k.isdigit()} for r in results]
    return sorted(set.intersection(*rows)) if rows else []


def summarize(task: Task, results: list[Result]) -> dict[str, Any]:
    """One task x variant: test figures per eval set at the trained and the best segment count,
    participation ratios, analysis scores at 1x and the deepest multiple, parameters, time."""
    metric = task.metric
    sets: dict[str, Any] = {}
    names = results[0].metrics.get("test", {}) if results else {}
    for name in names:
        rows = numeric_rows(results, name)
        means = {row: Stat.of(r.test(name, row, metric) for r in results) for row in rows}
        best = max((row for row in rows if means[row]), key=lambda row: means[row].mean, default=None)
        at_trained = Stat.of(r.test(name, r.segments, metric) for r in results)
        sets[name] = {"trained": at_trained, "best_segments": best, "best": means.get(best), "rows": means}
    scaling = [r.analysed("inference_scaling") or [] for r in results]
    return {
        "runs": len(results),
        "seeds": [r.run.seed for r in results],
        "parameters": Stat.of(r.metrics.get("parameters") for r in results),
        "train_minutes": Stat.of(r.metrics.get("train_seconds", 0) / 60 for r in results),
        "trained_segments": results[0].segments if results else None,
        "sets": sets,
        **{
            f"pr_{key}": Stat.of(r.analysed("participation_ratio", key) for r in results)
            for key in ("H", "L", "ratio", "untrained_ratio")
        },  # fmt: skip
        "scaling_1x": Stat.of(rows[0].get(metric) for rows in scaling if rows),
        "scaling_max": Stat.of(rows[-1].get(metric) for rows in scaling if rows),
        "scaling_max_segments": scaling[0][-1]["segments"] if scaling and scaling[0] else None,
    }


# ---- the claims --------------------------------------------------------------------------
CLAIMS = {
    "a": "PR_H/PR_L is near 3 after training and near 1 untrained (HRM paper: a dimensionality hierarchy)",
    "b": "inference-time scaling: more segments at test time than trained help",
    "c": "the outer refinement loop matters more than the H/L hierarchy (ARC Prize analysis of HRM)",
    "d": "full backpropagation through the last recursion beats the 1-step gradient (TRM)",
    "e": "the HRM fails some Sudoku boards with a single blank (Ren & Liu)",
}


def gain_verdict(diffs: list[float], margin: float) -> str:
    """Paired differences over seeds: confirmed when their mean exceeds ``margin`` and every one is positive."""
    if not diffs:
        return "not measured"
    return "confirmed" if sum(diffs) / len(diffs) > margin and min(diffs) > 0 else "not confirmed"


def paired(a: list[Result], b: list[Result], fa: Any, fb: Any = None) -> list[float]:
    """``fa(run of a) - fb(run of b)`` for every seed both have (None values dropped)."""
    fb = fb or fa
    by_seed = {r.run.seed: r for r in b}
    pairs = [(fa(r), fb(by_seed[r.run.seed])) for r in a if r.run.seed in by_seed]
    return [x - y for x, y in pairs if x is not None and y is not None]


def claim_a(study: Study, task: Task, res: dict[str, list[Result]]) -> tuple[str, str]:
    ref = study.claims.get("reference")
    runs = [r for r in res.get(ref, []) if r.analysis]
    ratio = Stat.of(r.analysed("participation_ratio", "ratio") for r in runs)
    untrained = Stat.of(r.analysed("participation_ratio", "untrained_ratio") for r in runs)
    if ratio is None or untrained is None:
        return "not measured", f"no analysed run of {ref}"
    ok = ratio.mean >= PR_THRESHOLD > untrained.mean
    others = [f"{v} {show(Stat.of(r.analysed('participation_ratio', 'ratio') for r in rs), 2)}"
              for v, rs in res.items() if v != ref and rs and rs[0].metrics.get("model") == "hrm"]  # fmt: skip
    text = (f"{ref}: PR_H/PR_L {show(ratio, 2)} trained, {show(untrained, 2)} untrained (PR_H {show(Stat.of(r.analysed('participation_ratio', 'H') for r in runs), 1)}, "
            f"PR_L {show(Stat.of(r.analysed('participation_ratio', 'L') for r in runs), 1)}); confirmed when trained >= {PR_THRESHOLD:g} > untrained"
            + (f". Other HRM variants, trained: {', '.join(others)}" if others else ""))  # fmt: skip
    return ("confirmed" if ok else "not confirmed"), text


def scaling_gain(runs: list[Result], name: str | None, metric: str) -> tuple[int, list[float]]:
    """``(deepest segment count tested on set name, its gain over the trained count per seed)``;
    ``(0, [])`` when the set was not tested beyond the trained segments."""
    rows = numeric_rows(runs, name) if runs and name else []
    if not rows or max(rows) <= runs[0].segments:
        return 0, []
    top = max(rows)
    return top, paired(runs, runs, lambda r: r.test(name, top, metric), lambda r: r.test(name, r.segments, metric))


def claim_b(study: Study, task: Task, res: dict[str, list[Result]]) -> tuple[str, str]:
    ref, name, metric = study.claims.get("reference"), task.scaling_set, task.metric
    runs = res.get(ref, [])
    top, diffs = scaling_gain(runs, name, metric)
    if not top:
        return "not measured", f"no {ref} run tested on {name or 'a scaling set'} beyond its trained segments"
    t = runs[0].segments
    others = []
    for variant, rs in res.items():
        deepest, gains = scaling_gain(rs, name, metric)
        if variant != ref and deepest:
            others.append(f"{variant} {show(Stat.of(gains))} ({rs[0].segments} -> {deepest})")
    depth = runs[0].analysed("inference_scaling", -1)
    text = (f"{ref} on {name}, {metric} at the trained {t} segments {show(Stat.of(r.test(name, t, metric) for r in runs))}, "
            f"at {top} segments {show(Stat.of(r.test(name, top, metric) for r in runs))} (gain {show(Stat.of(diffs))})")  # fmt: skip
    if depth:
        first, deepest = (
            Stat.of((r.analysed("inference_scaling", i) or {}).get(metric) for r in runs) for i in (0, -1)
        )
        text += f"; the analysis (fresh puzzles of the first eval set): 1x {show(first)}, {depth['multiple']}x {show(deepest)}"
    if others:
        text += f". Gains of the others: {', '.join(others)}"
    return gain_verdict(diffs, study.margin), text


def claim_c(study: Study, task: Task, res: dict[str, list[Result]]) -> tuple[str, str]:
    hrm = [r for r in res.get(study.claims.get("hierarchy"), []) if r.analysis]
    controls = {c: [r for r in res.get(c, []) if r.analysis] for c in study.claims.get("controls", [])}
    controls = {c: rs for c, rs in controls.items() if rs}
    if not hrm or not controls:
        return "not measured", "needs an analysed HRM run and one-level controls (gru, deepthinking) on this task"
    metric, name = task.metric, study.claims["hierarchy"]

    def last(r: Result) -> float | None:
        return (r.analysed("per_segment", -1) or {}).get(metric)

    def first(r: Result) -> float | None:
        return (r.analysed("per_segment", 0) or {}).get(metric)

    best = max(controls, key=lambda c: getattr(Stat.of(last(r) for r in controls[c]), "mean", -1.0))
    outer = {r.run.seed: last(r) - first(r) for r in hrm if last(r) is not None and first(r) is not None}
    by_seed = {r.run.seed: r for r in controls[best]}
    hierarchy = {r.run.seed: last(r) - last(by_seed[r.run.seed]) for r in hrm
                 if r.run.seed in by_seed and last(r) is not None and last(by_seed[r.run.seed]) is not None}  # fmt: skip
    diffs = [outer[s] - hierarchy[s] for s in outer if s in hierarchy]
    flat = study.claims.get("no_recurrence")
    context = ""
    if res.get(flat) and any(r.analysis for r in res[flat]):
        context = f"; without recurrence ({flat}) {show(Stat.of(last(r) for r in res[flat] if r.analysis))}"
    text = (f"Outer loop: {name} after 1 segment {show(Stat.of(first(r) for r in hrm))}, after {hrm[0].segments} "
            f"{show(Stat.of(last(r) for r in hrm))} (gain {show(Stat.of(outer.values()))}). Hierarchy: {name} against "
            f"the best one-level control, {best} ({show(Stat.of(last(r) for r in controls[best]))}, the same segments "
            f"and low-level steps a segment): gain {show(Stat.of(hierarchy.values()))}{context}. Scores: the "
            f"analysis's {metric} on its fresh puzzles, one set for every run; confirmed when the outer-loop gain "
            f"exceeds the hierarchy's by more than {study.margin:g}")  # fmt: skip
    return gain_verdict(diffs, study.margin), text


def claim_d(study: Study, task: Task, res: dict[str, list[Result]], key: str) -> tuple[str, str]:
    ref, other, name = study.claims.get("reference"), study.claims.get(key), task.main_set
    a, b = res.get(other, []), res.get(ref, [])
    if not a or not b or not name:
        return "not measured", f"needs finished runs of {other or f'claims.{key}'} and {ref}, and a main_set"

    def score(r: Result) -> float | None:
        return r.test(name, r.segments, task.metric)

    diffs = paired(a, b, score)
    text = (f"{other} ({study.variants[other].description}) against {ref}: {task.metric} on {name} at the trained "
            f"segments {show(Stat.of(score(r) for r in a))} against {show(Stat.of(score(r) for r in b))} "
            f"(difference {show(Stat.of(diffs))})")  # fmt: skip
    return gain_verdict(diffs, study.margin), text


def claim_e(study: Study, task: Task, res: dict[str, list[Result]]) -> tuple[str, str]:
    ref, name = study.claims.get("reference"), task.one_blank_set
    runs = [r for r in res.get(ref, []) if r.test(name, r.segments, "exact_accuracy") is not None]
    if not runs:
        return "not measured", f"no {ref} run tested on boards with one blank ({name})"

    def failed(r: Result) -> int:
        row = r.metrics["test"][name][str(r.segments)]
        return round((1 - row["exact_accuracy"]) * row["n"])

    n = runs[0].metrics["test"][name][str(runs[0].segments)]["n"]
    others = [f"{v} {', '.join(str(failed(r)) for r in rs)}" for v, rs in res.items() if v != ref and rs
              and rs[0].metrics.get("model") == "hrm" and rs[0].test(name, rs[0].segments, "exact_accuracy") is not None]  # fmt: skip
    text = (f"{ref} fails {', '.join(str(failed(r)) for r in runs)} of {n} boards with exactly one empty cell "
            f"({name}, at the trained {runs[0].segments} segments; one number a seed)"
            + (f"; other HRM variants: {'; '.join(others)}" if others else ""))  # fmt: skip
    return ("confirmed" if any(failed(r) > 0 for r in runs) else "not confirmed"), text


def check_claims(study: Study, results: dict[str, dict[str, list[Result]]]) -> list[dict[str, str]]:
    """Every claim on every task where it applies: ``{claim, title, task, verdict, text}``."""
    rows = []
    for task_name, res in results.items():
        task = study.tasks[task_name]
        checks = [("a", claim_a(study, task, res)), ("b", claim_b(study, task, res)),
                  ("c", claim_c(study, task, res)),
                  ("d", claim_d(study, task, res, "full_backprop")), ("d", claim_d(study, task, res, "two_step"))]  # fmt: skip
        if task.one_blank_set:
            checks.append(("e", claim_e(study, task, res)))
        rows += [{"claim": c, "title": CLAIMS[c], "task": task_name, "verdict": v, "text": t} for c, (v, t) in checks]
    if not any(row["claim"] == "e" for row in rows):
        rows.append({"claim": "e", "title": CLAIMS["e"], "task": "sudoku", "verdict": "not measured",
                     "text": "no task of this preset has a one_blank_set (sudoku eval set {n_empty: 1})"})  # fmt: skip
    return rows


# ---- the report --------------------------------------------------------------------------
def copy_figures(study: Study, results: dict[str, dict[str, list[Result]]], report: Path) -> list[str]:
    """The key PNGs of the ``figures`` variants (lowest seed) copied to ``<report dir>/study/``;
    their paths relative to the report."""
    folder, copied = report.parent / "study", []
    for task, res in results.items():
        for variant in study.figures:
            runs = [r for r in res.get(variant, []) if r.analysis]
            for name in FIGURES if runs else ():
                source = runs[0].run.dir / "analysis" / f"{name}.png"
                if source.is_file():
                    folder.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, folder / f"{task}-{variant}-{name}.png")
                    copied.append(f"study/{task}-{variant}-{name}.png")
    return copied


def task_table(study: Study, task: Task, summary: dict[str, dict[str, Any]]) -> list[str]:
    sets = next((list(s["sets"]) for s in summary.values() if s["sets"]), [])
    head = ["variant", "runs", "params", *[f"{s}: trained / best (segments)" for s in sets],
            "PR_H/PR_L (untrained)", "analysis 1x / deepest", "train min"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, s in summary.items():
        cells = [variant, str(s["runs"]), show(s["parameters"], 0)]
        for name in sets:
            entry = s["sets"].get(name)
            cells.append(
                f"{show(entry['trained'])} / {show(entry['best'])} ({entry['best_segments']})" if entry else "-"
            )
        cells.append(f"{show(s['pr_ratio'], 2)} ({show(s['pr_untrained_ratio'], 2)})")
        depth = f" ({s['scaling_max_segments']} seg)" if s["scaling_max_segments"] else ""
        cells.append(f"{show(s['scaling_1x'])} / {show(s['scaling_max'])}{depth}")
        cells.append(show(s["train_minutes"], 1))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(
    study: Study, preset: Preset, command: str, summary: dict[str, Any], claims: list[dict[str, str]],
    results: dict[str, dict[str, list[Result]]], report: Path, machine: dict[str, Any], failures: list[str],
) -> None:  # fmt: skip
    done = sum(len(rs) for res in results.values() for rs in res.values())
    planned = sum(len(res) for res in results.values()) * len(preset.seeds)
    budget = "; ".join(f"{t} {p.max_batches:,} batches (its config: {config_batches(study.tasks[t]):,})"
                       for t, p in preset.tasks.items())  # fmt: skip
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
    lines = [
        f"# HRM study: preset `{preset.name}`", "",
        f"Written {datetime.now():%Y-%m-%d %H:%M} by `{command}`. Seeds {preset.seeds}; the same sample budget for "
        f"every run of a task ({budget}); analysis on {preset.analysis_n} fresh puzzles, test-time segments up to "
        f"{preset.scaling}x. Machine: {machine['cpu']} ({machine['cores']} cores), device {machine['device']}{gpu}, "
        f"torch {machine['torch']}. Runs done: {done} of {planned} planned. Below its config's budget a run is "
        "far from trained: the verdicts say what holds at the budget shown.", "",
        "Scores: the task's metric (maze: a valid shortest path; Sudoku: the exact solution) on the test sets; "
        "`a [lo, hi]` is the mean over seeds and their range. *Best* is the test-time segment count with the best mean, "
        "picked on the test set itself (optimistic). *Analysis*: the score after 1x and the deepest multiple of the "
        "trained segments on the analysis's fresh puzzles (docs/analysis.md).", "",
        "## Variants", "",
    ]  # fmt: skip
    used = {v for p in preset.tasks.values() for v in p.variants}
    for v in (v for v in study.variants.values() if v.name in used):
        sets = ", ".join(f"{k}={set_value(x)}" for k, x in v.overrides.items())
        lines.append(f"- **{v.name}**: {v.description} (`{sets}`)")
    for task_name, by_variant in summary.items():
        task = study.tasks[task_name]
        lines += ["", f"## {task_name}", "", f"Config `{os.path.relpath(task.config, ROOT)}`, metric `{task.metric}`, "
                  f"{preset.tasks[task_name].max_batches:,} batches a run.", ""]  # fmt: skip
        lines += task_table(study, task, by_variant)
    figures = copy_figures(study, results, report)
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    lines += ["", "## Claims", "", "Each verdict is computed from the numbers beside it: `confirmed`, "
              f"`not confirmed` or `not measured`. A gain counts when its mean over seeds exceeds {study.margin:g} "
              "and every seed gains.", ""]  # fmt: skip
    for key, title in CLAIMS.items():
        lines += [f"### ({key}) {title}", ""]
        lines += [f"- {row['task']}: **{row['verdict']}**. {row['text']}." for row in claims if row["claim"] == key]
        lines.append("")
    runs = [r for res in results.values() for rs in res.values() for r in rs if r.analysis]
    if runs:
        lines += ["## Runs", "", "Each run's analysis report (in the study's folder, which holds the runs):", ""]
        lines += [f"- `{os.path.relpath(r.run.dir / 'analysis' / 'report.md', ROOT)}`" for r in runs]
    if failures:
        lines += ["", "## Failed runs", ""] + [f"- {f}" for f in failures]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines).rstrip() + "\n")


def config_batches(task: Task) -> int:
    """The sample budget (``max_batches``) of a task's own config."""
    from agents.train_puzzle import PuzzleTrainConfig

    return load_config(PuzzleTrainConfig, task.config).max_batches


# ---- the command -------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser("agents.study", __doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="study config (default configs/study.yaml)")
    parser.add_argument("--preset", default="quick", help="a preset of the config (quick, full)")
    parser.add_argument("--out", default=None, help="the study's folder (default: the config's out-<preset>)")
    parser.add_argument("--only", nargs="+", default=None, metavar="VARIANT", help="train only these variants")
    parser.add_argument("--report", default=None, help="the report (default: the config's, docs/study.md)")
    parser.add_argument("--dry-run", action="store_true", help="print the planned runs and commands, run nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
        study = load_study(args.config)
        preset = resolve_preset(study, args.preset)
        only = [pick(name, study.variants, "variant") for name in args.only or []]
        out = Path(args.out or f"{study.out}-{preset.name}")
        runs = plan(study, preset, out, only)
        if not runs:
            raise ConfigError(f"preset {preset.name} trains none of --only {' '.join(only)}")
        everything = plan(study, preset, out) if only else runs
    except (ConfigError, ValueError, OSError) as exc:
        return fail(exc)
    if args.dry_run:
        for i, run in enumerate(runs, 1):
            print(f"[{i}/{len(runs)}] {run.label} ({state_of(run)})")
            print(f"    python -m agents.train_puzzle {shlex.join(train_argv(run))}")
            print(f"    python -m agents.analyze {shlex.join(run.analyze_argv)}")
        return 0
    try:
        failures = execute(runs)
    except KeyboardInterrupt:
        print(f"\nstudy interrupted: run the same command again to continue "
              f"(python -m agents.study {shlex.join(argv)})", file=sys.stderr)  # fmt: skip
        return 130
    from agents.common.machine import machine_facts, resolve_device

    results = load_results(everything)
    summary = {t: {v: summarize(study.tasks[t], rs) for v, rs in res.items()} for t, res in results.items()}
    claims = check_claims(study, results)
    command = f"python -m agents.study {shlex.join(argv)}"
    machine = machine_facts(resolve_device(preset.device))
    report = Path(args.report or study.report)
    write_report(study, preset, command, summary, claims, results, report, machine, failures)
    record = {"preset": preset.name, "command": command, "machine": machine, "out": str(out),
              "runs": [{"task": r.task, "variant": r.variant, "seed": r.seed, "dir": str(r.dir),
                        "state": state_of(r)} for r in everything],
              "summary": jsonable(summary), "claims": claims, "failures": failures}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {out / 'study.json'} and {report}" + (f"; {len(failures)} run(s) failed" if failures else ""))
    for row in claims:
        print(f"({row['claim']}) {row['task']}: {row['verdict']}")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
