"""Construction settings shared by the sparse query heads: what no head covers, and the
initial content shift of the memory MLN.

**Queries without content.** The learnable queries' content (``tgt``) is zero, and on a
frame that starts a scene the memory holds no embedding either, so every token the first
self-attention sees carries the same content, ``ego_pose_memory``'s shift ``beta(c)``. With
upstream's initialisation (``beta = 0``) that content is exactly zero: the first post-norm
LayerNorm then receives a vector of zero variance and multiplies its gradient by
``1 / sqrt(eps)`` (about 316), again at the next norm. Measured: the first step of a
from-scratch synthetic R18 had a gradient norm of 5.2e4 (4.1e4 for the R50) against 60-120
on the next steps, so the global clip at 35 scaled that step's update by 1e-3; at the
initial weights this repeats on every frame that starts a scene. Upstream's code has the
same forward and initialisation, hence the same gradient. Once ``beta`` has trained away
from zero (a few optimiser steps), the spike is gone. The heads therefore start
``ego_pose_memory`` with a random shared shift (:data:`CONTENT_SHIFT_STD`): queries without
content start from a well-conditioned vector. It changes the initialisation only, not the
state-dict layout or the forward of trained weights.
"""
from __future__ import annotations

from ...core.bbox.box_layout import CODE_DIM

#: Standard deviation of the initial shift of ``ego_pose_memory`` (see the module docstring).
CONTENT_SHIFT_STD = 0.1


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
