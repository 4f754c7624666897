"""agents.study: the plan, a tiny maze study end to end (interrupted, resumed, re-run without
retraining), the report and its computed verdicts, and one-line errors for bad names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from agents import study, train_puzzle

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAZE_CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "maze_hrm.yaml")
TINY = {
    "hrm.hidden_size": 16, "hrm.num_heads": 2, "hrm.expansion": 1.0, "hrm.mlp_multiple": 16, "hrm.H_cycles": 2,
    "hrm.L_cycles": 2, "hrm.forward_dtype": "float32", "segments": 2, "batch_size": 4, "eval_every": 1000,
    "warmup_steps": 2, "task_params.sizes": [7],
    "eval_sets": [{"name": "m7", "params": {"sizes": [7]}, "n": 4, "val_n": 4, "segments": [2, 4]}],
}  # fmt: skip


def tiny_config(root: Path, **changes) -> Path:
    """A study config of the maze task, variants hrm and gru, a preset of 2 batches a run."""
    config = {
        "margin": 0.02,
        "tasks": {"maze": {"config": MAZE_CONFIG, "metric": "valid_rate", "main_set": "m7", "scaling_set": "m7"}},
        "claims": {"reference": "hrm", "hierarchy": "hrm", "controls": ["gru"]},
        "figures": ["hrm"],
        "variants": [
            {"name": "hrm", "description": "1-step HRM", "overrides": {"hrm.backprop": "one_step"}},
            {"name": "gru", "description": "one level", "overrides": {"model": "gru"}},
        ],
        "presets": {
            "tiny": {
                "seeds": [0], "device": "cpu", "num_threads": 1, "analysis": {"n": 4, "scaling": 2},
                "tasks": {"maze": {"max_batches": 2, "variants": ["hrm", "gru"],
                                   "overrides": {**TINY, "data_dir": str(root / "data")}}},
            }
        },
    }  # fmt: skip
    config.update(changes)
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def argv(root: Path, *extra: str) -> list[str]:
    return ["--config", str(root / "study.yaml"), "--preset", "tiny", "--out", str(root / "out"),
            "--report", str(root / "docs" / "study.md"), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """The tiny study, Ctrl-C'd in the test of its first run, then run again to its end."""
    root = tmp_path_factory.mktemp("study")
    tiny_config(root)
    with pytest.MonkeyPatch.context() as patch:

        def interrupted(ctx):
            raise KeyboardInterrupt

        patch.setattr(train_puzzle, "test_best", interrupted)
        assert study.main(argv(root)) == 130
    hrm = root / "out" / "maze" / "hrm" / "seed0"
    assert (hrm / "run.json").is_file() and (hrm / "last.pt").is_file() and not (hrm / "metrics.json").exists()
    assert not (root / "out" / "maze" / "gru").exists()
    config = study.load_study(root / "study.yaml")
    first = study.plan(config, study.resolve_preset(config, "tiny"), root / "out")[0]
    assert study.state_of(first) == "started" and study.train_argv(first) == ["--resume", str(hrm), "--no-progress"]
    assert study.main(argv(root)) == 0  # a new run could not start there: the trainer refuses a folder with a run
    return root


