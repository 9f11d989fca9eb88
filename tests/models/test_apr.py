import copy
import io

import pytest
import torch

from models.apr import APRConfig, APRTransformer
from models.modes import MODES

torch.set_num_threads(1)  # tiny models: a second thread only adds contention
V, T = 40, 24


def tiny(mode: str = "apr", **kw: object) -> APRTransformer:
    torch.manual_seed(0)
    args: dict = dict(vocab_size=V, n_layer=2, n_head=2, d_model=32, n_refine=1, probe_layer=0)
    args.update(max_seq_len=32, warmup_steps=20, route_fraction=0.25, mode=mode)
    args.update(kw)
    return APRTransformer(APRConfig(**args))


def data(batch: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(6, V, (batch, T + 1), generator=g)
    return seq[:, :-1], seq[:, 1:]


# the pointer head over slot tokens 6..13 and the local mix of the last 3 embeddings
POINTER = {"n_slots": 8, "slot_offset": 6, "local_window": 3}
# refinement keys/values with one head per query head instead of one shared head
FULL_KV = {"refine_kv_heads": 2}
# slot keys that also read their clause: ids 0-13 (markers, slots) and 14-16 break a clause
CLAUSE = {**POINTER, "clause_read": True, "clause_breaks": list(range(17))}
# ... and every position's input embedding reads its clause too
CLAUSE_MIX = {**CLAUSE, "clause_mix": True}
EXTRAS = pytest.mark.parametrize(
    "extra",
    [{}, POINTER, {**POINTER, **FULL_KV}, CLAUSE, CLAUSE_MIX],
    ids=["vocab", "pointer", "pointer-kv2", "clause", "clause-mix"],
)


def prepared(mode: str, train: bool, **kw: object) -> APRTransformer:
    """A model whose router really splits tokens: trained a few steps, threshold set."""
    model = tiny(mode, **kw)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for i in range(25):
        out = model(*data(seed=100 + i))
        assert out.loss is not None
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    with torch.no_grad():
        scores = model.eval()(data(8, seed=7)[0]).est_scores
    model.calibrate_threshold(scores)
    # pin the training threshold too: this checks causality, not how well the EMA tracks
    model.ema_threshold.fill_(scores.quantile(0.5).item())
    return model.train(train)


@EXTRAS
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("mode", MODES)
def test_changing_future_tokens_changes_no_earlier_output(
    mode: str, train: bool, extra: dict[str, int]
) -> None:
    model = prepared(mode, train, **extra)
    x, y = data(batch=3, seed=3)
    cut = 11
    x2 = x.clone()
    x2[:, cut:] = (x2[:, cut:] + 7) % (V - 6) + 6
    # a training forward moves the threshold state (step, window of past probe states): run
    # the two alternatives from identical copies
    twin = copy.deepcopy(model)
    a = model(x, y)
    b = twin(x2, y)
    assert bool((y >= 0).all())  # every position's logits come back, packed in order
    for out in (a, b):
        out.base_logits, out.logits = (t.view(*y.shape, -1) for t in (out.base_logits, out.logits))
    for name in ("base_logits", "logits", "est_scores", "routed"):
        before, after = getattr(a, name)[:, :cut], getattr(b, name)[:, :cut]
        assert torch.equal(before, after), f"{name} before position {cut} saw the future"
    assert not torch.equal(a.logits[:, cut:], b.logits[:, cut:])
    routed = a.routed[:, :cut]
    if mode in ("apr", "random"):  # the test means something only if routing is mixed
        assert routed.any() and not routed.all()
    else:
        assert bool(routed.all()) == (mode == "all") and routed.any() == (mode == "all")


@EXTRAS
@pytest.mark.parametrize("mode", MODES)
def test_kv_cache_generation_equals_full_forward_greedy(mode: str, extra: dict[str, int]) -> None:
    model = prepared(mode, train=False, **extra)
    prompt = data(batch=2, seed=5)[0][:, :10]
    gen = model.generate(prompt, max_new_tokens=12)
    ids = prompt
    with torch.no_grad():
        for i in range(12):
            out = model(ids)
            nxt = out.logits[:, -1].argmax(-1)
            assert torch.equal(nxt, gen.tokens[:, i])
            assert torch.equal(out.routed[:, -1], gen.routed[:, i])
            # the cache is read through a view of a growing buffer, in fp32: the same sums in
            # another order, so scores agree to float rounding, not bit for bit
            torch.testing.assert_close(
                out.est_scores[:, -1], gen.scores[:, i], rtol=1e-4, atol=1e-4
            )
            ids = torch.cat([ids, nxt[:, None]], 1)
    if mode == "apr":
        assert gen.routed.any() and not gen.routed.all()


def test_pointer_logits_only_for_slots_already_seen() -> None:
    model = prepared("apr", train=False, **POINTER)
    x = torch.tensor([[20, 7, 21, 9, 22, 23]])  # slots 1 (id 7) and 3 (id 9) stated
    with torch.no_grad():
        out = model(x)
    slot_logits = out.logits[0, :, 6:14]
    unseen = [0, 2, 4, 5, 6, 7]
    assert (slot_logits[:, unseen] <= -1e3).all()  # never stated: cannot be pointed at
    assert (slot_logits[0, [1, 3]] <= -1e3).all()  # position 0 has seen no slot yet
    assert (slot_logits[1:, 1] > -1e3).all() and (slot_logits[3:, 3] > -1e3).all()
    assert (slot_logits[1:3, 3] <= -1e3).all()  # slot 3 only from where it stands on


def test_generation_stops_at_stop_token() -> None:
    model = prepared("apr", train=False)
    prompt = data(batch=2, seed=5)[0][:, :10]
    first = model.generate(prompt, max_new_tokens=6)
    stop = int(first.tokens[0, 2])
    gen = model.generate(prompt, max_new_tokens=6, stop_token=stop)
    row = gen.tokens[0].tolist()
    assert row[: row.index(stop) + 1] == first.tokens[0, : row.index(stop) + 1].tolist()
    assert all(t == stop for t in row[row.index(stop) :])


def test_routed_fraction_converges_to_target_after_warmup() -> None:
    model = tiny("apr", warmup_steps=30)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    fractions = []
    for i in range(90):
        out = model(*data(batch=8, seed=i))
        assert out.loss is not None
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        fractions.append(float(out.metrics["routed_fraction"]))
    assert fractions[0] == 1.0  # capacity warm-up starts by routing everything
    late = sum(fractions[-20:]) / 20
    assert abs(late - 0.25) < 0.06, fractions[-20:]


def test_routed_fraction_at_inference_follows_calibration() -> None:
    model = prepared("apr", train=False)
    with torch.no_grad():
        model.calibrate_threshold(model(data(32, seed=8)[0]).est_scores)
        frac = model(data(32, seed=9)[0]).routed.float().mean().item()
    assert 0.17 < frac < 0.33


def test_refinement_is_fp32_and_base_is_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_BASE_PRECISION", "bf16")  # whatever this CPU does fast
    model = tiny("all")
    seen: dict[str, torch.dtype] = {}
    model.blocks[0].mlp.fc.register_forward_hook(lambda m, i, o: seen.update(base=o.dtype))
    model.refine[0].mlp.fc.register_forward_hook(lambda m, i, o: seen.update(refine=o.dtype))
    # the base's attention itself runs in fp32 on the CPU, as generation's does
    model.blocks[0].attn.proj.register_forward_hook(lambda m, i, o: seen.update(attn=i[0].dtype))
    out = model(data()[0])
    assert seen == {"base": torch.bfloat16, "refine": torch.float32, "attn": torch.float32}
    assert out.base_logits.dtype == torch.bfloat16 and out.logits.dtype == torch.float32
    _, h, _, _ = model.base(data()[0])
    res = model.refined(h, out.routed)
    assert res is not None and res[2].dtype == torch.float32


def test_training_threshold_is_a_quantile_of_the_scores_routing_compares() -> None:
    # under a trainer's bf16 autocast too: the threshold and the scores it meets are both fp32
    model = tiny("apr", warmup_steps=2)
    for i in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(*data(seed=i))
    window = torch.cat(model._window)
    logits, _ = model.scores(window)
    level = 1.0 - model.route_target() + float(model.q_trend)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model._refresh_threshold()
    assert logits.dtype == torch.float32
    assert model.ema_threshold.item() == torch.sigmoid(torch.quantile(logits, level)).item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_apr_trains_past_warmup_under_cuda_autocast() -> None:
    # CUDA's autocast, unlike the CPU's, leaves quantile to its bf16 input (which it rejects)
    model = tiny("apr", warmup_steps=2).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for i in range(6):
        idx, targets = data(seed=i)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(idx.cuda(), targets.cuda())
        assert out.loss is not None
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert torch.isfinite(model.ema_threshold).all()
    assert 0.0 < float(out.metrics["routed_fraction"]) < 1.0


def test_loss_decreases_on_copy_task() -> None:
    model = tiny("apr", warmup_steps=10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(16, T, dtype=torch.bool)
    mask[:, 0::2] = True  # every token comes twice: score the predictions of the copies
    losses = []
    for _ in range(60):
        half = torch.randint(6, V, (16, T // 2 + 1), generator=g)
        seq = half.repeat_interleave(2, dim=1)[:, : T + 1]
        out = model(seq[:, :-1], seq[:, 1:], loss_mask=mask)
        assert out.loss is not None
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses
    assert out.metrics["final_acc"] > 0.5


@pytest.mark.parametrize("lambda_base", [1.0, 0.0])
def test_loss_weighs_base_and_final_cross_entropy(lambda_base: float) -> None:
    model = tiny("all", lambda_base=lambda_base).eval()
    out = model(*data())
    assert out.loss is not None
    m = out.metrics
    expected = lambda_base * m["ce_base"] + m["ce_final"] + model.cfg.lambda_est * m["bce_est"]
    torch.testing.assert_close(out.loss.detach(), expected)


def test_state_dict_round_trip_keeps_threshold() -> None:
    model = prepared("apr", train=False)
    thr = model.route_threshold.item()
    assert thr == thr  # calibrated, not NaN
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = tiny("apr").eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.route_threshold.item() == thr
    x = data(seed=11)[0]
    with torch.no_grad():
        a, b = model(x), fresh(x)
    assert torch.equal(a.routed, b.routed) and torch.equal(a.logits, b.logits)


def test_flops_and_config_checks() -> None:
    model = tiny("apr")
    dense, apr, full = (model.flops_per_token(f) for f in (0.0, 0.25, 1.0))
    assert dense < apr < full
    with pytest.raises(ValueError):
        APRConfig(mode="sometimes")
    with pytest.raises(ValueError):
        APRConfig(n_layer=2, probe_layer=2)
    with pytest.raises(ValueError):
        APRConfig(n_head=6, refine_kv_heads=4)
    wide = tiny("apr", refine_kv_heads=2)
    assert wide.flops_per_token(0.25) > apr  # every position's keys/values cost more
    # the clause read's key projection is counted: 2 d^2 a position
    pointer, clause, mix = (
        tiny("dense", **x).flops_per_token(0.0) for x in (POINTER, CLAUSE, CLAUSE_MIX)
    )
    assert clause - pointer == 2 * model.cfg.d_model**2
    assert mix - clause == 2 * model.cfg.d_model**2  # and its input projection


def test_the_mode_is_read_from_the_config_at_each_call() -> None:
    """``benchmarks/apr.py`` times one model in every mode by setting ``model.cfg.mode``."""
    model = prepared("apr", train=False)
    x = data(2, seed=3)[0]
    routed = {}
    for mode in ("dense", "all", "apr"):
        model.cfg.mode = mode
        routed[mode] = model(x).routed
    assert not routed["dense"].any() and routed["all"].all()
    assert 0 < routed["apr"].float().mean() < 1
    model.cfg.mode = "dense"
    assert model.flops_per_token(0.25) == model.flops_per_token(0.0)


@pytest.mark.parametrize("mode", MODES)
def test_the_loss_reads_logits_only_where_it_counts(mode: str) -> None:
    """With targets the head runs only at the loss's positions (packed in order); the loss is
    the cross-entropy of the full forward's logits at those positions. Rows keep different
    numbers of positions (the pointer and refinement ask from a padded layout) and one none."""
    model = prepared(mode, False, **POINTER)
    x, y = data(batch=4, seed=5)
    mask = torch.zeros_like(y, dtype=torch.bool)
    mask[0, 7::3] = True
    mask[1, 2::2] = True
    mask[3, -1] = True
    with torch.no_grad():
        packed, full = model(x, y, loss_mask=mask), model(x)
    n = int(mask.sum())
    assert packed.logits.shape == (n, full.logits.size(-1))
    torch.testing.assert_close(packed.logits, full.logits[mask])
    torch.testing.assert_close(packed.base_logits, full.base_logits[mask])
    ce = torch.nn.functional.cross_entropy(full.logits[mask], y[mask])
    torch.testing.assert_close(packed.metrics["ce_final"], ce)
    assert torch.equal(packed.routed, full.routed)


def test_kv_cache_grows_past_its_spare_room_and_keeps_rows_as_concatenation_would() -> None:
    from models.layers import KVCache

    g = torch.Generator().manual_seed(3)
    cache, ks, vs, B = KVCache(), [], [], 3
    for step in range(2 * KVCache.SPARE + 5):  # a prompt of five, then one column a step
        k, v = (torch.randn(B, 2, 5 if step == 0 else 1, 4, generator=g) for _ in range(2))
        ks.append(k)
        vs.append(v)
        got_k, got_v = cache.append(k, v)
        if step == KVCache.SPARE:  # a row leaves the batch halfway
            rows, B = torch.tensor([0, 2]), 2
            cache.select(rows)
            got_k, got_v = cache.k[:, :, : cache.n], cache.v[:, :, : cache.n]  # type: ignore[index]
            ks, vs = [x[rows] for x in ks], [x[rows] for x in vs]
        assert torch.equal(got_k, torch.cat(ks, 2)) and torch.equal(got_v, torch.cat(vs, 2))
    assert cache.n == 2 * KVCache.SPARE + 9
