"""HRM-ACT-v1, the Hierarchical Reasoning Model with adaptive computation time.

``from agents.hrm import HRMACTv1, HRMACTv1Config``; the loss head and the deep-supervision pass
live in :mod:`agents.hrm.losses`; the puzzle-embedding optimizer in
:mod:`agents.hrm.sparse_embedding`.
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
