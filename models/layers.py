"""The layers of the APR transformer: the base stack's blocks and the fp32 refinement block.

Kept apart from ``models.apr`` (the model and its routing) so each file reads in one sitting.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import APRConfig


class KVCache:
    """Keys/values of one attention layer, grown one step at a time while generating.

    Kept in a buffer with room for ``SPARE`` more columns: appending a step's column then
    writes it in place, where concatenating copied the whole cache at every step."""

    SPARE = 64

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None
        self.n = 0  # columns in use

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        new = k.size(2)
        if self.k is None or self.v is None or self.n + new > self.k.size(2):
            self.k, self.v = (self._grown(old, new, k) for old in (self.k, self.v))
        self.k[:, :, self.n : self.n + new] = k
        self.v[:, :, self.n : self.n + new] = v
        self.n += new
        return self.k[:, :, : self.n], self.v[:, :, : self.n]

    def _grown(self, old: Tensor | None, new: int, like: Tensor) -> Tensor:
        B, H, _, D = like.shape
        buf = like.new_empty(B, H, self.n + new + self.SPARE, D)
        if old is not None:
            buf[:, :, : self.n] = old[:, :, : self.n]
        return buf

    def select(self, rows: Tensor) -> None:
        """Keep only these batch rows (the others finished generating)."""
        if self.k is not None and self.v is not None:
            self.k, self.v = self.k[rows], self.v[rows]


class MLP(nn.Module):
    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=False)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


# see CausalSelfAttention.forward; benchmarks/train_speed.py turns it off to time the bf16 kernel
CPU_ATTENTION_FP32 = True


def attention_in_fp32(device_type: str, cached: bool) -> bool:
    """Whether attention (and so its additive mask) runs in fp32 under a bf16 base."""
    return cached or (CPU_ATTENTION_FP32 and device_type == "cpu")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(
        self, x: Tensor, cache: KVCache | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """mask: (B, 1, T, S) keys each query may see (left-padded rows); None: causal."""
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in self.qkv(x).split(C, 2))
        if cache is not None:  # generating: the cache keeps keys and values in fp32 (below)
            k, v = cache.append(k.float(), v.float())
        if k.size(2) != T and T != 1 and mask is None:  # causal alone cannot say which keys
            raise ValueError("multi-token steps on a filled cache need a mask")
        p = self.dropout if self.training else 0.0
        # attention runs in fp32 while generating and on the CPU: a cache's keys and values are
        # kept in fp32 (a step's one query against a long cache ran ~3x slower in bf16 on the
        # CPU, benchmarks/batching.py), and in training the CPU's bf16 flash attention took
        # ~1.5x its fp32 at these head widths (a whole step ~1.13x, benchmarks/train_speed.py);
        # so training now reads as generation always did
        fp32 = attention_in_fp32(x.device.type, cache is not None)
        if fp32:
            q, k, v = q.float(), k.float(), v.float()
        with torch.autocast(x.device.type, enabled=False) if fp32 else nullcontext():
            if mask is not None:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            else:  # one new token attends to every cached position: no mask needed then
                causal = k.size(2) == T > 1
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn, self.mlp = CausalSelfAttention(cfg), MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, cache: KVCache | None = None, mask: Tensor | None = None
    ) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), cache, mask))
        return x + self.mlp(self.ln2(x))


class RefineBlock(nn.Module):
    """Pre-LN block whose queries are routed tokens and keys/values are all positions.

    Keys/values are computed for every position, routed or not, so they use few heads
    (``refine_kv_heads``; 1 = multi-query) shared by the query heads: a full-width projection
    in fp32 would cost more than the routed work.
    """

    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        d, self.n_head, self.n_kv = cfg.d_model, cfg.n_head, cfg.refine_kv_heads
        self.head_dim = d // cfg.n_head
        self.ln_q, self.ln_kv, self.ln2 = (nn.LayerNorm(d) for _ in range(3))
        self.q = nn.Linear(d, d, bias=False)
        self.kv = nn.Linear(d, 2 * self.n_kv * self.head_dim, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp = MLP(cfg)

    def keys_values(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S, d) base hidden states -> keys and values, each (B, n_kv, S, head_dim)."""
        B, S, _ = h.shape
        kv = self.kv(self.ln_kv(h)).view(B, S, 2 * self.n_kv, self.head_dim).transpose(1, 2)
        k, v = kv.split(self.n_kv, dim=1)
        return k, v

    def forward(
        self,
        x: Tensor,
        where: tuple[Tensor, Tensor],
        qpos: Tensor,
        k: Tensor,
        v: Tensor,
        real: Tensor | None = None,
    ) -> Tensor:
        """x: (N, d) packed routed tokens; where: their (row, slot) in the padded (B, M)
        layout that attention needs; qpos: (B, M) columns of the slots; real: (B, S) which
        columns are tokens, not padding (padding is never attended to)."""
        (B, M), C = qpos.shape, x.size(-1)
        # only attention sees the padded layout: per-token work runs on the N real tokens
        q = x.new_zeros(B, M, C).index_put(where, self.q(self.ln_q(x)))
        q = q.view(B, M, self.n_head, -1).transpose(1, 2)
        # a routed token at original position t sees positions <= t
        cols = torch.arange(k.size(2), device=x.device)
        mask = cols <= qpos.unsqueeze(-1)
        if real is not None:  # a slot always sees its own column: no empty row, no NaN
            mask = (mask & real[:, : k.size(2)].unsqueeze(1)) | (cols == qpos.unsqueeze(-1))
        # each key/value head serves n_head / n_kv query heads (grouped-query attention)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1), enable_gqa=True)
        x = x + self.proj(y.transpose(1, 2)[where].reshape(-1, C))
        return x + self.mlp(self.ln2(x))
