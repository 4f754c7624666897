"""HRM-ACT-v1 model: config checks, shapes and dtypes, the 1-step gradient, halting, carry reset,
determinism, positions and patches, the reasoning trace, and a tiny model learning a task."""

from __future__ import annotations

import time

import pytest
import torch

from agents.hrm import ACTLossHead, HRMACTv1, HRMACTv1Config, deep_supervision_pass
from agents.hrm.layers import Attention, TokenLayout, rotary_2d, sudoku_peer_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = dict(
    vocab_size=6,
    grid_height=4,
    grid_width=4,
    hidden_size=16,
    num_heads=2,
    expansion=2.0,
    mlp_multiple=16,
    H_layers=1,
    L_layers=1,
    H_cycles=2,
    L_cycles=2,
    halt_max_steps=3,
)


def tiny(**overrides) -> HRMACTv1:
    torch.manual_seed(0)
    return HRMACTv1({**TINY, **overrides})


def grid_batch(n: int = 5, seed: int = 0, cells: int = 16, vocab: int = 6) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(0, vocab, (n, cells), generator=g)}


def with_one_agent(batch: dict, cell: int = 5) -> dict:
    """Exactly one agent cell (code 2) per row, as the grid envs show it."""
    inputs = batch["inputs"]
    inputs[inputs == 2] = 0
    inputs[:, cell] = 2
    return batch


def set_q(model: HRMACTv1, halt: float, cont: float) -> None:
    """Make the Q head constant: the model then always (or never) wants to halt."""
    with torch.no_grad():
        model.q_head.weight.zero_()
        model.q_head.bias.copy_(torch.tensor([halt, cont]))


# ---------------------------------------------------------------------------- config
def test_config_rejects_unknown_keys_listing_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown HRM config key.*hiden_size.*allowed keys"):
        HRMACTv1Config.from_dict({**TINY, "hiden_size": 8})
    with pytest.raises(ValueError, match="allowed keys: .*'hidden_size'"):
        HRMACTv1({**TINY, "Hcycles": 2})


def test_config_reads_a_removed_key_only_at_its_off_value():
    # Checkpoints written while inert_token existed hold "inert_token": null; they still load.
    assert HRMACTv1Config.from_dict({**TINY, "inert_token": None}) == HRMACTv1Config.from_dict(TINY)
    with pytest.raises(ValueError, match=r"unknown HRM config key\(s\) \['inert_token'\]"):
        HRMACTv1Config.from_dict({**TINY, "inert_token": 1})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("hidden_size", 0, "hidden_size=0 must be an integer >= 1"),
        ("halt_exploration_prob", 1.5, r"halt_exploration_prob=1.5 must be a number >= 0.0"),
        ("block", "mlp", r"block='mlp' must be one of \['attention', 'conv', 'hybrid'\]"),
        ("num_heads", 3, "must be divisible by num_heads=3"),
        ("patch_size", 0, "patch_size=0 must be an integer >= 1"),
        ("H_cycles", True, "H_cycles=True must be an integer"),
        ("forward_dtype", "fp8", "forward_dtype='fp8' must be one of"),
        ("seq_len", 15, "seq_len=15 does not match the grid 4x4=16"),
        ("conv_kernel", 2, "conv_kernel=2 must be odd"),
    ],
)
def test_config_rejects_out_of_range_values(key, value, message):
    with pytest.raises(ValueError, match=message):
        HRMACTv1Config.from_dict({**TINY, key: value})


def test_config_needs_a_sequence_length_or_grid_and_grid_for_conv():
    with pytest.raises(ValueError, match="seq_len is required"):
        HRMACTv1Config(vocab_size=5)
    with pytest.raises(ValueError, match="block='conv' needs a grid"):
        HRMACTv1Config(vocab_size=5, seq_len=8, block="conv", num_heads=2, hidden_size=16)
    with pytest.raises(ValueError, match="vocab_size is required"):
        HRMACTv1Config(seq_len=8)


