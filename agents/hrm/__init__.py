"""HRM-ACT-v1, the Hierarchical Reasoning Model with adaptive computation time.

Build (config keys: :class:`HRMACTv1Config`; presets ``"cpu_grid16"`` and ``"paper"``)::

    from agents.hrm import HRMACTv1, HRMACTv1Config
    model = HRMACTv1(HRMACTv1Config.preset("cpu_grid16"))          # 16x16 grid -> (B, 4) actions
    model = HRMACTv1(HRMACTv1Config.preset("paper", vocab_size=11, grid_height=9, grid_width=9))
    model = HRMACTv1({"vocab_size": 6, "grid_height": 11, "grid_width": 11, "block": "conv"})

One segment (the original API)::

    carry = model.initial_carry(batch)                 # batch = {"inputs": (B, seq_len) ints}
    carry, outputs = model(carry, batch)               # logits, q_halt_logits, q_continue_logits
    carry.halted, carry.steps                          # (+ target_q_continue in training)

Training: :class:`ACTLossHead` (task loss + 0.5 x Q losses, metrics) around the model, and
:func:`deep_supervision_pass` (segments until every row halts, one optimizer step each)::

    head = ACTLossHead(model)                          # targets in batch["labels"]
    stats = deep_supervision_pass(head, {"inputs": x, "labels": y}, [optimizer])

Inference and analysis: ``model.reason(batch, max_segments=None, use_q_halt=None,
trace=False)`` runs segments until each row halts (Q head, or ``max_segments``: test-time
scaling) and returns each row's outputs from its halting segment, the segments used and, with
``trace=True``, the states and logits after every L/H update (``forward(..., trace=True)``
gives the same for one segment). The action head also returns ``features`` (the pooled
high-level state, for a value head) and ``value`` with ``value_head=True``.

Puzzle embeddings (``puzzle_emb_ndim > 0``) are trained by
:class:`CastedSparseEmbeddingSignSGD_Distributed` on ``model.puzzle_emb.parameters()``; give
the other optimizer ``[p for n, p in model.named_parameters() if "puzzle_emb" not in n]``.
"""

from agents.hrm.config import HRMACTv1Config
from agents.hrm.losses import (
    IGNORE_LABEL_ID,
    ACTLossHead,
    deep_supervision_pass,
    softmax_cross_entropy,
    stablemax_cross_entropy,
)
from agents.hrm.model import HRMACTv1, HRMACTv1Carry, HRMACTv1InnerCarry, ReasoningResult
from agents.hrm.sparse_embedding import (
    CastedSparseEmbedding,
    CastedSparseEmbeddingSignSGD_Distributed,
)

__all__ = [
    "IGNORE_LABEL_ID",
    "ACTLossHead",
    "CastedSparseEmbedding",
    "CastedSparseEmbeddingSignSGD_Distributed",
    "HRMACTv1",
    "HRMACTv1Carry",
    "HRMACTv1Config",
    "HRMACTv1InnerCarry",
    "ReasoningResult",
    "deep_supervision_pass",
    "softmax_cross_entropy",
    "stablemax_cross_entropy",
]
