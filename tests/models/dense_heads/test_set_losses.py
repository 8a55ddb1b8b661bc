"""The loss set shared by the StreamPETR and RayDN heads."""
import pytest

from projects.mmdet3d_plugin.models.dense_heads.raydn_head import RayDNHead
from projects.mmdet3d_plugin.models.dense_heads.set_losses import build_set_losses
from projects.mmdet3d_plugin.models.dense_heads.sparse_query_head import SparseQueryHead
from projects.mmdet3d_plugin.models.dense_heads.streampetr_head import StreamPETRHead


def test_both_heads_use_the_one_loss_set() -> None:
    for head in (StreamPETRHead, RayDNHead):
        assert head.loss is SparseQueryHead.loss
        assert head._dn_losses is SparseQueryHead._dn_losses


def test_build_set_losses_defaults_and_no_assigner_without_train_cfg() -> None:
    loss_cls, loss_bbox, assigner = build_set_losses("RayDNHead", None, None, None, None)
    assert type(loss_cls).__name__ == "FocalLoss" and type(loss_bbox).__name__ == "L1Loss"
    assert assigner is None


@pytest.mark.parametrize("args, match", [
    ((dict(type="FocalLoss", use_sigmoid=False), None, None, None), "sigmoid"),
    ((None, None, dict(type="GIoULoss", loss_weight=1.0), None), "loss_iou"),
    ((None, None, None, dict(assigner=dict(type="HungarianAssigner3D"), typo=1)), "train_cfg"),
])
def test_build_set_losses_errors_name_the_head_and_the_key(args, match) -> None:
    with pytest.raises(ValueError, match=match) as info:
        build_set_losses("StreamPETRHead", *args)
    assert "StreamPETRHead" in str(info.value)
