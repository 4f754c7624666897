"""The usage guide's snippets (DESIGN 1.B, sources/hrm-act-v1-usage-guide.md) run as written:
only the import path changed, ``.cuda()``/``device="cuda"`` dropped, and a config small enough
for a test (the guide's keys and structure kept, forward_dtype "bfloat16" included: on a CPU it
runs in float32 with a warning)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
from torch.optim import AdamW

from agents.hrm import CastedSparseEmbeddingSignSGD_Distributed, HRMACTv1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def guide_config() -> dict:
    return {
        "batch_size": 8,
        "seq_len": 16,
        "puzzle_emb_ndim": 0,  # Disable puzzle embeddings
        "num_puzzle_identifiers": 10,
        "vocab_size": 50,
        "H_cycles": 3,
        "L_cycles": 2,
        "H_layers": 1,
        "L_layers": 1,
        "hidden_size": 32,
        "num_heads": 4,
        "pos_encodings": "rope",
        "halt_max_steps": 5,
        "halt_exploration_prob": 0.1,
        "forward_dtype": "bfloat16",
    }


def test_basic_usage_and_multi_step_reasoning(capsys):
    torch.manual_seed(0)
    config = guide_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # bfloat16 -> float32 on a CPU
        # --- 1. Basic Usage
        model = HRMACTv1(config)
        batch = {
            "inputs": torch.randint(0, 50, (8, 16)),
            "puzzle_identifiers": torch.zeros(8, dtype=torch.int32),
        }
        carry = model.initial_carry(batch)
        carry, outputs = model(carry, batch)
        logits = outputs["logits"]  # (batch, seq_len, vocab_size)
        q_halt = outputs["q_halt_logits"]  # (batch,)
        q_continue = outputs["q_continue_logits"]  # (batch,)
        assert logits.shape == (8, 16, 50) and q_halt.shape == q_continue.shape == (8,)

        # --- 2. Multi-Step Reasoning
        max_iterations = 10
        carry = model.initial_carry(batch)

        for step in range(max_iterations):
            carry, outputs = model(carry, batch)

            print(f"Step {step + 1}:")
            print(f"  Halted: {carry.halted.sum().item()}/{len(carry.halted)}")
            print(f"  Steps: {carry.steps.tolist()}")

            # All sequences halted
            if carry.halted.all():
                break

        final_logits = outputs["logits"]
    assert final_logits.shape == (8, 16, 50)
    assert bool(carry.halted.all()) and int(carry.steps.max()) <= 5
    assert "Halted: 8/8" in capsys.readouterr().out

    # --- 3. With Puzzle Embeddings
    config["puzzle_emb_ndim"] = 32  # Embedding dimension
    config["num_puzzle_identifiers"] = 1000  # Number of unique puzzles
    config["forward_dtype"] = "float32"
    model = HRMACTv1(config)
    batch = {
        "inputs": torch.randint(0, 50, (8, 16)),
        "puzzle_identifiers": torch.randint(0, 1000, (8,)),  # Different puzzles
    }
    carry = model.initial_carry(batch)
    carry, outputs = model(carry, batch)
    assert outputs["logits"].shape == (8, 16, 50)


def run_training_loop(config: dict, max_steps: int) -> tuple[HRMACTv1, list[dict]]:
    """The guide's "Basic Training Loop", verbatim apart from the device."""
    generator = torch.Generator().manual_seed(0)

    def get_next_batch():
        return {
            "inputs": torch.randint(0, 50, (8, 16), generator=generator),
            "puzzle_identifiers": torch.randint(0, 10, (8,), generator=generator),
            "targets": torch.randint(0, 50, (8, 16), generator=generator),
        }

    # Create model
    model = HRMACTv1(config)
    model.train()

    # Optimizer for main model
    optimizer = AdamW(
        [p for n, p in model.named_parameters() if "puzzle_emb" not in n],
        lr=3e-4,
        weight_decay=0.01,
    )

    # Separate optimizer for sparse puzzle embeddings (if used)
    if config["puzzle_emb_ndim"] > 0:
        sparse_optimizer = CastedSparseEmbeddingSignSGD_Distributed(
            model.puzzle_emb.parameters(),
            world_size=1,  # Single GPU
            lr=1e-3,
            weight_decay=1e-2,
        )

    # Training step
    def train_step(batch, targets):
        # Initialize carry
        carry = model.initial_carry(batch)

        # Forward pass
        carry, outputs = model(carry, batch)

        # Language modeling loss
        logits = outputs["logits"]
        lm_loss = nn.functional.cross_entropy(
            logits.reshape(-1, config["vocab_size"]),
            targets.reshape(-1),
        )

        # Q-learning loss (if in training mode with ACT)
        q_loss = 0.0
        if "target_q_continue" in outputs:
            q_continue = torch.sigmoid(outputs["q_continue_logits"])
            target_q = outputs["target_q_continue"]
            q_loss = nn.functional.mse_loss(q_continue, target_q)

        # Total loss
        loss = lm_loss + 0.1 * q_loss  # Weight Q-loss

        # Backward
        loss.backward()

        # Clip gradients
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)

        # Update
        optimizer.step()
        if config["puzzle_emb_ndim"] > 0:
            sparse_optimizer.step()

        optimizer.zero_grad()
        if config["puzzle_emb_ndim"] > 0:
            sparse_optimizer.zero_grad()

        return {
            "loss": loss.item(),
            "lm_loss": lm_loss.item(),
            "q_loss": q_loss if isinstance(q_loss, float) else q_loss.item(),
        }

    # Training loop
    history = []
    for step in range(max_steps):
        batch = get_next_batch()  # Your data loader
        targets = batch["targets"]

        metrics = train_step(batch, targets)
        history.append(metrics)

        if step % 100 == 0:
            print(f"Step {step}: {metrics}")
    return model, history


