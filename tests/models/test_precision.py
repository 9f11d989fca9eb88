"""The base stack's precision per device: bf16 where it is fast, fp32 where it is emulated."""

import pytest
import torch

from infra.settings import SettingsError
from models import precision
from models.apr import APRConfig, APRTransformer
from models.config import TrainConfig


def base_dtype_seen(model: APRTransformer) -> torch.dtype:
    seen: list[torch.dtype] = []
    hook = model.blocks[0].mlp.fc.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model(torch.randint(0, 40, (2, 12)))
    hook.remove()
    return seen[0]


@pytest.fixture
def model() -> APRTransformer:
    torch.manual_seed(0)
    size = dict(vocab_size=40, n_layer=1, n_head=2, d_model=16, probe_layer=0, max_seq_len=16)
    return APRTransformer(APRConfig(**size, mode="all")).eval()  # type: ignore[arg-type]


@pytest.mark.parametrize("fast", [True, False])
def test_auto_runs_the_base_in_bf16_only_where_bf16_is_fast(
    model: APRTransformer, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(precision.ENV, raising=False)
    monkeypatch.setattr(precision, "bf16_is_fast", lambda device_type: fast)
    assert base_dtype_seen(model) == (torch.bfloat16 if fast else torch.float32)
    asked = precision.training_precision("bf16-mixed", "cpu")
    assert asked == ("bf16-mixed" if fast else "32-true")
    assert precision.training_precision("32-true", "cpu") == "32-true"


@pytest.mark.parametrize("forced", ["bf16", "fp32", " FP32 "])
def test_the_environment_forces_a_precision(
    model: APRTransformer, forced: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(precision.ENV, forced)
    monkeypatch.setattr(precision, "bf16_is_fast", lambda device_type: forced != "bf16")
    expected = torch.bfloat16 if forced == "bf16" else torch.float32
    assert base_dtype_seen(model) == expected


def test_both_precisions_give_the_same_model_within_bf16_rounding(
    model: APRTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = torch.randint(0, 40, (2, 12))
    with torch.no_grad():
        monkeypatch.setenv(precision.ENV, "bf16")
        low = model(idx).logits
        monkeypatch.setenv(precision.ENV, "fp32")
        full = model(idx).logits
    assert not torch.equal(low, full)  # the setting really changed the arithmetic
    torch.testing.assert_close(low, full, atol=0.1, rtol=0.05)


def test_a_bad_setting_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.ENV, "fp8")
    with pytest.raises(SettingsError, match=r"VERACITY_BASE_PRECISION must be one of auto"):
        TrainConfig().check()
    with pytest.raises(ValueError, match="got 'fp8'"):
        precision.base_dtype("cpu")


def test_this_machine_is_probed_without_error() -> None:
    assert isinstance(precision.bf16_is_fast("cpu"), bool)
    assert precision.bf16_is_fast("meta") is False
