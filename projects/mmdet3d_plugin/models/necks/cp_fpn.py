"""StreamPETR's CPFPN: an FPN whose only 3×3 output conv is on backbone level 0.

StreamPETR drops the output convs it never uses, so that every parameter receives a
gradient (required with gradient checkpointing in the backbone). Its neck::

    img_neck=dict(type='CPFPN', in_channels=[1024, 2048], out_channels=256, num_outs=2)

gives ``lateral_convs.{0,1}.conv`` and ``fpn_convs.0.conv``: output 0 (stride 16) is
``fpn_convs.0(lateral_0 + up(lateral_1))``, output 1 (stride 32) is ``lateral_1`` itself.

Two points follow StreamPETR rather than mmdet's current FPN: ``end_level`` is exclusive
(``num_outs == end_level - start_level`` when it is set), and the level-0 conv exists only
when ``start_level == 0``. Extra levels work as in :class:`FPN`; extra convs are stored
after the level-0 conv in ``fpn_convs`` (StreamPETR's own indexing of them is broken and
no published config uses them).
"""
from __future__ import annotations

import torch

from .fpn import FPN
from ...registry import MODELS


@MODELS.register_module()
class CPFPN(FPN):
    """FPN with a 3×3 output conv on backbone level 0 only (arguments as :class:`FPN`)."""

    def _end_level(self, end_level: int, num_outs: int) -> int:
        """The exclusive index of the last used backbone level (``end_level`` exclusive)."""
        num_ins = len(self.in_channels)
        if not 0 <= self.start_level < num_ins:
            raise ValueError(
                f"CPFPN start_level {self.start_level} must index in_channels (0..{num_ins - 1})"
            )
        if end_level == -1:
            if num_outs < num_ins - self.start_level:
                raise ValueError(f"CPFPN num_outs ({num_outs}) must cover the {num_ins - self.start_level} "
                                 f"backbone levels from start_level {self.start_level}")
            return num_ins
        if not self.start_level < end_level <= num_ins or num_outs != end_level - self.start_level:
            raise ValueError(f"CPFPN end_level {end_level} (exclusive) must be in {self.start_level + 1}.."
                             f"{num_ins} and num_outs ({num_outs}) must equal end_level - start_level")
        return end_level

    def _has_output_conv(self, level: int) -> bool:
        """Only backbone level 0 gets a 3×3 output conv."""
        return level == 0

    def _level_outputs(self, laterals: list[torch.Tensor]) -> list[torch.Tensor]:
        """Level 0 through its output conv (when built); the other levels are the laterals."""
        if self.num_output_convs == 0:
            return list(laterals)
        return [self.fpn_convs[0](laterals[0])] + list(laterals[1:])