def test_config_round_trips_and_presets():
    cfg = HRMACTv1Config.from_dict(TINY)
    assert HRMACTv1Config.from_dict(cfg.to_dict()) == cfg
    assert cfg.seq_len == 16 and cfg.vocab_out == 6 and cfg.q_source == "first"
    assert cfg.replace(hidden_size=32).hidden_size == 32
    paper = HRMACTv1Config.preset("paper", vocab_size=11, seq_len=81)
    assert (paper.hidden_size, paper.num_heads, paper.H_layers, paper.L_layers) == (512, 8, 4, 4)
    assert (paper.expansion, paper.halt_max_steps) == (4.0, 16)
    cpu = HRMACTv1Config.preset("cpu_grid16")
    assert (cpu.grid_height, cpu.grid_width, cpu.head, cpu.n_actions) == (16, 16, "action", 4)
    with pytest.raises(ValueError, match="unknown HRM preset 'gpu'.*cpu_grid16"):
        HRMACTv1Config.preset("gpu")
    with pytest.raises(ValueError, match="unknown HRM config key"):
        HRMACTv1Config.preset("cpu_grid16", hidden=3)


# ---------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("block", ["attention", "conv", "hybrid"])
def test_sequence_head_shapes_and_dtypes(block):
    model = tiny(block=block)
    batch = grid_batch()
    carry = model.initial_carry(batch)
    assert carry.halted.dtype == torch.bool and bool(carry.halted.all())
    carry, out = model(carry, batch)
    assert out["logits"].shape == (5, 16, 6) and out["logits"].dtype == torch.float32
    assert out["q_halt_logits"].shape == (5,) and out["q_halt_logits"].dtype == torch.float32
    assert out["q_continue_logits"].shape == (5,)
    assert out["target_q_continue"].shape == (5,)  # training mode by default
    assert carry.steps.dtype == torch.int32 and carry.steps.tolist() == [1] * 5
    assert carry.inner_carry.z_H.shape == (5, 16, 16)
    assert not carry.inner_carry.z_H.requires_grad
    model.eval()
    _, out = model(model.initial_carry(batch), batch)
    assert "target_q_continue" not in out


@pytest.mark.parametrize(
    ("pool", "patch", "tokens"), [("cls", 1, 17), ("mean", 2, 4), ("first", 1, 16), ("agent", 2, 4)]
)
def test_action_head_shapes(pool, patch, tokens):
    model = tiny(
        head="action", n_actions=4, pool=pool, patch_size=patch, value_head=True, aux_vocab_out=3, block="hybrid"
    )
    batch = with_one_agent(grid_batch())  # pool="agent" reads the agent's token
    carry, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (5, 4)
    assert out["features"].shape == (5, 16)
    assert out["value"].shape == (5,) and out["value"].dtype == torch.float32
    assert out["aux_logits"].shape == (5, 16, 3)
    assert carry.inner_carry.z_H.shape == (5, tokens, 16)


def test_cpu_preset_gives_foraging_action_logits():
    torch.manual_seed(0)
    model = HRMACTv1(HRMACTv1Config.preset("cpu_grid16"))
    batch = with_one_agent(grid_batch(3, cells=256), cell=37)
    _, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (3, 4)


def test_paper_preset_builds_and_runs_one_segment_on_cpu():
    torch.manual_seed(0)
    model = HRMACTv1(HRMACTv1Config.preset("paper", vocab_size=11, grid_height=9, grid_width=9, H_cycles=1, L_cycles=1))
    assert model.L_level.layers[0].mlp.down_proj.weight.shape == (512, 1536)
    model.eval()
    batch = grid_batch(1, cells=81, vocab=11)
    with torch.no_grad():
        _, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (1, 81, 11)


def test_bad_inputs_fail_clearly():
    model = tiny()
    with pytest.raises(ValueError, match="integer token ids"):
        model.initial_carry({"inputs": torch.zeros(2, 16)})
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, vocab_size=6\)"):
        model.initial_carry({"inputs": torch.full((2, 16), 6)})
    with pytest.raises(ValueError, match="has 15 tokens per row; this model reads 4x4=16"):
        model.initial_carry({"inputs": torch.zeros(2, 15, dtype=torch.long)})
    with pytest.raises(ValueError, match="at least one row"):
        model.reason({"inputs": torch.zeros(0, 16, dtype=torch.long)})
    agent = tiny(head="action", pool="agent")
    batch = {"inputs": torch.zeros(2, 16, dtype=torch.long)}
    with pytest.raises(ValueError, match="exactly one agent cell"):
        agent(agent.initial_carry(batch), batch)
    batch["inputs"][:, :2] = 2
    with pytest.raises(ValueError, match="exactly one agent cell"):
        agent(agent.initial_carry(batch), batch)


