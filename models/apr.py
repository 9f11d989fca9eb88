"""Adaptive Precision Routing (APR) transformer, in one file (in the spirit of nanoGPT).

A decoder-only transformer whose base stack runs every token in bf16 (fp32 on a CPU that only
emulates bf16: ``models.precision``). A tiny estimator reads an intermediate hidden state and
scores "the base prediction here is wrong"; tokens whose score passes a threshold are gathered
and run through extra refinement layers in fp32 (queries: the routed tokens; keys/values: every
position of the final base hidden state, causally masked by original position), then scattered
back. The threshold is per token, never a top-k over the sequence, so the decision at position
t depends only on tokens <= t and works while generating.

With ``n_slots`` > 0 the logits of the slot tokens (``models.tokenizer``'s pointers to values
the document states) come from a pointer head instead of the vocabulary projection: the logit
of slot s is the score of attending to where s stands, so copying a stated value is learning
where to look, not learning to reproduce an id (as in pointer networks). The base stack points
from its final state; a routed token points again from its refined state.

Modes share all code: "dense" routes nothing, "all" routes every token, "random" routes the
same fraction by a deterministic hash of (position, token), "apr" routes by estimator score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import APRConfig
from models.layers import Block, KVCache, RefineBlock, attention_in_fp32
from models.modes import MODES, Mode
from models.pointer import LocalMix, Pointer, PointerCache
from models.precision import base_precision


@dataclass
class APROutput:
    # (B, T, V); with targets, (N, V) at the N positions the loss reads: the output head is
    # most of a step for a small model, and a loss over answer tokens reads ~6% of positions
    base_logits: Tensor  # bf16, from the base stack
    logits: Tensor  # fp32: refined where routed, base elsewhere
    est_scores: Tensor  # (B, T) fp32 in [0, 1]: estimated P(base prediction is wrong)
    routed: Tensor  # (B, T) bool
    loss: Tensor | None = None
    metrics: dict[str, Tensor] = field(default_factory=dict)


def packed(mask: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
    """(B, T) mask -> its cells' rows and columns in row-major order, each cell's slot among
    its row's cells, and the most cells a row has: the padded (B, M) layout of a ragged pick."""
    rows, cols = mask.nonzero(as_tuple=True)
    counts = mask.sum(1)
    slot = torch.arange(rows.numel(), device=mask.device) - (counts.cumsum(0) - counts)[rows]
    return rows, cols, slot, int(counts.max()) if counts.numel() else 0


class _Pass(NamedTuple):
    base_logits: Tensor
    logits: Tensor
    est: Tensor  # estimator logits
    est_scores: Tensor  # their sigmoid: what routing thresholds
    routed: Tensor
    h_probe: Tensor  # the probe state the estimator read (B, T, d)


REST_SHARE = 0.25  # of a batch's rows done before they leave it while generating


class _Outputs:
    """What ``generate`` wrote for every original row, while rows leave the batch."""

    def __init__(self, B: int, n: int, device: torch.device, stop: int | None) -> None:
        self.tokens = torch.full((B, n), -1 if stop is None else stop, device=device)
        self.scores = torch.zeros(B, n, device=device)
        self.routed = torch.zeros(B, n, dtype=torch.bool, device=device)
        self.probs = torch.zeros(B, n, device=device)
        self.entropy = torch.zeros(B, n, device=device)
        self.steps = 0

    def write(
        self, rows: Tensor, i: int, tok: Tensor, score: Tensor, routed: Tensor, logp: Tensor
    ) -> None:
        self.tokens[rows, i] = tok
        self.scores[rows, i] = score.float()
        self.routed[rows, i] = routed
        self.probs[rows, i] = logp.max(-1).values.exp()
        self.entropy[rows, i] = -(logp.exp() * logp).sum(-1)
        self.steps = i + 1

    def generation(self) -> Generation:
        n = self.steps
        return Generation(
            self.tokens[:, :n],
            self.scores[:, :n],
            self.routed[:, :n],
            self.probs[:, :n],
            self.entropy[:, :n],
        )


