"""The HRM-ACT-v1 configuration: one checked dataclass, built from a dict, with named presets.

The keys of the original implementation (DESIGN 1.B) keep their names and meaning; the keys
after them add what this project needs: 2-D grids (positions, local mixing, patch tokens), the
choice of token mixer per block and the output heads. Every value is checked when the config is
built, so a typo or an out-of-range value fails at once with the list of what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

BLOCKS = ("attention", "conv", "hybrid")
HEADS = ("sequence", "action", "cell_action")
POOLS = ("cls", "mean", "first", "agent")
POS_ENCODINGS = ("rope", "learned", "none")
FORWARD_DTYPES = ("auto", "float32", "bfloat16", "float16")
EVAL_HALTS = ("q", "max")
Q_TARGETS = ("bootstrap", "none")
Q_SOURCES = ("first", "mean", "agent")
BACKPROPS = ("one_step", "last_cycle", "full")
ATTENTION_SCOPES = ("global", "sudoku")


@dataclasses.dataclass(frozen=True)
class HRMACTv1Config:
    """Every setting of :class:`agents.hrm.HRMACTv1`.

    Original keys (same meaning as sapientinc/HRM):
        batch_size: informational (the original sized its sparse-embedding buffer with it).
        seq_len: tokens per example before patching; derived from the grid shape if omitted.
        puzzle_emb_ndim / num_puzzle_identifiers: optional per-puzzle embedding (0 = off), zero
            initialised, trained by :class:`CastedSparseEmbeddingSignSGD_Distributed`.
        vocab_size: input token vocabulary (6 for the grid envs' cell codes).
        H_cycles, L_cycles, H_layers, L_layers, hidden_size, num_heads, expansion: the two
            recurrent modules and their blocks.
        pos_encodings: "rope", "learned" or "none"; rope_theta, rms_norm_eps.
        halt_max_steps, halt_exploration_prob: ACT (segments per example, exploration).
        forward_dtype: "auto" = float32 on CPU, bfloat16 on CUDA; "bfloat16" on a CPU runs in
            bfloat16 where the CPU has bf16 units, AMX or AVX512-BF16, 3-4x faster than float32
            (its flags say so, or a measurement where they cannot be read), and falls back to
            float32 with a warning elsewhere (~500x slower there); "float16" on a CPU always
            falls back.

    Added keys:
        grid_height, grid_width: the 2-D shape of the (row-major flattened) inputs, or None for
            plain sequences. Grids get 2-D RoPE (half of each head's dims rotate with the row,
            half with the column) and may use conv/hybrid blocks and patch tokens.
        patch_size: p > 1 groups p x p cells into one token (16x16 grid, p=2 -> 64 tokens); a
            grid that p does not divide is padded at the bottom/right with an extra pad token
            (11x11, p=2 -> 6x6 tokens), and per-cell outputs are cropped back.
        block: token mixing inside every H/L block: "attention" (the original post-norm
            transformer block), "conv" (a k x k convolution over the token grid instead of
            attention) or "hybrid" (attention and convolution side by side).
        conv_kernel, conv_depthwise: the convolution's size and whether it is depthwise.
        attention_scope: which tokens a grid token attends to: "global" (all of them) or
            "sudoku" (its own row, column and 3x3 box on a 9x9 grid: the constraint graph, the
            Sudoku counterpart of the conv block's neighbourhood; prefix tokens still see and
            are seen by every token).
        mlp_multiple: SwiGLU width is rounded up to a multiple of this (256 in the original;
            small models waste less with 64).
        head: "sequence" (per-token logits over ``vocab_out``) or "action" (``n_actions`` logits
            from a pooled high-level state). pool: how the action head pools: "cls" (a learned
            token prepended), "mean" (over grid tokens), "first" (token 0) or "agent" (the token
            holding the cell whose code is ``agent_token``). "cell_action": per-cell logits over
            ``vocab_out`` flattened into ``cells * vocab_out`` action logits (action
            ``cell * vocab_out + k``: Sudoku's "digit k+1 in cell"), pooled state = grid mean.
        value_head: also output a scalar value from the pooled state (actor-critic use).
        aux_vocab_out: > 0 adds a per-token auxiliary head (``outputs["aux_logits"]``).
        eval_halt: in eval mode, halt when Q says so ("q") or always run halt_max_steps ("max",
            the original's batching choice).
        halt_threshold: in eval mode with ``q_target="none"``, a segment halts when the Q
            head's probability that the answer is right exceeds this (0.5: its logit > 0, the
            TRM rule, which training always uses). Higher values think longer before they
            trust the head, e.g. on grids larger than trained.
        q_target: "bootstrap" (the original: an extra no-grad forward gives target_q_continue)
            or "none" (TRM-style: no extra forward, no Q-continue loss, halt when q_halt > 0).
        q_source: which state the Q head reads: "first" token (the original; the CLS or puzzle
            token when present), "mean" over grid tokens, or "agent" (the agent's token, as
            ``pool="agent"``: with local blocks a plan reaches the agent's cell as a wave, so that
            cell knows when the route from it is done, where a mean over the grid does not). None
            picks "first", except for conv blocks without prefix tokens, where token 0 only sees
            its neighbourhood.
        backprop: which updates of a segment get gradient: "one_step" (HRM's 1-step gradient:
            the final L and H update; memory O(1) in the cycles), "last_cycle" (every update of
            the last H cycle, TRM-style) or "full" (backprop through the whole segment).
    """

    batch_size: int | None = None
    seq_len: int | None = None
    puzzle_emb_ndim: int = 0
    num_puzzle_identifiers: int = 1
    vocab_size: int | None = None

    H_cycles: int = 2
    L_cycles: int = 2
    H_layers: int = 4
    L_layers: int = 4

    hidden_size: int = 512
    expansion: float = 4.0
    num_heads: int = 8
    pos_encodings: str = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    forward_dtype: str = "auto"

    grid_height: int | None = None
    grid_width: int | None = None
    patch_size: int = 1
    block: str = "attention"
    conv_kernel: int = 3
    conv_depthwise: bool = False
    attention_scope: str = "global"
    mlp_multiple: int = 256
    head: str = "sequence"
    vocab_out: int | None = None
    n_actions: int = 4
    pool: str = "cls"
    agent_token: int = 2
    value_head: bool = False
    aux_vocab_out: int = 0
    eval_halt: str = "q"
    halt_threshold: float = 0.5
    q_target: str = "bootstrap"
    q_source: str | None = None
    backprop: str = "one_step"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Keys of removed options with the value that meant "off": configs saved before the removal
    #: (checkpoints) still load when they hold that value; any other value is refused.
    RETIRED: ClassVar[dict[str, Any]] = {"inert_token": None}

    # ------------------------------------------------------------------ construction
    @classmethod
    def allowed_keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HRMACTv1Config:
        """Build from a dict; unknown keys raise ValueError listing the allowed ones."""
        if not isinstance(values, Mapping):
            raise ValueError(f"HRM config must be a mapping, got {type(values).__name__}")
        values = {k: v for k, v in values.items() if k not in cls.RETIRED or v != cls.RETIRED[k]}
        unknown = sorted(set(values) - set(cls.allowed_keys()))
        if unknown:
            raise ValueError(f"unknown HRM config key(s) {unknown}; allowed keys: {cls.allowed_keys()}")
        return cls(**dict(values))

    @classmethod
    def coerce(cls, config: HRMACTv1Config | Mapping[str, Any] | None = None, **overrides: Any) -> HRMACTv1Config:
        """Accept a config, a dict or nothing, then apply keyword overrides (all checked)."""
        if config is None:
            base: dict[str, Any] = {}
        elif isinstance(config, HRMACTv1Config):
            base = config.to_dict()
        elif isinstance(config, Mapping):
            base = dict(config)
        else:
            raise ValueError(f"HRM config must be an HRMACTv1Config or a dict, got {type(config).__name__}")
        base.update(overrides)
        return cls.from_dict(base)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> HRMACTv1Config:
        """A named configuration (see :data:`PRESETS`) with keyword overrides applied."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown HRM preset {name!r}; presets: {sorted(cls.PRESETS)}")
        return cls.from_dict({**cls.PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every key (JSON/YAML friendly; ``from_dict`` round-trips it)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> HRMACTv1Config:
        """A copy with some keys changed (checked like a new config)."""
        return self.coerce(self, **changes)

    # ------------------------------------------------------------------ derived facts
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def is_grid(self) -> bool:
        return self.grid_height is not None

    @property
    def n_puzzle_tokens(self) -> int:
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def n_cls_tokens(self) -> int:
        return int(self.head == "action" and self.pool == "cls")

    @property
    def n_prefix_tokens(self) -> int:
        """Tokens before the data tokens: puzzle embedding tokens, then the CLS token."""
        return self.n_puzzle_tokens + self.n_cls_tokens

    @property
    def token_grid(self) -> tuple[int, int] | None:
        """(rows, cols) of the data tokens after patching, or None for sequences."""
        if not self.is_grid:
            return None
        return (-(self.grid_height // -self.patch_size), -(self.grid_width // -self.patch_size))

    @property
    def n_data_tokens(self) -> int:
        grid = self.token_grid
        return grid[0] * grid[1] if grid else int(self.seq_len)

    @property
    def mlp_hidden(self) -> int:
        inter = round(self.expansion * self.hidden_size * 2 / 3)
        return -(inter // -self.mlp_multiple) * self.mlp_multiple

    # ------------------------------------------------------------------ checks
    def __post_init__(self) -> None:
        """Check every field, then the rules between fields, then fill in the derived defaults."""
        errors = self._field_errors()
        if errors:
            raise ValueError("invalid HRM config: " + "; ".join(errors))
        errors = self._cross_field_errors()  # only once every field has the right type
        if errors:
            raise ValueError("invalid HRM config: " + "; ".join(errors))
        self._resolve_defaults()

    def _field_errors(self) -> list[str]:
        """One message per field whose type or range is wrong."""
        check = _FieldChecks(self)
        check.integer("batch_size", 1, optional=True)
        check.integer("seq_len", 1, optional=True)
        check.integer("puzzle_emb_ndim", 0)
        check.integer("num_puzzle_identifiers", 1)
        if self.vocab_size is None:
            check.errors.append("vocab_size is required (the number of input token ids)")
        else:
            check.integer("vocab_size", 1)
        for name in ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "num_heads"):
            check.integer(name, 1)
        check.number("expansion", 0.0, open_low=True)
        check.choice("pos_encodings", POS_ENCODINGS)
        check.number("rms_norm_eps", 0.0, open_low=True)
        check.number("rope_theta", 0.0, open_low=True)
        check.integer("halt_max_steps", 1)
        check.number("halt_exploration_prob", 0.0, 1.0)
        check.choice("forward_dtype", FORWARD_DTYPES)
        check.integer("grid_height", 1, optional=True)
        check.integer("grid_width", 1, optional=True)
        check.integer("patch_size", 1)
        check.choice("block", BLOCKS)
        check.integer("conv_kernel", 1)
        check.flag("conv_depthwise")
        check.choice("attention_scope", ATTENTION_SCOPES)
        check.integer("mlp_multiple", 1)
        check.choice("head", HEADS)
        check.integer("vocab_out", 1, optional=True)
        check.integer("n_actions", 1)
        check.choice("pool", POOLS)
        check.integer("agent_token", 0)
        check.flag("value_head")
        check.integer("aux_vocab_out", 0)
        check.choice("eval_halt", EVAL_HALTS)
        check.number("halt_threshold", 0.0, 1.0, open_low=True)
        if self.halt_threshold == 1.0:
            check.errors.append(f"halt_threshold={self.halt_threshold!r} must be < 1 (1 would never halt)")
        check.choice("q_target", Q_TARGETS)
        check.choice("q_source", Q_SOURCES, optional=True)
        check.choice("backprop", BACKPROPS)
        return check.errors

    def _cross_field_errors(self) -> list[str]:
        """One message per rule between fields that the values break."""
        errors: list[str] = []
        if self.hidden_size % self.num_heads:
            errors.append(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")
        if self.conv_kernel % 2 == 0:
            errors.append(f"conv_kernel={self.conv_kernel} must be odd (same-size output)")
        if self.attention_scope == "sudoku":
            if (self.grid_height, self.grid_width) != (9, 9) or self.patch_size != 1:
                errors.append(
                    "attention_scope='sudoku' needs a 9x9 grid of single cells, got "
                    f"{self.grid_height}x{self.grid_width} with patch_size={self.patch_size}"
                )
            if self.block == "conv":
                errors.append("attention_scope='sudoku' needs attention (block 'attention' or 'hybrid')")
        if (self.grid_height is None) != (self.grid_width is None):
            errors.append("grid_height and grid_width must be given together (or both None)")
        errors += self._grid_errors() if self.is_grid else self._sequence_errors()
        reads_agent = (self.head == "action" and self.pool == "agent") or self.q_source == "agent"
        if reads_agent and not (self.agent_token < (self.vocab_size or 0)):
            errors.append(f"agent_token={self.agent_token} must be < vocab_size={self.vocab_size}")
        if self.q_source == "agent" and not self.is_grid:
            errors.append("q_source='agent' reads the agent's cell: it needs a grid model")
        if self.head == "sequence" and self.value_head:
            errors.append("value_head needs head='action' or 'cell_action' (it reads the pooled state)")
        return errors

    def _grid_errors(self) -> list[str]:
        errors: list[str] = []
        cells = self.grid_height * self.grid_width
        if self.seq_len is not None and self.seq_len != cells:
            errors.append(
                f"seq_len={self.seq_len} does not match the grid {self.grid_height}x{self.grid_width}={cells}"
            )
        if self.pos_encodings == "rope" and self.head_dim % 4:
            errors.append(f"2-D RoPE needs hidden_size/num_heads divisible by 4, got {self.head_dim}")
        return errors

    def _sequence_errors(self) -> list[str]:
        errors: list[str] = []
        if self.seq_len is None:
            errors.append("seq_len is required for sequences (or give grid_height/width)")
        if self.block != "attention":
            errors.append(f"block={self.block!r} needs a grid (grid_height, grid_width)")
        if self.patch_size != 1:
            errors.append("patch_size > 1 needs a grid (grid_height, grid_width)")
        if self.pos_encodings == "rope" and self.head_dim % 2:
            errors.append(f"RoPE needs an even hidden_size/num_heads, got {self.head_dim}")
        return errors

    def _resolve_defaults(self) -> None:
        """Fill in the derived defaults, so that a saved config reproduces the model exactly."""
        if self.is_grid and self.seq_len is None:
            object.__setattr__(self, "seq_len", self.grid_height * self.grid_width)
        if self.vocab_out is None:
            object.__setattr__(self, "vocab_out", self.vocab_size)
        if self.q_source is None:
            only_local = self.block == "conv" and self.n_prefix_tokens == 0
            object.__setattr__(self, "q_source", "mean" if only_local else "first")


class _FieldChecks:
    """Type and range checks of a config's fields, collecting one message per bad field."""

    def __init__(self, config: HRMACTv1Config):
        self.config = config
        self.errors: list[str] = []

    def integer(self, name: str, low: int, optional: bool = False) -> None:
        value = getattr(self.config, name)
        if optional and value is None:
            return
        if not _is_int(value) or value < low:
            self.errors.append(f"{name}={value!r} must be an integer >= {low}")

    def number(self, name: str, low: float, high: float = math.inf, open_low: bool = False) -> None:
        value = getattr(self.config, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value <= high
        ok = ok and (value > low if open_low else value >= low)
        if not ok:
            bound = f"> {low}" if open_low else f">= {low}"
            if high != math.inf:
                bound += f" and <= {high}"
            self.errors.append(f"{name}={value!r} must be a number {bound}")

    def choice(self, name: str, choices: tuple[str, ...], optional: bool = False) -> None:
        value = getattr(self.config, name)
        if optional and value is None:
            return
        if value not in choices:
            self.errors.append(f"{name}={value!r} must be one of {list(choices)}")

    def flag(self, name: str) -> None:
        if not isinstance(getattr(self.config, name), bool):
            self.errors.append(f"{name}={getattr(self.config, name)!r} must be true or false")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


HRMACTv1Config.PRESETS.update(
    {
        # CPU default for the 16x16 grid envs with the action head (BC / PPO policies), picked
        # by measurement (BC on HRMForaging-v0 expert data, equal CPU time, 1 thread): hybrid
        # blocks (attention + 3x3 conv) over 2x2 patch tokens, the action read from the agent's
        # token, reached 0.94 optimal-action rate where CLS pooling stayed at chance (0.47) and
        # attention-only blocks reached 0.57; q_target="none" (no extra forward) trains ~1.7x
        # faster per sample than "bootstrap" at equal accuracy and halts after fewer segments.
        "cpu_grid16": dict(
            vocab_size=6,
            grid_height=16,
            grid_width=16,
            head="action",
            n_actions=4,
            pool="agent",
            agent_token=2,
            hidden_size=64,
            num_heads=4,
            expansion=4.0,
            mlp_multiple=64,
            H_layers=1,
            L_layers=1,
            H_cycles=2,
            L_cycles=2,
            patch_size=2,
            block="hybrid",
            halt_max_steps=4,
            halt_exploration_prob=0.1,
            q_target="none",
            pos_encodings="rope",
            forward_dtype="auto",
        ),
        # The published setting (DESIGN 3): add vocab_size and seq_len or a grid shape.
        "paper": dict(
            hidden_size=512,
            num_heads=8,
            expansion=4.0,
            H_layers=4,
            L_layers=4,
            H_cycles=2,
            L_cycles=2,
            halt_max_steps=16,
            halt_exploration_prob=0.1,
            pos_encodings="rope",
            block="attention",
            forward_dtype="auto",
        ),
    }
)