def test_the_plan_and_its_commands(tmp_path, capsys):
    tiny_config(tmp_path)
    assert study.main(argv(tmp_path, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert re.findall(r"^\[(\d/\d)\] (\S+) \((\w+)\)$", out, re.M) == [
        ("1/2", "maze/hrm/seed0", "new"),
        ("2/2", "maze/gru/seed0", "new"),
    ]
    assert out.count("--set max_batches=2 --set seed=0 --set device=cpu --set num_threads=1") == 2
    assert "--set hrm.backprop=one_step" in out and "--set model=gru" in out and "--scaling 2" in out
    assert not (tmp_path / "out").exists()
    assert study.main(argv(tmp_path, "--dry-run", "--only", "gru")) == 0
    assert re.findall(r"^\[\d/\d\] (\S+)", capsys.readouterr().out, re.M) == ["maze/gru/seed0"]


def test_the_shipped_presets_give_every_run_of_a_task_one_budget(tmp_path, capsys):
    config = study.load_study(study.DEFAULT_CONFIG)
    for name, seeds in (("quick", 1), ("full", 3)):
        preset = study.resolve_preset(config, name)
        runs = study.plan(config, preset, tmp_path / name)
        assert {run.task for run in runs} == {"maze", "sudoku"} and len(preset.seeds) == seeds
        for task in ("maze", "sudoku"):
            budgets = {a for run in runs if run.task == task for a in run.train_argv if a.startswith("max_batches=")}
            assert len(budgets) == 1
    assert "deepthinking" not in study.resolve_preset(config, "full").tasks["sudoku"].variants


def test_the_study_resumes_the_interrupted_run_and_reports(done):
    hrm, gru = (done / "out" / "maze" / name / "seed0" for name in ("hrm", "gru"))
    metrics = json.loads((hrm / "metrics.json").read_text())
    assert metrics["batches"] == metrics["max_batches"] == 2  # resumed in its test, not retrained
    assert (gru / "analysis" / "analysis.json").is_file() and (hrm / "analysis" / "report.md").is_file()
    record = json.loads((done / "out" / "study.json").read_text())
    assert record["preset"] == "tiny" and [r["state"] for r in record["runs"]] == ["done", "done"]
    summary = record["summary"]["maze"]
    assert summary["hrm"]["runs"] == 1 and summary["hrm"]["sets"]["m7"]["rows"].keys() == {"2", "4"}
    assert summary["gru"]["parameters"]["mean"] == json.loads((gru / "metrics.json").read_text())["parameters"]
    report = (done / "docs" / "study.md").read_text()
    assert "preset `tiny`" in report and "## maze" in report and "## Claims" in report
    assert re.search(r"^\| hrm \| 1 \|", report, re.M) and re.search(r"^\| gru \| 1 \|", report, re.M)
    verdicts = re.findall(r"^- \w+: \*\*(.+?)\*\*", report, re.M)
    assert verdicts and set(verdicts) <= set(study.VERDICTS)
    assert {row["verdict"] for row in record["claims"]} <= set(study.VERDICTS)
    assert {row["claim"] for row in record["claims"]} == set(study.CLAIMS)
    by_claim = {row["claim"]: row["verdict"] for row in record["claims"] if row["task"] == "maze"}
    assert by_claim["d"] == "not measured" and by_claim["a"] != "not measured" and by_claim["c"] != "not measured"
    for figure in study.FIGURES:
        assert (done / "docs" / "study" / f"maze-hrm-{figure}.png").is_file()
        assert f"](study/maze-hrm-{figure}.png)" in report


def test_a_second_invocation_retrains_nothing(done, capsys):
    files = [
        done / "out" / "maze" / v / "seed0" / f for v in ("hrm", "gru") for f in ("model.pt", "analysis/analysis.json")
    ]
    before = [path.stat().st_mtime_ns for path in files]
    assert study.main(argv(done)) == 0
    assert [path.stat().st_mtime_ns for path in files] == before
    out = capsys.readouterr().out
    assert out.count("trained, skipped") == 2 and out.count("analysed, skipped") == 2


def test_verdicts_are_computed_from_paired_gains():
    assert study.gain_verdict([], 0.02) == "not measured"
    assert study.gain_verdict([0.05, 0.04], 0.02) == "confirmed"
    assert study.gain_verdict([0.09, -0.01], 0.02) == "not confirmed"  # one seed loses
    assert study.gain_verdict([0.01], 0.02) == "not confirmed"  # within the margin


def fake(variant: str, seed: int, score: float, pr: float = 1.0, one_blank: float = 1.0) -> study.Result:
    """A finished Sudoku run of 8 trained segments whose figures are ``score`` (+0.1 at 32 test-time
    segments; after one segment 0.2), participation ratio ``pr``, ``one_blank`` on one-blank boards."""
    test = {"moderate": {"8": {"exact_accuracy": score, "n": 100}, "32": {"exact_accuracy": score + 0.1, "n": 100}},
            "empty1": {"8": {"exact_accuracy": one_blank, "n": 200}}}  # fmt: skip
    metrics = {"model": "gru" if variant == "gru" else "hrm", "model_config": {"halt_max_steps": 8}, "test": test,
               "parameters": 1000 + seed, "train_seconds": 60.0}  # fmt: skip
    analysis = {
        "participation_ratio": {"ratio": pr, "untrained_ratio": 1.1, "H": 3.0 * pr, "L": 3.0},
        "per_segment": [{"segment": 1, "exact_accuracy": 0.2}, {"segment": 8, "exact_accuracy": score}],
        "inference_scaling": [{"segments": 8, "multiple": 1, "exact_accuracy": score},
                              {"segments": 64, "multiple": 8, "exact_accuracy": score + 0.05}],
    }  # fmt: skip
    return study.Result(study.Run("sudoku", variant, seed, Path("."), [], []), metrics, analysis)


def test_claims_from_the_numbers_of_two_seeds(tmp_path):
    config = {
        "tasks": {"sudoku": {"config": MAZE_CONFIG.replace("maze_hrm", "sudoku_hrm"), "metric": "exact_accuracy",
                             "main_set": "moderate", "scaling_set": "moderate", "one_blank_set": "empty1"}},
        "claims": {"reference": "hrm", "full_backprop": "hrm_full", "two_step": "hrm_full", "hierarchy": "hrm_full",
                   "controls": ["gru"]},
        "variants": [{"name": name, "description": name} for name in ("hrm", "hrm_full", "gru")],
        "presets": {},
    }  # fmt: skip
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    config = study.load_study(tmp_path / "study.yaml")
    results = {"sudoku": {
        "hrm": [fake("hrm", 0, 0.50, pr=2.9, one_blank=0.99), fake("hrm", 1, 0.52, pr=3.1)],
        "hrm_full": [fake("hrm_full", 0, 0.70), fake("hrm_full", 1, 0.51)],
        "gru": [fake("gru", 0, 0.60), fake("gru", 1, 0.40)],
    }}  # fmt: skip
    rows = study.check_claims(config, results)
    verdicts = {row["claim"]: row["verdict"] for row in rows}
    assert verdicts == {"a": "confirmed", "b": "confirmed", "c": "confirmed", "d": "not confirmed", "e": "confirmed"}
    text = {row["claim"]: row["text"] for row in rows}
    assert "PR_H/PR_L 3.00 [2.90, 3.10] trained, 1.10 untrained" in text["a"]
    assert "at 32 segments 0.610 [0.600, 0.620] (gain 0.100)" in text["b"]
    assert "fails 2, 0 of 200 boards" in text["e"]
    assert "0.605 [0.510, 0.700] against 0.510 [0.500, 0.520] (difference 0.095 [-0.010, 0.200])" in text["d"]
    results["sudoku"]["hrm"][0] = fake("hrm", 0, 0.50, pr=0.8)  # a mean below 2; every board solved
    verdicts = {row["claim"]: row["verdict"] for row in study.check_claims(config, results)}
    assert verdicts["a"] == "not confirmed" and verdicts["e"] == "not confirmed"
    summary = study.summarize(config.tasks["sudoku"], results["sudoku"]["hrm_full"])
    assert summary["sets"]["moderate"]["best_segments"] == 32 and summary["sets"]["moderate"]["trained"].mean == 0.605
    table = study.task_table(config, config.tasks["sudoku"], {"hrm_full": summary})
    assert table[2].startswith(
        "| hrm_full | 2 | 1,000 [1,000, 1,001] | 0.605 [0.510, 0.700] / 0.705 [0.610, 0.800] (32) |"
    )


@pytest.mark.parametrize(
    "extra, changes, message",
    [
        (["--preset", "nope"], {}, "unknown preset 'nope'; allowed: tiny"),
        (["--only", "lstm"], {}, "unknown variant 'lstm'; allowed: hrm, gru"),
        ([], {"variants": [{"name": "hrm", "overrides": {"max_batches": 9}}]}, "sets max_batches: the study sets"),
        ([], {"tasks": {"maze": {"config": MAZE_CONFIG, "metric": "score"}}}, "unknown metric of task maze 'score'"),
    ],
)
def test_bad_names_are_one_line_errors(tmp_path, capsys, extra, changes, message):
    tiny_config(tmp_path, **changes)
    assert study.main(argv(tmp_path, *extra)) == 2  # a second --preset wins
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