@dataclass
class Generation:
    tokens: Tensor  # (B, n) generated ids; after the stop token, filled with the stop token
    scores: Tensor  # (B, n) estimator score at the position that predicted each token
    routed: Tensor  # (B, n) whether that prediction went through refinement
    # the model's own baselines for abstention: the probability of each chosen token and the
    # entropy (nats) of the distribution it was chosen from
    probs: Tensor | None = None  # (B, n)
    entropy: Tensor | None = None  # (B, n)


class APRTransformer(nn.Module):
    ema_threshold: Tensor
    route_threshold: Tensor
    step: Tensor
    q_last: Tensor
    q_trend: Tensor

    def __init__(self, cfg: APRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.build_base()
        h = cfg.estimator_hidden
        hidden: list[nn.Module] = [nn.Linear(d, h), nn.GELU()] if h else []
        self.est_features = nn.Sequential(nn.LayerNorm(d), *hidden)
        self.est_out = nn.Linear(h or d, 1)
        self.refine = nn.ModuleList(RefineBlock(cfg) for _ in range(cfg.n_refine))
        self.ln_r = nn.LayerNorm(d)  # the refined head: ln_r + lm_head, in fp32
        self.pointer = Pointer(cfg) if cfg.n_slots else None
        self.local = LocalMix(cfg) if cfg.local_window > 1 else None
        mix = cfg.clause_mix and self.pointer is not None and self.pointer.clause is not None
        self.clause_in = (
            nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d, bias=False)) if mix else None
        )
        # -inf: no quantile seen yet, route everything (the warm-up starts at fraction 1.0)
        self.register_buffer("ema_threshold", torch.tensor(float("-inf")))
        # NaN: not calibrated; inference then falls back to the training EMA threshold
        self.register_buffer("route_threshold", torch.tensor(float("nan")))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))
        # the last training threshold's logit, and the feedback correction of the quantile
        # level (integral of routed - target): both kept in checkpoints, so a resumed run
        # goes on routing as before while its window of probe states refills
        self.register_buffer("q_last", torch.tensor(float("nan")))
        self.register_buffer("q_trend", torch.tensor(0.0))
        self._window: list[Tensor] = []  # fp32 probe states of recent batches' counted tokens
        self.init_weights()

    def build_base(self) -> None:
        """The base stack: embeddings, blocks, final norm and the vocabulary head
        (``models.hf`` puts a Hugging Face causal LM here instead)."""
        cfg, d = self.cfg, self.cfg.d_model
        self.wte = nn.Embedding(cfg.vocab_size, d)
        self.wpe = nn.Embedding(cfg.max_seq_len, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(d)
        # not tied to wte, so the state_dict has no shared tensors (safetensors-friendly)
        self.lm_head = nn.Linear(d, cfg.vocab_size, bias=False)

    def init_weights(self) -> None:
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2 scaled init of residual projections
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * self.cfg.n_layer))
        for name, p in self.refine.named_parameters():
            if name.endswith("proj.weight"):  # zero-init: a fresh refinement path = the base
                nn.init.zeros_(p)

    def merge_adapters(self) -> None:
        """Nothing to fold in: adapters are a Hugging Face base's (``models.hf``)."""

    def new_caches(self) -> list[KVCache]:
        """One key/value cache per base block, for ``generate``."""
        return [KVCache() for _ in self.blocks]

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    # ---- routing ---------------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        """The registry's entry for ``cfg.mode``, read at each call: ``benchmarks/apr.py`` times
        one trained model in every mode by setting ``model.cfg.mode``."""
        return MODES[self.cfg.mode]

    def route_target(self, step: int | None = None) -> float:
        """Fraction to route at `step` (default: now): linear capacity warm-up from 1.0 while
        training, the target after."""
        f = self.cfg.route_fraction
        if not self.training or self.cfg.warmup_steps <= 0:
            return f
        w = min(1.0, (int(self.step) if step is None else step) / self.cfg.warmup_steps)
        return 1.0 + (f - 1.0) * w

    def threshold(self) -> Tensor:
        if self.training:
            return self.ema_threshold
        return torch.where(self.route_threshold.isnan(), self.ema_threshold, self.route_threshold)

    @torch.no_grad()
    def calibrate_threshold(self, scores: Tensor, fraction: float | None = None) -> float:
        """Set the inference threshold so `fraction` of these validation scores
        (APROutput.est_scores at the positions that count) pass it."""
        f = self.cfg.route_fraction if fraction is None else fraction
        q = torch.quantile(scores.detach().float().flatten(), 1.0 - f)
        self.route_threshold.fill_(q.item())
        return float(q)

    def scores(self, h_probe: Tensor) -> tuple[Tensor, Tensor]:
        """-> (estimator logits, scores = P(base prediction wrong)), from the detached probe
        state, in fp32: it is tiny, and a threshold on bf16-rounded scores would tie often."""
        with torch.autocast(h_probe.device.type, enabled=False):
            logits = self.est_out(self.est_features(h_probe.detach().float())).squeeze(-1)
        return logits, torch.sigmoid(logits)

    def route(self, route_scores: Tensor, idx: Tensor, pos: Tensor) -> Tensor:
        """Per-token decision; uses only this token's own score/id/position (causal)."""
        return self.mode.route(self, route_scores, idx, pos)

    def routing_seed(self) -> int:
        """Random routing draws anew each training step, and the same way at inference."""
        return int(self.step) if self.training else 0

    @torch.no_grad()
    def _refresh_threshold(self) -> None:
        """Training threshold for this step, set BEFORE the batch is seen: the (1 - target)
        quantile of the current estimator's scores on the probe states of the last few
        batches (a running quantile over a sliding window, rescored every step).

        While the estimator learns, its scores drift together by more per step than they
        differ between tokens. Any threshold carried over from earlier scores (an EMA of batch
        quantiles, even with a trend forecast) then lags or overshoots into routing all or
        nothing. Rescoring past tokens with this step's estimator removes the drift; the window
        smooths the sampling noise of one small batch. The batch's own tokens never enter, so
        each token's decision is its own score against a threshold fixed beforehand (causal)."""
        f = self.route_target()
        if f >= 1.0:  # capacity warm-up starts by routing everything
            self.ema_threshold.fill_(float("-inf"))
            return
        if not self._window:  # fresh or resumed: keep the last threshold until states arrive
            return
        # scored as routing scores tokens (fp32, outside a trainer's autocast): a quantile of
        # bf16-rounded logits would set a threshold on values routing never compares with
        logits, _ = self.scores(torch.cat(self._window))
        level = min(1.0, max(0.0, 1.0 - f + float(self.q_trend)))
        q = torch.quantile(logits, level)
        self.q_last.copy_(q)
        self.ema_threshold.copy_(torch.sigmoid(q))

    @torch.no_grad()
    def _remember(self, h_probe: Tensor, valid: Tensor, routed: Tensor) -> None:
        """Keep this batch's counted probe states (at most 4096) for the next thresholds, and
        correct the quantile level by what this batch really routed. The base stack learns
        too, so this batch's probe states are not distributed like the window's; the
        correction (an integral controller on routed - target, in quantile units) removes
        that systematic offset within a few steps."""
        f = self.route_target()
        if valid.any() and f < 1.0 and not self.q_last.isnan():
            err = float((routed & valid).sum() / valid.sum()) - f
            gain = self.cfg.threshold_feedback
            self.q_trend.copy_((self.q_trend + gain * err).clamp(-(1.0 - f), f))
        if valid.any() and self.cfg.threshold_window > 0:
            self._window.append(h_probe[valid].detach().float()[-4096:])
            del self._window[: -self.cfg.threshold_window]

    # ---- the network -----------------------------------------------------------------------
    def positions(self, cols: Tensor, real: Tensor | None) -> Tensor:
        """Each token's position in its own row: how many of the row's real tokens (``real``:
        (B, S) columns that are not padding) stand before its column."""
        if real is None:
            if int(cols[-1]) >= self.cfg.max_seq_len:
                raise ValueError(f"sequence longer than max_seq_len={self.cfg.max_seq_len}")
            return cols.unsqueeze(0)
        # a row past its own budget keeps being fed until the batch ends; its tokens are
        # never read, so its positions stop at the last one instead of overflowing
        pos = real.long().cumsum(1)[:, cols] - 1
        return pos.clamp(0, self.cfg.max_seq_len - 1)

    @staticmethod
    def key_mask(cols: Tensor, real: Tensor) -> Tensor:
        """(B, 1, T, S): the keys each query column may see, causal and real (a padding column
        sees itself alone: no empty row)."""
        keys = torch.arange(int(cols[-1]) + 1, device=cols.device)
        causal = keys <= cols.unsqueeze(1)
        seen = causal.unsqueeze(0) & real[:, : keys.numel()].unsqueeze(1)
        return (seen | (keys == cols.unsqueeze(1))).unsqueeze(1)

    def base(
        self,
        idx: Tensor,
        pos0: int = 0,
        caches: list[KVCache] | None = None,
        pcache: PointerCache | None = None,
        real: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """Base stack in bf16 autocast (fp32 where bf16 is emulated: `models.precision`) ->
        (probe state, final residual state, base logits, the pointer's keys and slots of every
        position so far). ``real``: (B, S) which columns so far are tokens, not padding
        (batched answers). ``keep``: (B, T) positions whose logits are wanted, packed (N, V);
        None: all."""
        cols = torch.arange(pos0, pos0 + idx.size(1), device=idx.device)
        pos = self.positions(cols, real)
        bf16 = base_precision(idx.device.type) == "bf16"
        mask = None
        if real is not None:  # added to the scores: every layer would turn a bool mask into this
            fp32 = not bf16 or attention_in_fp32(idx.device.type, caches is not None)
            dtype = torch.float32 if fp32 else torch.bfloat16
            seen = self.key_mask(cols, real)
            mask = seen.new_zeros(seen.shape, dtype=dtype).masked_fill_(~seen, float("-inf"))
        with torch.autocast(idx.device.type, dtype=torch.bfloat16, enabled=bf16):
            x = self.wte(idx)
            here = None if real is None else real[:, cols]  # this pass's columns
            if here is not None:  # a padding column reads as the nothing before a sequence
                x = x.masked_fill(~here.unsqueeze(-1), 0.0)
            words = self.clause_words(x, idx, here, pcache)
            if self.local is not None:
                # the padding before each row's first token in this pass
                lead = None if here is None else (here.long().cumsum(1) == 0).sum(1)
                x, recent = self.local(x, None if pcache is None else pcache.recent, lead)
                if pcache is not None:
                    pcache.recent = recent
            if self.clause_in is not None and words is not None:
                x = x + self.clause_input(words, here)
            x = self.drop(x + self.wpe(pos))
            h_probe = x
            for i, blk in enumerate(self.blocks):
                x = blk(x, None if caches is None else caches[i], mask)
                if i == self.cfg.probe_layer:
                    h_probe = x
            logits = self.vocab_head(self.ln_f(x if keep is None else x[keep]))
            logits, pointed = self.point(x, idx, cols, logits, pcache, keep, words)
        return h_probe, x, logits, pointed

    def clause_words(
        self, emb: Tensor, idx: Tensor, real: Tensor | None, pcache: PointerCache | None
    ) -> Tensor | None:
        """Each position's clause read for the pointer's keys, and with ``clause_mix`` for every
        input (None without one); a cache carries the open clause to the next pass."""
        clause = None if self.pointer is None else self.pointer.clause
        if clause is None:
            return None
        words, carry = clause(emb, idx, real, None if pcache is None else pcache.clause)
        if pcache is not None:
            pcache.clause = carry
        return words

    def clause_input(self, words: Tensor, real: Tensor | None) -> Tensor:
        """The clause read as an input embedding (``clause_mix``); zero at padding columns,
        which read as the nothing before a sequence."""
        assert self.clause_in is not None
        mixed = cast(Tensor, self.clause_in(words))
        return mixed if real is None else mixed.masked_fill(~real.unsqueeze(-1), 0.0)

    def vocab_head(self, x: Tensor) -> Tensor:
        """Vocabulary logits of (normed) states: the base's head, also the refined tokens'."""
        return cast(Tensor, self.lm_head(x))

    def point(
        self,
        x: Tensor,
        idx: Tensor,
        cols: Tensor,
        logits: Tensor,
        pcache: PointerCache | None,
        keep: Tensor | None,
        words: Tensor | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """The slot tokens' logits from the pointer head (unchanged without one), and the
        pointer's keys and slots of every position so far (``words``: their clause reads)."""
        if self.pointer is None:
            return logits, None
        keys, slots = self.pointer.keys(x, idx, words)
        pointed = (keys, slots) if pcache is None else pcache.append(keys, slots)
        if keep is None:
            qpos = cols.unsqueeze(0).expand(idx.size(0), -1)
            return self.pointer.merge(logits, self.pointer.logits(x, qpos, *pointed)), pointed
        # only the positions whose logits are wanted ask (answer tokens in training, the last
        # column of a prompt): the pointer compares each query with every position
        b, t, slot, m = packed(keep)
        hq = x.new_zeros(x.size(0), m, x.size(-1)).index_put((b, slot), x[b, t])
        qpos = cols.new_zeros(x.size(0), m).index_put((b, slot), cols[t])
        slot_logits = self.pointer.logits(hq, qpos, *pointed)[b, slot]
        return self.pointer.merge(logits, slot_logits), pointed

    def refined(
        self,
        h: Tensor,
        routed: Tensor,
        pos0: int = 0,
        caches: list[KVCache] | None = None,
        pointed: tuple[Tensor, Tensor] | None = None,
        real: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """fp32 refinement of the routed tokens -> (batch idx, position idx, logits) or None."""
        B = h.size(0)
        with torch.autocast(h.device.type, enabled=False):
            hf = h.float()
            blocks = cast(list[RefineBlock], list(self.refine))
            kvs = [blk.keys_values(hf) for blk in blocks]
            if caches is not None:  # every position's K/V is kept: later tokens may need it
                kvs = [c.append(k, v) for c, (k, v) in zip(caches, kvs, strict=True)]
            b_idx, t_idx, slot, m = packed(routed)
            if b_idx.numel() == 0:
                return None
            # padded slots keep position 0: they attend to one key (no NaN) and are never read
            qpos = routed.new_zeros((B, m), dtype=torch.long)
            qpos = qpos.index_put((b_idx, slot), t_idx + pos0)
            x = hf[b_idx, t_idx]
            for blk, (k, v) in zip(blocks, kvs, strict=True):
                x = blk(x, (b_idx, slot), qpos, k, v, real)
            logits = self.vocab_head(self.ln_r(x))
            if self.pointer is not None and pointed is not None:
                # routed tokens point again from their refined state, in the padded layout
                xq = x.new_zeros(B, qpos.size(1), x.size(-1)).index_put((b_idx, slot), x)
                slot_logits = self.pointer.logits(xq, qpos, pointed[0].float(), pointed[1])
                logits = self.pointer.merge(logits, slot_logits[b_idx, slot])
        return b_idx, t_idx, logits

    def _run(
        self,
        idx: Tensor,
        pos0: int = 0,
        caches: list[KVCache] | None = None,
        rcaches: list[KVCache] | None = None,
        pcache: PointerCache | None = None,
        real: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> _Pass:
        h_probe, h, base_logits, pointed = self.base(idx, pos0, caches, pcache, real, keep)
        est, est_scores = self.scores(h_probe)
        cols = torch.arange(pos0, pos0 + idx.size(1), device=idx.device)
        routed = self.route(est_scores, idx, self.positions(cols, real).expand_as(idx))
        logits = base_logits.float()
        if self.mode.refines:
            # a routed position whose logits nobody reads is not refined: its refined state
            # feeds nothing else (every refinement block reads keys and values of base states)
            out = self.refined(
                h, routed if keep is None else routed & keep, pos0, rcaches, pointed, real
            )
            if out is not None:
                b_idx, t_idx, ref_logits = out
                if keep is None:
                    logits[b_idx, t_idx] = ref_logits  # in place: a fresh fp32 copy
                else:  # packed: the row of each kept position
                    row = torch.full_like(idx, -1)
                    row[keep] = torch.arange(logits.size(0), device=idx.device)
                    logits[row[b_idx, t_idx]] = ref_logits
        return _Pass(base_logits, logits, est, est_scores, routed, h_probe)

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, loss_mask: Tensor | None = None
    ) -> APROutput:
        """targets: next-token ids (B, T), negative = ignore; loss_mask: (B, T), 1 = counts."""
        train_apr = self.training and self.mode.learns_threshold and targets is not None
        if train_apr:
            self._refresh_threshold()
        valid = None
        if targets is not None:
            valid = targets >= 0
            if loss_mask is not None:
                valid = valid & loss_mask.bool()
        p = self._run(idx, keep=valid)
        out = APROutput(p.base_logits, p.logits, p.est_scores, p.routed)
        routed, est = p.routed, p.est
        if targets is None or valid is None:
            out.metrics = {"routed_fraction": routed.float().mean()}
            return out
        if train_apr:
            self._remember(p.h_probe, valid, p.routed)
        if self.training:
            self.step += 1
        out.loss, out.metrics = self._loss(out, est, targets, valid)
        return out

    def _loss(
        self, out: APROutput, est: Tensor, targets: Tensor, valid: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        n = valid.sum().clamp(min=1)
        t = targets[valid]  # the logits are packed at the valid positions, in order
        ce_base = F.cross_entropy(out.base_logits.float(), t, reduction="sum") / n
        ce_final = F.cross_entropy(out.logits, t, reduction="sum") / n
        with torch.no_grad():  # the estimator's target: is the base argmax wrong here?
            base_ok, final_ok = torch.zeros_like(valid), torch.zeros_like(valid)
            base_ok[valid] = out.base_logits.argmax(-1) == t
            final_ok[valid] = out.logits.argmax(-1) == t
        bce = F.binary_cross_entropy_with_logits(est, (~base_ok).float(), reduction="none")
        bce = (bce * valid).sum() / n
        loss = self.cfg.lambda_base * ce_base + ce_final + self.cfg.lambda_est * bce

        def frac(x: Tensor) -> Tensor:
            return (x & valid).sum() / n

        metrics = {
            "ce_base": ce_base.detach(),
            "ce_final": ce_final.detach(),
            "bce_est": bce.detach(),
            "base_acc": frac(base_ok),
            "final_acc": frac(final_ok),
            "routed_fraction": frac(out.routed),
            "threshold": self.threshold().detach().clone(),
        }
        return loss, metrics

    # ---- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        stop_token: int | None = None,
        pad: Tensor | None = None,
        budget: Tensor | None = None,
        shared: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> Generation:
        """Greedy decoding with a KV cache; each new token is routed like in forward().

        A batch of prompts of different lengths is left-padded: ``pad`` (B,) says how many
        columns of each row are padding (never attended to, never copied from; positions count
        from each row's first token), ``budget`` (B,) how many tokens each row may write. A row
        is done when it writes ``stop_token`` or spends its budget; done rows rest (their new
        columns padding, no logits) until ``REST_SHARE`` of the batch is done, then leave it
        together (their caches dropped), so a long answer does not keep the finished rows
        computing. Each row is decoded as it would be alone; after it is done it reads
        ``stop_token``.

        ``shared``: (prefixes (P, L) left-padded, their padding (P,), each row's prefix (B,)):
        row b's prompt is its prefix's tokens, then ``idx[b]``. A prefix several rows share (a
        document asked several questions) goes through the model once, in a batch of prefixes;
        its caches are then copied to each of its rows, which read only their own tokens."""
        caches = self.new_caches()
        rcaches = [KVCache() for _ in self.refine]
        pcache = PointerCache()
        B, T0 = idx.shape
        cols = torch.arange(T0, device=idx.device)
        real = None if pad is None else cols >= pad.unsqueeze(1)
        pos0 = 0
        if shared is not None:
            mine = torch.ones_like(idx, dtype=torch.bool) if real is None else real
            pos0, real = self._read_prefixes(shared, caches, rcaches, pcache, mine)
        out = _Outputs(B, max_new_tokens, idx.device, stop_token)
        alive = torch.arange(B, device=idx.device)  # the original row of each row still going
        # a prompt's logits are wanted at its last column only: the vocabulary head, the
        # pointer and refinement skip every other column
        last = torch.zeros_like(idx, dtype=torch.bool)
        last[:, -1] = True
        p = self._run(idx, pos0, caches, rcaches, pcache, real, keep=last)
        # rows that are done but still in the batch: they leave it only when enough are done
        # (moving every cache for each row that finishes cost more than carrying a few)
        resting = torch.zeros(B, dtype=torch.bool, device=idx.device)
        for i in range(max_new_tokens):
            logp = torch.log_softmax(p.logits.float(), -1)  # the rows still writing, packed
            going = ~resting
            nxt = torch.full_like(going, stop_token or 0, dtype=torch.long)
            nxt[going] = logp.argmax(-1)
            est, routed = p.est_scores[going, -1], p.routed[going, -1]
            out.write(alive[going], i, nxt[going], est, routed, logp)
            done = resting.clone()
            if stop_token is not None:
                done |= nxt == stop_token
            if budget is not None:
                done |= budget <= i + 1
            # without budgets, the longest row ends the batch at the model's last position
            # (the tokens in the longest row: every column of it without padding)
            full = (
                budget is None
                and (T0 + i if real is None else int(real.sum(1).max())) >= self.cfg.max_seq_len
            )
            if bool(done.all()) or i == max_new_tokens - 1 or full:
                break
            n_done = int(done.sum())
            # without a padding mask a resting row's positions would go on: it leaves at once
            if n_done and (real is None or REST_SHARE * done.numel() <= n_done):
                keep = (~done).nonzero().squeeze(1)
                alive, nxt, done = alive[keep], nxt[keep], done[keep]
                real = None if real is None else real[keep]
                budget = None if budget is None else budget[keep]
                for cache in (*caches, *rcaches):
                    cache.select(keep)
                pcache.select(keep)
            resting = done
            step = nxt.unsqueeze(1)
            if real is not None:  # a resting row's new column is padding: nobody reads it
                real = torch.cat([real, ~resting.unsqueeze(1)], 1)
            p = self._run(
                step, pos0 + T0 + i, caches, rcaches, pcache, real, keep=~resting.unsqueeze(1)
            )
        return out.generation()

    def _read_prefixes(
        self,
        shared: tuple[Tensor, Tensor, Tensor],
        caches: list[KVCache],
        rcaches: list[KVCache],
        pcache: PointerCache,
        real: Tensor,
    ) -> tuple[int, Tensor]:
        """Run the shared prefixes once and copy their caches to the rows that read each ->
        (the columns they take, which columns of each row are real so far)."""
        prefixes, ppad, of = shared
        L = prefixes.size(1)
        preal = torch.arange(L, device=prefixes.device) >= ppad.unsqueeze(1)
        nothing = torch.zeros_like(prefixes, dtype=torch.bool)  # no logits wanted in a prefix
        self._run(prefixes, 0, caches, rcaches, pcache, preal, keep=nothing)
        for cache in (*caches, *rcaches):
            cache.select(of)
        pcache.select(of)
        return L, torch.cat([preal[of], real], 1)

    # ---- cost model ------------------------------------------------------------------------
    def flops_per_token(self, routed_fraction: float, seq_len: int | None = None) -> float:
        """Forward matmul FLOPs per token (2 per multiply-add), causal attention counted at its
        average context (T + 1) / 2. Training costs ~3x this (forward + backward)."""
        c = self.cfg
        d, V, hd = c.d_model, c.vocab_size, c.d_model // c.n_head
        ctx = ((seq_len or c.max_seq_len) + 1) / 2
        layer = 24 * d * d + 4 * d * ctx  # qkv + proj + mlp, then QK^T and AV
        pointer = (8 * d * d + 2 * d * ctx) if c.n_slots else 0  # q and k; scores
        if self.pointer is not None and self.pointer.clause is not None:
            pointer += 2 * d * d  # the clause read's key projection, at every position
        if self.clause_in is not None:
            pointer += 2 * d * d  # its input projection, at every position
        base = c.n_layer * layer + 2 * d * V + pointer
        h = c.estimator_hidden
        est = 2 * d * h + 2 * h if h else 2 * d
        if routed_fraction <= 0 or not self.mode.refines:
            return float(base + est)
        kv = c.n_refine * 2 * d * 2 * hd * c.refine_kv_heads  # K/V for every position
        per_routed = c.n_refine * (20 * d * d + 4 * d * ctx) + 2 * d * V
        per_routed += (4 * d * d + 2 * d * ctx) if c.n_slots else 0  # the refined pointer query
        return float(base + est + kv + routed_fraction * per_routed)
