"""The examples' late-fusion models follow SMV's model contract: features zeroed, then fused."""

from __future__ import annotations

import pytest
import torch

from bss_sampler.smv import coalition_logits
from examples.common.models import ConcatClassifier, LateFusionClassifier, mlp_encoder


def model() -> LateFusionClassifier:
    torch.manual_seed(0)
    encoders = {"a": mlp_encoder(3, 4), "v": mlp_encoder(2, 4)}
    return LateFusionClassifier(encoders, {"a": 4, "v": 4}, 3)


INPUTS = {"a": torch.randn(5, 3), "v": torch.randn(5, 2)}
MASK = torch.tensor([[True, True], [True, False], [False, True], [True, False], [True, True]])


@pytest.mark.parametrize("wrap", [lambda m: m, ConcatClassifier.from_model])
def test_a_masked_modality_is_zeroed_before_fusion(wrap: object) -> None:
    net = wrap(model())  # type: ignore[operator]
    fused, unimodal = net(**INPUTS, mask=MASK)
    features = [e(INPUTS[k]) for k, e in net.encoders.items()]
    zeroed = [f * MASK[:, m, None] for m, f in enumerate(features)]
    expected = net.fusion_head(torch.cat(zeroed, dim=1))
    torch.testing.assert_close(fused, expected)
    plain, _ = net(**INPUTS)  # no mask: every modality
    torch.testing.assert_close(fused[MASK.all(1)], plain[MASK.all(1)])
    assert not torch.allclose(fused[~MASK.all(1)], plain[~MASK.all(1)])
    assert len(unimodal) == 2


def test_concat_encode_and_fuse_give_every_coalition() -> None:
    net = ConcatClassifier.from_model(model())
    logits = coalition_logits(net.fuse, net.encode(**INPUTS))
    assert logits.shape == (3, 5, 3)  # {a}, {v}, {a, v}
    torch.testing.assert_close(logits[-1], net(**INPUTS)[0])
    only_a = torch.tensor([[True, False]]).expand(5, -1)
    torch.testing.assert_close(logits[0], net(**INPUTS, mask=only_a)[0])


def test_a_mask_of_the_wrong_width_fails() -> None:
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, 2\) for 2 modalities"):
        model()(**INPUTS, mask=torch.ones(5, 3, dtype=torch.bool))