def test_forward_dtype_bfloat16_falls_back_to_float32_on_a_cpu_without_bf16_units(monkeypatch):
    import agents.hrm.model as model_module

    monkeypatch.setattr(model_module, "cpu_bfloat16_is_fast", lambda: False)
    model = tiny(forward_dtype="bfloat16")
    batch = grid_batch()
    with pytest.warns(UserWarning, match="runs in float32"):
        carry = model.initial_carry(batch)
    _, out = model(carry, batch)
    assert out["logits"].dtype == torch.float32


def test_forward_dtype_bfloat16_runs_in_bfloat16_on_a_cpu_with_bf16_units(monkeypatch):
    import agents.hrm.model as model_module

    monkeypatch.setattr(model_module, "cpu_bfloat16_is_fast", lambda: True)
    model = tiny(forward_dtype="bfloat16")
    batch = grid_batch()
    _, out = model(model.initial_carry(batch), batch)
    assert out["logits"].dtype == torch.bfloat16 and out["q_halt_logits"].dtype == torch.float32
    assert tiny(forward_dtype="auto").compute_dtype(torch.device("cpu")) == torch.float32  # auto stays fp32


def test_cpu_bfloat16_probe_is_overridden_by_the_environment(monkeypatch):
    from agents.hrm.model import CPU_BFLOAT16_ENV, cpu_bfloat16_is_fast

    try:
        for value, expected in (("1", True), ("0", False)):
            monkeypatch.setenv(CPU_BFLOAT16_ENV, value)
            cpu_bfloat16_is_fast.cache_clear()
            assert cpu_bfloat16_is_fast() is expected
        monkeypatch.setenv(CPU_BFLOAT16_ENV, "yes")
        cpu_bfloat16_is_fast.cache_clear()
        with pytest.raises(ValueError, match="HRM_CPU_BFLOAT16='yes'"):
            cpu_bfloat16_is_fast()
        monkeypatch.delenv(CPU_BFLOAT16_ENV)
        for units in (True, False):  # the CPU's flags decide where they can be read...
            monkeypatch.setattr("agents.hrm.model.cpu_bfloat16_units", lambda units=units: units)
            cpu_bfloat16_is_fast.cache_clear()
            assert cpu_bfloat16_is_fast() is units
        monkeypatch.setattr("agents.hrm.model.cpu_bfloat16_units", lambda: None)  # ...else a measurement
        cpu_bfloat16_is_fast.cache_clear()
        before = torch.get_rng_state()
        assert isinstance(cpu_bfloat16_is_fast(), bool)  # measured...
        assert torch.equal(torch.get_rng_state(), before)  # ...without drawing from a seeded run's generator
    finally:
        cpu_bfloat16_is_fast.cache_clear()