def test_basic_training_loop_runs_and_learns():
    torch.manual_seed(0)
    config = {**guide_config(), "forward_dtype": "float32"}
    model, history = run_training_loop(config, max_steps=6)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert all(h["q_loss"] >= 0.0 for h in history)
    batch = {"inputs": torch.randint(0, 50, (8, 16))}
    _, outputs = model(model.initial_carry(batch), batch)
    assert "target_q_continue" in outputs  # so the snippet's Q loss branch ran


def test_basic_training_loop_with_puzzle_embeddings_updates_the_table():
    torch.manual_seed(0)
    config = {**guide_config(), "forward_dtype": "float32", "puzzle_emb_ndim": 32}
    model, history = run_training_loop(config, max_steps=3)
    assert float(model.puzzle_emb.weight.abs().sum()) > 0  # zero init, trained by SignSGD
    assert len(history) == 3


def test_evaluation_snippet():
    torch.manual_seed(0)
    config = {**guide_config(), "forward_dtype": "float32"}
    model = HRMACTv1(config)
    generator = torch.Generator().manual_seed(1)
    val_loader = [
        {
            "inputs": torch.randint(0, 50, (8, 16), generator=generator),
            "puzzle_identifiers": torch.zeros(8, dtype=torch.int32),
            "targets": torch.randint(0, 50, (8, 16), generator=generator),
        }
        for _ in range(2)
    ]
    model.eval()

    def evaluate(val_loader):
        total_loss = 0.0
        total_steps = 0
        total_halts = []

        with torch.no_grad():
            for batch in val_loader:
                carry = model.initial_carry(batch)

                # Run until halt
                for _ in range(config["halt_max_steps"]):
                    carry, outputs = model(carry, batch)
                    if carry.halted.all():
                        break

                # Compute loss
                logits = outputs["logits"]
                targets = batch["targets"]
                loss = nn.functional.cross_entropy(
                    logits.reshape(-1, config["vocab_size"]),
                    targets.reshape(-1),
                )

                total_loss += loss.item()
                total_steps += 1
                total_halts.append(carry.steps.float().mean().item())

        return {
            "loss": total_loss / total_steps,
            "avg_steps": sum(total_halts) / len(total_halts),
        }

    result = evaluate(val_loader)
    assert result["avg_steps"] == 5.0  # untrained Q never halts early: runs to the cap
    assert result["loss"] > 0
