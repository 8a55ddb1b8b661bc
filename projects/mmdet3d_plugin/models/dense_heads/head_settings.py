"""The constructor settings no sparse query head covers (StreamPETR and RayDN share them)."""
from __future__ import annotations

from ...core.bbox.box_layout import CODE_DIM


def shared_setting_problems(in_channels: int, embed_dims: int, num_propagated: int,
                            memory_len: int, topk_proposals: int, code_size: int,
                            projects_tokens: bool) -> list[str]:
    """The settings no sparse query head covers, one message each (the heads add theirs).

    ``projects_tokens``: the paper projects image tokens to ``embed_dims``; without that
    ``in_channels`` must equal ``embed_dims``.
    """
    problems = []
    if code_size != CODE_DIM:
        problems.append(f"code_size={code_size} (only {CODE_DIM})")
    if embed_dims % 2:
        problems.append(f"odd embed_dims={embed_dims}")
    if not 0 <= num_propagated <= memory_len or not 0 < topk_proposals <= memory_len:
        problems.append(f"num_propagated={num_propagated} / topk_proposals={topk_proposals} "
                        f"must lie within memory_len={memory_len}")
    if in_channels <= 0:
        problems.append(f"in_channels={in_channels}")
    elif not projects_tokens and in_channels != embed_dims:
        problems.append(f"in_channels={in_channels} != embed_dims={embed_dims} (image tokens "
                        "enter the decoder without a projection)")
    return problems