@pytest.mark.parametrize("block", ["attention", "conv", "hybrid"])
def test_bfloat16_forward_path_keeps_q_and_norms_in_float32(block, monkeypatch):
    # The CUDA path (bf16 activations and carry, fp32 master weights, fp32 Q logits), run on
    # the CPU by forcing the compute dtype: tiny, so the slow CPU bf16 matmuls do not matter.
    model = tiny(block=block, head="action", value_head=True, patch_size=2)
    monkeypatch.setattr(model, "compute_dtype", lambda device: torch.bfloat16)
    batch = grid_batch()
    batch["labels"] = torch.tensor([0, 1, 2, 3, 0])
    head = ACTLossHead(model)
    carry, loss, _, outputs, _ = head(head.initial_carry(batch), batch)
    assert carry.inner_carry.z_H.dtype == torch.bfloat16
    assert outputs["logits"].dtype == torch.bfloat16
    assert outputs["q_halt_logits"].dtype == torch.float32
    assert outputs["value"].dtype == torch.float32
    assert outputs["target_q_continue"].dtype == torch.float32
    loss.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())
    assert torch.isfinite(loss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bfloat16_on_cuda_keeps_q_in_float32():  # pragma: no cover - GPU machines only
    model = tiny().cuda()
    batch = {k: v.cuda() for k, v in grid_batch().items()}
    carry, out = model(model.initial_carry(batch), batch)
    assert carry.inner_carry.z_H.dtype == torch.bfloat16
    assert out["logits"].dtype == torch.bfloat16
    assert out["q_halt_logits"].dtype == torch.float32


# ---------------------------------------------------------------------------- 1-step gradient
def test_only_the_last_L_and_H_updates_carry_gradient():
    model = tiny(H_cycles=3, L_cycles=4)
    calls: list[tuple[str, bool, bool]] = []

    def hook(name):
        def record(module, args, output):
            calls.append((name, torch.is_grad_enabled(), args[0].requires_grad))

        return record

    model.L_level.register_forward_hook(hook("L"))
    model.H_level.register_forward_hook(hook("H"))
    batch = grid_batch()
    inner = model.reset_carry(torch.ones(5, dtype=torch.bool), model.initial_carry(batch).inner_carry)
    model.inner_forward(inner, batch)
    assert [c[0] for c in calls] == ["L"] * 4 + ["H"] + ["L"] * 4 + ["H"] + ["L"] * 4 + ["H"]
    with_grad = [i for i, c in enumerate(calls) if c[1]]
    assert with_grad == [len(calls) - 2, len(calls) - 1]  # the final L and the final H update
    assert not any(state_requires_grad for _, _, state_requires_grad in calls)


def test_gradient_equals_differentiating_only_the_final_step():
    model = tiny(H_cycles=2, L_cycles=3)
    batch = grid_batch()
    inner = model.reset_carry(torch.ones(5, dtype=torch.bool), model.initial_carry(batch).inner_carry)
    _, out = model.inner_forward(inner, batch)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out["logits"].square().sum(), params, allow_unused=True)

    # The same segment by hand: no-grad iterations, then one differentiated L and H update.
    cell_grid = model._input_grid(batch["inputs"])
    x = model._embed(batch["inputs"], batch, cell_grid, torch.float32)
    layout = model._layout(cell_grid, 16, x.device)
    z_H, z_L = inner.z_H, inner.z_L
    with torch.no_grad():
        for step in range(2 * 3 - 1):
            z_L = model.L_level(z_L, z_H + x, layout)
            if step == 2:
                z_H = model.H_level(z_H, z_L, layout)
    z_L = model.L_level(z_L, z_H + x, layout)
    z_H = model.H_level(z_H, z_L, layout)
    logits = model._heads(z_H, batch["inputs"], cell_grid)["logits"]
    expected = torch.autograd.grad(logits.square().sum(), params, allow_unused=True)
    for got, want in zip(grads, expected):
        assert (got is None) == (want is None)
        if got is not None:
            torch.testing.assert_close(got, want)


def saved_bytes(model: HRMACTv1, batch: dict) -> int:
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, out = model(model.initial_carry(batch), batch)
        out["logits"].sum().backward()
    return total


def test_autograd_memory_does_not_grow_with_cycles():
    batch = grid_batch()
    sizes = {(h, l): saved_bytes(tiny(H_cycles=h, L_cycles=l), batch) for h, l in [(1, 1), (2, 3), (4, 4)]}
    assert len(set(sizes.values())) == 1, sizes


def test_backprop_options_widen_the_gradient_window():
    batch = grid_batch()
    one = saved_bytes(tiny(H_cycles=2, L_cycles=3), batch)
    last = saved_bytes(tiny(H_cycles=2, L_cycles=3, backprop="last_cycle"), batch)
    full = saved_bytes(tiny(H_cycles=2, L_cycles=3, backprop="full"), batch)
    assert one < last < full
    assert saved_bytes(tiny(H_cycles=4, L_cycles=3, backprop="last_cycle"), batch) == last


