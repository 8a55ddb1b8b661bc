"""Every shipped config computes exactly what it computed before the issue-#13 redesign.

``tests/configs/golden/outputs.pt`` holds, per config, the predictions of two streaming
frames and the losses of two training frames on weights and inputs fixed by name
(``golden/outputs.py``); they were written before the heads, recorders, batch contract and
configs were refactored and must stay bit-identical. Regenerate them only for a change that
is meant to alter what a model computes, and say so in the commit.
"""
from __future__ import annotations

import pytest
import torch

from tests.configs.golden.outputs import CONFIGS, ROOT, STORE, config_outputs


@pytest.fixture(scope="module")
def stored() -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(STORE, weights_only=True)


def test_every_config_has_stored_outputs(stored: dict[str, dict[str, torch.Tensor]]) -> None:
    assert sorted(stored) == CONFIGS


@pytest.mark.parametrize("config", CONFIGS)
def test_outputs_bit_identical(config: str, stored: dict[str, dict[str, torch.Tensor]],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    now = config_outputs(config)
    before = stored[config]
    assert sorted(now) == sorted(before), f"{config}: output keys changed"
    changed = {key: (now[key] - before[key]).abs().max().item() if now[key].is_floating_point()
               else "values" for key in before
               if now[key].shape != before[key].shape or not torch.equal(now[key], before[key])}
    assert not changed, f"{config}: outputs differ from before the refactor: {changed}"
