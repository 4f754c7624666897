"""ACT loss head, deep-supervision pass and the sparse puzzle-embedding optimizer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from agents.hrm import (
    IGNORE_LABEL_ID,
    ACTLossHead,
    CastedSparseEmbeddingSignSGD_Distributed,
    HRMACTv1,
    deep_supervision_pass,
    stablemax_cross_entropy,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = dict(
    vocab_size=5,
    grid_height=3,
    grid_width=3,
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


def batch_of(n: int = 4, seed: int = 0, **extra) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(0, 5, (n, 9), generator=g), **extra}


def test_sequence_loss_matches_the_original_formula():
    model = tiny()
    head = ACTLossHead(model)
    labels = torch.randint(0, 5, (4, 9), generator=torch.Generator().manual_seed(1))
    labels[0, :4] = IGNORE_LABEL_ID
    batch = batch_of(labels=labels)
    carry, loss, metrics, outputs, all_halted = head(head.initial_carry(batch), batch)
    logits = outputs["logits"]
    valid = labels != IGNORE_LABEL_ID
    per = F.cross_entropy(
        logits.reshape(-1, 5), labels.reshape(-1), reduction="none", ignore_index=IGNORE_LABEL_ID
    ).view(4, 9)
    task = (per.sum(-1) / valid.sum(-1)).mean()
    right = valid & (logits.argmax(-1) == labels)
    exact = right.sum(-1) == valid.sum(-1)
    q_halt = F.binary_cross_entropy_with_logits(outputs["q_halt_logits"], exact.float())
    q_cont = F.binary_cross_entropy_with_logits(outputs["q_continue_logits"], outputs["target_q_continue"])
    torch.testing.assert_close(loss.detach(), task + 0.5 * (q_halt + q_cont))
    torch.testing.assert_close(metrics["accuracy"], (right.sum(-1) / valid.sum(-1)).mean())
    torch.testing.assert_close(metrics["exact_accuracy"], exact.float().mean())
    assert set(metrics) >= {
        "loss",
        "task_loss",
        "q_halt_loss",
        "q_continue_loss",
        "q_halt_accuracy",
        "steps",
        "halted",
        "count",
    }
    assert not bool(all_halted)  # nothing halts at step 1 of 3 with the initial Q head


def test_action_labels_and_optimal_action_sets():
    model = tiny(head="action", n_actions=4)
    head = ACTLossHead(model)
    batch = batch_of(labels=torch.tensor([0, 1, 2, 3]))
    _, loss, metrics, outputs, _ = head(head.initial_carry(batch), batch)
    assert loss.requires_grad and outputs["logits"].shape == (4, 4)
    # A set of acceptable actions: loss = -log P(set), right if the argmax is in the set.
    allowed = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 1, 0, 1]]).bool()
    batch = batch_of(labels=allowed)
    _, _, metrics, outputs, _ = head(head.initial_carry(batch), batch)
    logp = outputs["logits"].log_softmax(-1)
    expected = -(logp.masked_fill(~allowed, -math.inf).logsumexp(-1)).mean()
    torch.testing.assert_close(metrics["task_loss"], expected)
    right = allowed.gather(1, outputs["logits"].argmax(-1, keepdim=True)).float().mean()
    torch.testing.assert_close(metrics["accuracy"], right)


def test_loss_head_errors_are_clear():
    head = ACTLossHead(tiny())
    batch = batch_of()
    with pytest.raises(ValueError, match="no targets under 'labels'"):
        head(head.initial_carry(batch), batch)
    bad = batch_of(labels=torch.full((4, 9), 7))
    with pytest.raises(ValueError, match=r"target ids must lie in \[0, 5\)"):
        head(head.initial_carry(bad), bad)
    with pytest.raises(ValueError, match="unknown loss_type"):
        ACTLossHead(tiny(), loss_type="hinge")


def test_stablemax_cross_entropy_is_a_proper_loss():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, IGNORE_LABEL_ID])
    loss = stablemax_cross_entropy(logits, labels)
    s = torch.tensor([3.0, 0.5, 1.5])
    assert float(loss[0]) == pytest.approx(-math.log(3.0 / s.sum()))
    assert float(loss[1]) == 0.0


def test_auxiliary_per_cell_targets_add_to_the_loss():
    model = tiny(head="action", aux_vocab_out=3)
    head = ACTLossHead(model, aux_label_key="dist", aux_weight=2.0)
    dist = torch.randint(0, 3, (4, 9), generator=torch.Generator().manual_seed(2))
    batch = batch_of(labels=torch.tensor([0, 1, 2, 3]), dist=dist)
    _, loss, metrics, outputs, _ = head(head.initial_carry(batch), batch)
    expected = F.cross_entropy(outputs["aux_logits"].reshape(-1, 3), dist.reshape(-1))
    torch.testing.assert_close(metrics["aux_loss"], expected)


def test_deep_supervision_pass_runs_until_every_row_halts_and_trains():
    model = tiny(halt_max_steps=3, halt_exploration_prob=0.0)
    head = ACTLossHead(model)
    labels = torch.randint(0, 5, (8, 9), generator=torch.Generator().manual_seed(3))
    batch = batch_of(8, labels=labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    result = deep_supervision_pass(head, batch, [optimizer])
    assert result["segments"] == 3 and len(result["segment_losses"]) == 3
    assert result["steps"] == 3.0
    assert set(result) >= {"loss", "accuracy", "exact_accuracy", "q_halt_accuracy"}
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert sum(changed) >= len(changed) - 1  # the Q head bias alone may stay put at first
    # Measuring only: no optimizer, no gradient, nothing changes.
    model.eval()
    frozen = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        measured = deep_supervision_pass(head, batch, max_segments=5)
    assert measured["segments"] <= 5
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.parameters()))


def test_deep_supervision_pass_drops_rows_that_halted():
    model = tiny(halt_max_steps=4, halt_exploration_prob=0.0).eval()
    head = ACTLossHead(model)
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([5.0, -5.0]))  # halt at once
    batch = batch_of(labels=torch.zeros(4, 9, dtype=torch.long))
    with torch.no_grad():
        result = deep_supervision_pass(head, batch)
    assert result["segments"] == 1 and result["steps"] == 1.0


# ---------------------------------------------------------------------------- puzzle embeddings
def test_puzzle_embeddings_train_only_the_rows_in_the_batch():
    model = tiny(puzzle_emb_ndim=24, num_puzzle_identifiers=6)  # 24 dims -> 2 prefix tokens
    assert model.puzzle_emb.weight.abs().sum() == 0  # zero init
    with torch.no_grad():
        model.puzzle_emb.weight[5].fill_(1.0)  # an untouched row: no weight decay either
    adam = torch.optim.AdamW([p for n, p in model.named_parameters() if "puzzle_emb" not in n])
    sparse = CastedSparseEmbeddingSignSGD_Distributed(
        model.puzzle_emb.parameters(), world_size=1, lr=0.1, weight_decay=0.5
    )
    head = ACTLossHead(model)
    labels = torch.randint(0, 5, (4, 9), generator=torch.Generator().manual_seed(4))
    batch = batch_of(labels=labels, puzzle_identifiers=torch.tensor([1, 1, 3, 0]))
    carry, loss, _, _, _ = head(head.initial_carry(batch), batch)
    assert carry.inner_carry.z_H.shape[1] == 2 + 9
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # works: the table has no .grad
    adam.step()
    sparse.step()
    table = model.puzzle_emb.weight
    for row in (0, 1, 3):
        values = table[row]
        assert bool((values.abs() == 0.1).any())  # a sign step of size lr
        assert bool(((values.abs() == 0.1) | (values == 0)).all())
    assert bool((table[[2, 4]] == 0).all())
    assert bool((table[5] == 1.0).all())


def test_sparse_optimizer_rejects_other_parameters():
    model = tiny()
    with pytest.raises(ValueError, match="pass model.puzzle_emb.parameters"):
        CastedSparseEmbeddingSignSGD_Distributed(model.parameters())
    with pytest.raises(ValueError, match="invalid learning rate"):
        CastedSparseEmbeddingSignSGD_Distributed([], lr=-1.0)


def test_puzzle_identifiers_are_checked():
    model = tiny(puzzle_emb_ndim=16, num_puzzle_identifiers=3)
    batch = batch_of()
    with pytest.raises(ValueError, match="needs 'puzzle_identifiers'"):
        model(model.initial_carry(batch), batch)
    batch["puzzle_identifiers"] = torch.tensor([0, 1, 2, 3])
    message = r"puzzle_identifiers must lie in \[0, num_puzzle_identifiers=3\), got .* \[0, 3\]"
    with pytest.raises(ValueError, match=message):
        model(model.initial_carry(batch), batch)


def test_sparse_optimizer_sums_gradients_across_ranks(tmp_path):
    # A one-process gloo group exercises the all-reduce path of world_size > 1.
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        model = tiny(puzzle_emb_ndim=16, num_puzzle_identifiers=4)
        sparse = CastedSparseEmbeddingSignSGD_Distributed(
            model.puzzle_emb.parameters(), world_size=2, lr=0.5, weight_decay=0.0
        )
        head = ACTLossHead(model)
        labels = torch.randint(0, 5, (4, 9), generator=torch.Generator().manual_seed(5))
        batch = batch_of(labels=labels, puzzle_identifiers=torch.tensor([2, 2, 2, 2]))
        _, loss, _, _, _ = head(head.initial_carry(batch), batch)
        loss.backward()
        sparse.step()
        table = model.puzzle_emb.weight
        assert bool((table[2].abs() == 0.5).any()) and bool((table[[0, 1, 3]] == 0).all())
    finally:
        dist.destroy_process_group()