# ---------------------------------------------------------------------------- halting
def test_halting_never_exceeds_halt_max_steps_in_training():
    model = tiny(halt_max_steps=3, halt_exploration_prob=0.5)
    set_q(model, halt=-5.0, cont=5.0)  # Q never wants to halt
    batch = grid_batch(16)
    carry = model.initial_carry(batch)
    for _ in range(10):
        carry, _ = model(carry, batch)
        assert int(carry.steps.max()) <= 3
        assert torch.equal(carry.halted, carry.steps >= 3)


def test_eval_halts_when_q_says_so_and_runs_to_max_otherwise():
    model = tiny(halt_max_steps=4).eval()
    batch = grid_batch()
    set_q(model, halt=5.0, cont=-5.0)
    carry, _ = model(model.initial_carry(batch), batch)
    assert bool(carry.halted.all()) and carry.steps.tolist() == [1] * 5
    result = model.reason(batch)
    assert result.segments == 1 and result.steps.tolist() == [1] * 5
    # eval_halt="max" (the original's batching choice) and use_q_halt=False ignore Q.
    assert model.reason(batch, use_q_halt=False).steps.tolist() == [4] * 5
    model_max = tiny(halt_max_steps=4, eval_halt="max").eval()
    set_q(model_max, halt=5.0, cont=-5.0)
    assert model_max.reason(batch).segments == 4
    # Test-time scaling: more segments than training used.
    assert model.reason(batch, 7, use_q_halt=False).segments == 7


def test_training_explores_a_random_minimum_number_of_steps():
    model = tiny(halt_max_steps=4, halt_exploration_prob=1.0)
    set_q(model, halt=5.0, cont=-5.0)  # Q always wants to halt at once
    batch = grid_batch(64)
    carry, _ = model(model.initial_carry(batch), batch)
    assert not bool(carry.halted.any())  # every row explores: minimum 2..4 segments
    halt_steps = torch.zeros(64, dtype=torch.int32)
    for _ in range(3):
        carry, _ = model(carry, batch)
        halt_steps = torch.where(carry.halted & (halt_steps == 0), carry.steps, halt_steps)
    assert set(halt_steps.tolist()) == {2, 3, 4}

    greedy = tiny(halt_max_steps=4, halt_exploration_prob=0.0)
    set_q(greedy, halt=5.0, cont=-5.0)
    carry, _ = greedy(greedy.initial_carry(batch), batch)
    assert bool(carry.halted.all())


def test_q_target_none_halts_on_q_halt_alone_without_the_extra_forward():
    model = tiny(q_target="none", halt_exploration_prob=0.0)
    set_q(model, halt=1.0, cont=5.0)
    batch = grid_batch()
    carry, out = model(model.initial_carry(batch), batch)
    assert "target_q_continue" not in out and bool(carry.halted.all())


def test_halted_rows_reset_and_take_new_data_others_keep_their_carry():
    model = tiny().eval()
    old, new = grid_batch(2, seed=1), grid_batch(2, seed=2)
    carry = model.initial_carry(old)
    carry, _ = model(carry, old, use_q_halt=False)
    carry.halted = torch.tensor([True, False])
    kept = carry.inner_carry
    carry2, out = model(carry, new, use_q_halt=False)
    assert torch.equal(carry2.current_data["inputs"][0], new["inputs"][0])
    assert torch.equal(carry2.current_data["inputs"][1], old["inputs"][1])
    assert carry2.steps.tolist() == [1, 2]
    # Row 0 equals a fresh start on the new data, row 1 a continuation of its carry.
    fresh_carry, fresh = model(model.initial_carry(new), new, use_q_halt=False)
    torch.testing.assert_close(out["logits"][0], fresh["logits"][0])
    torch.testing.assert_close(carry2.inner_carry.z_H[0], fresh_carry.inner_carry.z_H[0])
    resumed, expected = model.inner_forward(kept, old)
    torch.testing.assert_close(out["logits"][1], expected["logits"][1])
    torch.testing.assert_close(carry2.inner_carry.z_L[1], resumed.z_L[1])


