"""Copying stated values: the pointer head over slot tokens, and the local mix that lets each
slot know the words before it (both optional parts of ``models.apr``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import APRConfig

NEG = -1e4  # the logit of a slot the document has not stated (finite: safe in bf16)


class Pointer(nn.Module):
    """Copy attention over earlier positions, reduced to one logit per slot token."""

    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        self.n, self.offset, self.scale = cfg.n_slots, cfg.slot_offset, cfg.d_model**-0.5
        self.ln_q, self.ln_k = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.k = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.clause = ClauseRead(cfg) if cfg.clause_read else None

    def keys(self, h: Tensor, idx: Tensor, words: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T, d) states and ids -> keys and each position's slot (``n`` = not a slot).
        words: (B, T, d) the clause read of each position (``ClauseRead``), added to its key."""
        slot = idx - self.offset
        keys = self.k(self.ln_k(h))
        if self.clause is not None and words is not None:
            keys = keys + self.clause.key(words)
        return keys, torch.where((slot >= 0) & (slot < self.n), slot, self.n)

    def logits(self, hq: Tensor, qpos: Tensor, keys: Tensor, slots: Tensor) -> Tensor:
        """(B, M, d) query states at positions qpos (B, M) -> (B, M, n_slots) slot logits: the
        best score over the visible positions holding each slot."""
        scores = (self.q(self.ln_q(hq)) @ keys.transpose(1, 2).to(hq.dtype)) * self.scale
        visible = torch.arange(keys.size(1), device=hq.device) <= qpos.unsqueeze(-1)
        scores = scores.masked_fill(~visible, NEG)
        index = slots.unsqueeze(1).expand(-1, hq.size(1), -1)
        best = scores.new_full((*hq.shape[:2], self.n + 1), NEG)
        return best.scatter_reduce(2, index, scores, "amax")[..., : self.n]

    def merge(self, logits: Tensor, slot_logits: Tensor) -> Tensor:
        lo, hi = self.offset, self.offset + self.n
        return torch.cat([logits[..., :lo], slot_logits.to(logits.dtype), logits[..., hi:]], -1)


class LocalMix(nn.Module):
    """A depthwise causal convolution over the token embeddings: every position starts out
    knowing the few words before it, so "awarded: $ <v3>" makes <v3> an *awarded* value at
    layer 0 instead of after a previous-token circuit has been learned."""

    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        self.window = cfg.local_window
        self.conv = nn.Conv1d(cfg.d_model, cfg.d_model, self.window, groups=cfg.d_model, bias=False)

    def forward(
        self, x: Tensor, past: Tensor | None, lead: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x: (B, T, d) embeddings; past: the previous window-1 embeddings (None: none);
        lead: (B,) padding columns before each row's first token in x (zero embeddings): the
        past goes right before that token, as if there were no padding between.
        -> mixed embeddings, and the window-1 embeddings to carry to the next step."""
        w = self.window - 1
        pad = x.new_zeros(x.size(0), w, x.size(2)) if past is None else past.to(x.dtype)
        full = torch.cat([pad, x], 1)
        if past is not None and lead is not None and bool(lead.any()):
            j = torch.arange(full.size(1), device=x.device)
            n = lead.unsqueeze(1)
            # [past, padding, tokens] -> [padding, past, tokens]
            src = torch.where(j < n, j + w, torch.where(j < n + w, j - n, j))
            full = full.gather(1, src.unsqueeze(-1).expand(-1, -1, full.size(2)))
        mixed = self.conv(full.transpose(1, 2)).transpose(1, 2)
        return x + mixed, full[:, full.size(1) - w :]


class ClauseRead(nn.Module):
    """Each position's mean embedding of the words since its clause began (after the last
    value, digit, marker or sentence end), itself not counted: a slot's clause read is the
    words before its value in that clause as a bag, so "Revenue amounted to $ <v1>" and
    "Revenue stood at $ <v1>" give <v1> nearly one key, whichever words join the label to it.
    Causal, and carried across generation steps like the local mix's window. With
    ``clause_mix`` every position's input embedding adds it too (``models.apr``)."""

    breaks: Tensor  # the ids that end a clause (a buffer: saved with the model)

    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        self.register_buffer("breaks", torch.tensor(cfg.clause_breaks, dtype=torch.long))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def key(self, words: Tensor) -> Tensor:
        return self.proj(self.ln(words.to(self.proj.weight.dtype)))

    def forward(
        self, emb: Tensor, idx: Tensor, real: Tensor | None, carry: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """emb: (B, T, d) token embeddings of ids idx; real: (B, T) which are tokens (None:
        all); carry: the running (sum, count) of the clause open before this pass ->
        (B, T, d) each position's clause read, and the running sum and count after it."""
        brk = torch.isin(idx, self.breaks)
        counted = ~brk
        if real is not None:  # padding neither ends a clause nor counts in it
            brk, counted = brk & real, counted & real
        if carry is None:
            B, _, d = emb.shape
            carry = (
                emb.new_zeros(B, d, dtype=torch.float32),
                emb.new_zeros(B, dtype=torch.float32),
            )
        # the open clause's sum and count stand in a column before this pass's first, which
        # never ends a clause: running sums over it, each position's read is its column's
        w = counted.unsqueeze(-1).float()
        s = torch.cumsum(torch.cat([carry[0].unsqueeze(1), emb.float() * w], 1), 1)
        n = torch.cumsum(torch.cat([carry[1].view(-1, 1, 1), w], 1), 1)
        brk = F.pad(brk, (1, 0))
        # the running sums at each position's last break (inclusive): subtracted, they restart
        cols = torch.arange(brk.size(1), device=idx.device)
        last = torch.where(brk, cols, -1).cummax(1).values
        at = last.clamp(min=0).unsqueeze(-1)
        opened = (last >= 0).unsqueeze(-1)
        s = s - torch.where(opened, s.gather(1, at.expand(-1, -1, s.size(2))), 0.0)
        n = n - torch.where(opened, n.gather(1, at), 0.0)
        # a position reads the clause before it: the running sums one column back
        return s[:, :-1] / n[:, :-1].clamp(min=1.0), (s[:, -1], n[:, -1, 0])


class PointerCache:
    """The pointer's keys and slot ids of every position so far, while generating (and the
    last embeddings the local mix needs)."""

    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.slots: Tensor | None = None
        self.recent: Tensor | None = None
        self.clause: tuple[Tensor, Tensor] | None = None  # ClauseRead's running sum and count

    def append(self, keys: Tensor, slots: Tensor) -> tuple[Tensor, Tensor]:
        self.keys = keys if self.keys is None else torch.cat([self.keys, keys], 1)
        self.slots = slots if self.slots is None else torch.cat([self.slots, slots], 1)
        return self.keys, self.slots

    def select(self, rows: Tensor) -> None:
        """Keep only these batch rows (the others finished generating)."""
        for name in ("keys", "slots", "recent"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[rows])
        if self.clause is not None:
            self.clause = (self.clause[0][rows], self.clause[1][rows])