def test_deterministic_in_eval():
    batch = grid_batch(8)
    first = tiny().eval().reason(batch, use_q_halt=False)
    second = tiny().eval().reason(batch, use_q_halt=False)
    assert torch.equal(first.outputs["logits"], second.outputs["logits"])
    model = tiny().eval()
    with torch.no_grad():
        a = model(model.initial_carry(batch), batch)[1]["logits"]
        b = model(model.initial_carry(batch), batch)[1]["logits"]
    assert torch.equal(a, b)


def test_reason_keeps_each_rows_output_from_its_halting_segment():
    model = tiny(halt_max_steps=4, head="action", pool="mean").eval()
    batch = grid_batch(16)
    with torch.no_grad():  # a Q head that reads the state, so rows halt at different segments
        model.q_head.weight.copy_(torch.randn(2, 16, generator=torch.Generator().manual_seed(3)))
        model.q_head.bias.zero_()
    result = model.reason(batch)
    steps = result.steps.tolist()
    assert len(set(steps)) > 1 and max(steps) <= 4 and result.segments == max(steps)
    carry, per_segment = model.initial_carry(batch), []
    for _ in range(4):
        carry, out = model(carry, batch, use_q_halt=False)
        per_segment.append(out)
    for row, used in enumerate(steps):
        for key in ("logits", "q_halt_logits", "features"):
            torch.testing.assert_close(result.outputs[key][row], per_segment[used - 1][key][row])
        # It halted there because Q said so (or the cap was reached).
        out = per_segment[used - 1]
        assert used == 4 or out["q_halt_logits"][row] > out["q_continue_logits"][row]


def test_reason_replays_a_given_depth_per_row():
    model = tiny(halt_max_steps=4, head="action", pool="mean").eval()
    batch = grid_batch(6)
    depths = torch.tensor([1, 3, 2, 4, 1, 2])
    with torch.no_grad():
        result = model.reason(batch, segments=depths)
        assert result.steps.tolist() == depths.tolist() and result.segments == 4
        for k in range(1, 5):
            fixed = model.reason(batch, k, use_q_halt=False).outputs["logits"]
            rows = depths == k
            torch.testing.assert_close(result.outputs["logits"][rows], fixed[rows])
    with pytest.raises(ValueError, match="one count >= 1 per row"):
        model.reason(batch, segments=torch.tensor([1, 0, 1, 1, 1, 1]))


# ---------------------------------------------------------------------------- trace
def test_trace_returns_per_step_states_and_logits():
    model = tiny(H_cycles=2, L_cycles=3).eval()
    batch = grid_batch()
    carry, out = model(model.initial_carry(batch), batch, trace=True)
    trace = out["trace"]
    assert trace["z_L"].shape == (6, 5, 16, 16) and trace["z_H"].shape == (2, 5, 16, 16)
    assert trace["logits"].shape == (2, 5, 16, 6) and trace["q_halt_logits"].shape == (2, 5)
    torch.testing.assert_close(trace["logits"][-1], out["logits"])
    torch.testing.assert_close(trace["z_H"][-1], carry.inner_carry.z_H)
    result = model.reason(batch, 3, use_q_halt=False, trace=True)
    assert result.trace["logits"].shape == (6, 5, 16, 6)  # 3 segments x 2 H steps


# ---------------------------------------------------------------------------- positions, patches
def test_2d_rope_scores_depend_only_on_the_relative_offset():
    rotary = rotary_2d(1, 5, 5, head_dim=8, theta=100.0, device=torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, generator=g), torch.randn(8, generator=g)

    def score(pos_q, pos_k):  # token index = 1 (prefix) + row * 5 + col
        qs = rotary.rotate(q.expand(26, 1, 8))[1 + pos_q[0] * 5 + pos_q[1], 0]
        ks = rotary.rotate(k.expand(26, 1, 8))[1 + pos_k[0] * 5 + pos_k[1], 0]
        return float(qs @ ks)

    assert score((0, 0), (1, 2)) == pytest.approx(score((3, 2), (4, 4)), abs=1e-5)
    assert score((0, 0), (1, 2)) != pytest.approx(score((0, 0), (2, 1)), abs=1e-3)
    prefix = rotary.rotate(q.expand(26, 1, 8))[0, 0]
    torch.testing.assert_close(prefix, q)  # the prefix token has no position


@pytest.mark.parametrize("block", ["attention", "conv", "hybrid"])
def test_rope_and_conv_models_read_other_grid_sizes(block):
    model = tiny(block=block).eval()
    batch = {"inputs": torch.randint(0, 6, (2, 6, 6))}
    _, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (2, 36, 6)


def test_learned_positions_refuse_another_grid_size():
    model = tiny(pos_encodings="learned")
    batch = {"inputs": torch.randint(0, 6, (2, 6, 6))}
    with pytest.raises(ValueError, match="learned positions for 4x4 grids and cannot read a 6x6"):
        model.initial_carry(batch)
    ok = {"inputs": torch.randint(0, 6, (2, 4, 4))}
    _, out = model(model.initial_carry(ok), ok)
    assert out["logits"].shape == (2, 16, 6)


@pytest.mark.parametrize(("rows", "cols"), [(4, 4), (5, 3)])
def test_patch_tokens_map_cells_back_to_their_own_positions(rows, cols):
    # kernel-1 conv blocks without prefix tokens never mix tokens: a cell's logits can only
    # depend on the cells of its own 2x2 patch (grids the patch does not divide get padded).
    model = tiny(
        block="conv", conv_kernel=1, patch_size=2, pos_encodings="none", grid_height=rows, grid_width=cols
    ).eval()
    base = torch.zeros(1, rows * cols, dtype=torch.long)
    with torch.no_grad():
        ref = model(model.initial_carry({"inputs": base}), {"inputs": base})[1]["logits"]
        assert ref.shape == (1, rows * cols, 6)
        for cell in range(rows * cols):
            changed = base.clone()
            changed[0, cell] = 3
            out = model(model.initial_carry({"inputs": changed}), {"inputs": changed})[1]
            moved = (out["logits"] - ref).abs().amax(-1)[0] > 1e-6
            row, col = divmod(cell, cols)
            patch = {
                r * cols + c
                for r in range(row // 2 * 2, min(row // 2 * 2 + 2, rows))
                for c in range(col // 2 * 2, min(col // 2 * 2 + 2, cols))
            }
            assert set(moved.nonzero().flatten().tolist()) == patch


def test_agent_pool_reads_the_agents_patch_on_a_padded_grid():
    model = tiny(head="action", pool="agent", patch_size=2, grid_height=5, grid_width=5).eval()
    inputs = torch.zeros(2, 25, dtype=torch.long)
    inputs[0, 24] = 2  # bottom-right cell: token (2, 2) of the 3x3 token grid
    inputs[1, 7] = 2  # row 1, col 2: token (0, 1)
    index = model._agent_token_index(inputs, (5, 5))
    assert index.tolist() == [8, 1]
    carry, out = model(model.initial_carry({"inputs": inputs}), {"inputs": inputs})
    assert carry.inner_carry.z_H.shape == (2, 9, 16) and out["logits"].shape == (2, 4)


def test_sequence_model_without_grid():
    model = HRMACTv1(vocab_size=10, seq_len=12, hidden_size=16, num_heads=2, H_layers=1, L_layers=1, halt_max_steps=2)
    batch = {"inputs": torch.randint(0, 10, (3, 12))}
    _, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (3, 12, 10)


# ---------------------------------------------------------------------------- learning
def direction_task(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """4x4 grid with an agent (2) and food (3): the first move of the greedy path to the food."""
    x = torch.zeros(n, 16, dtype=torch.long)
    agent = torch.randint(0, 16, (n,), generator=g)
    food = (agent + 1 + torch.randint(0, 15, (n,), generator=g)) % 16
    rows = torch.arange(n)
    x[rows, agent] = 2
    x[rows, food] = 3
    ar, ac, fr, fc = agent // 4, agent % 4, food // 4, food % 4
    y = torch.where(fr < ar, 0, torch.where(fr > ar, 1, torch.where(fc < ac, 2, 3)))
    return x, y


def test_tiny_model_learns_a_grid_task_within_seconds():
    torch.manual_seed(0)
    model = HRMACTv1(
        {
            **TINY,
            "vocab_size": 4,
            "hidden_size": 32,
            "head": "action",
            "block": "hybrid",
            "halt_max_steps": 2,
            "expansion": 2.0,
            "mlp_multiple": 32,
        }
    )
    head = ACTLossHead(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    start = time.process_time()  # CPU time: robust to other processes sharing the machine
    for _ in range(150):
        x, y = direction_task(64, g)
        deep_supervision_pass(head, {"inputs": x, "labels": y}, [optimizer])
    x, y = direction_task(400, torch.Generator().manual_seed(1))
    with torch.no_grad():
        result = model.reason({"inputs": x})
    accuracy = float((result.outputs["logits"].argmax(-1) == y).float().mean())
    assert accuracy >= 0.95, accuracy
    assert time.process_time() - start < 20


# ---------------------------------------------------------------------------- sudoku attention scope
SUDOKU_TINY = {**TINY, "vocab_size": 10, "grid_height": 9, "grid_width": 9, "attention_scope": "sudoku"}


def sudoku_peers(cell: int) -> set[int]:
    row, col = divmod(cell, 9)
    return {
        other
        for other in range(81)
        if other // 9 == row or other % 9 == col or (other // 27, other % 9 // 3) == (row // 3, col // 3)
    }


def test_sudoku_peer_mask_is_the_constraint_graph_and_prefix_tokens_see_everything():
    mask = sudoku_peer_mask(1, (9, 9), torch.device("cpu"))
    assert mask.shape == (82, 82) and mask[0].all() and mask[:, 0].all()
    for cell in (0, 40, 80, 23):
        assert set(torch.nonzero(mask[1 + cell, 1:]).flatten().tolist()) == sudoku_peers(cell)
    assert int(mask[1:, 1:].sum(1).unique().item()) == 21  # 20 peers and the cell itself
    with pytest.raises(ValueError, match="9x9 boards, got a 4x4 grid"):
        sudoku_peer_mask(0, (4, 4), torch.device("cpu"))


def test_sudoku_scope_attention_reads_only_peers():
    torch.manual_seed(0)
    attention = Attention(16, 2)
    layout = TokenLayout(0, (9, 9), None, sudoku_peer_mask(0, (9, 9), torch.device("cpu")))
    x = torch.randn(1, 81, 16)
    far = x.clone()
    non_peers = sorted(set(range(81)) - sudoku_peers(0))
    far[0, non_peers] = torch.randn(len(non_peers), 16)
    torch.testing.assert_close(attention(far, layout)[0, 0], attention(x, layout)[0, 0])
    near = x.clone()
    near[0, 8] += 1.0  # same row as cell 0
    assert not torch.allclose(attention(near, layout)[0, 0], attention(x, layout)[0, 0])
    everything = TokenLayout(0, (9, 9), None)  # the global scope does see the far cells
    assert not torch.allclose(attention(far, everything)[0, 0], attention(x, everything)[0, 0])


def test_sudoku_scope_model_runs_and_refuses_other_grids_and_conv_blocks():
    torch.manual_seed(0)
    model = HRMACTv1(SUDOKU_TINY).eval()
    batch = {"inputs": torch.randint(0, 10, (2, 81))}
    _, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (2, 81, 10)
    with pytest.raises(ValueError, match="9x9 boards, got a 6x6 grid"):
        six = {"inputs": torch.randint(0, 10, (2, 6, 6))}
        model(model.initial_carry(six), six)
    with pytest.raises(ValueError, match="attention_scope='sudoku' needs a 9x9 grid of single cells, got 4x4"):
        HRMACTv1Config.from_dict({**TINY, "attention_scope": "sudoku"})
    with pytest.raises(ValueError, match="needs attention"):
        HRMACTv1Config.from_dict({**SUDOKU_TINY, "block": "conv"})
    with pytest.raises(ValueError, match="attention_scope='rows'"):
        HRMACTv1Config.from_dict({**SUDOKU_TINY, "attention_scope": "rows"})
