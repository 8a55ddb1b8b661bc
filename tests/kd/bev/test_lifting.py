"""BEVLifting: camera feature maps lifted into the BEV grid of the DistillBEV region labels."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harmodistill_tools.bev_lifting_reference import dense_bev_lifting
from projects.mmdet3d_plugin.kd.bev.lifting import BEVLifting
from projects.mmdet3d_plugin.kd.losses.region_weights import bev_cell_centers

PC_RANGE = [-8.0, -8.0, -2.0, 8.0, 8.0, 2.0]  # 1 m cells on a 16 x 16 grid, heights -1.5 .. 1.5
BEV = (16, 16)
IMG = (32, 64)  # (H_img, W_img)
FEAT = (8, 16)  # stride 4
FOCAL = 32.0


def pinhole(yaw: float) -> torch.Tensor:
    """``(4, 4)`` lidar2img of a camera at the origin looking along ``yaw`` (90 degree FOV)."""
    forward = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
    right = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
    down = torch.tensor([0.0, 0.0, -1.0])
    extrinsic = torch.eye(4)
    extrinsic[:3, :3] = torch.stack((right, down, forward))
    intrinsic = torch.eye(4)
    intrinsic[0, 0] = intrinsic[1, 1] = FOCAL
    intrinsic[0, 2], intrinsic[1, 2] = IMG[1] / 2, IMG[0] / 2
    return intrinsic @ extrinsic


def project(lidar2img: torch.Tensor, point: tuple[float, float, float]) -> tuple[float, float]:
    homog = lidar2img @ torch.tensor([*point, 1.0])
    return float(homog[0] / homog[2]), float(homog[1] / homog[2])


def cell_of(x: float, y: float) -> tuple[int, int]:
    """``(row, column)`` of the cell containing ``(x, y)`` (``bev_cell_centers``' convention)."""
    return int((y - PC_RANGE[1]) // 1.0), int((x - PC_RANGE[0]) // 1.0)


def test_a_bright_patch_lights_the_cell_of_the_point_that_projects_there() -> None:
    cams = torch.stack((pinhole(0.0), pinhole(math.pi)))[None]
    point = (5.5, 1.5, 0.5)  # a voxel centre (cell centre, height level 2)
    u, v = project(cams[0, 0], point)
    features = torch.zeros(2, 3, *IMG)  # full resolution: one feature cell per pixel
    row, col = int(v - 0.5), int(u - 0.5)  # the 2 x 2 pixels the bilinear sample reads
    features[0, :, row:row + 2, col:col + 2] = 10.0  # camera 0 (front) only
    bev = BEVLifting(PC_RANGE, BEV, num_heights=4)(features, cams, [IMG])
    response = bev[0, 0]
    assert divmod(int(response.argmax()), BEV[1]) == cell_of(point[0], point[1])
    assert bev_cell_centers(PC_RANGE, BEV)[cell_of(point[0], point[1])].tolist() == [5.5, 1.5]


def test_a_cell_behind_every_camera_is_exactly_zero_and_unseen() -> None:
    cams = pinhole(0.0)[None, None]
    lifting = BEVLifting(PC_RANGE, BEV, num_heights=4)
    bev = lifting(torch.rand(1, 3, *FEAT) + 1.0, cams, [IMG])
    visibility = lifting.visibility(cams, [IMG])
    behind = cell_of(-4.5, 0.5)
    assert torch.all(bev[0, :, behind[0], behind[1]] == 0.0) and visibility[0][behind] == 0.0
    ahead = cell_of(6.5, 0.5)
    assert torch.all(bev[0, :, ahead[0], ahead[1]] > 0.0) and visibility[0][ahead] == 1.0
    assert visibility.shape == (1, *BEV) and 0.0 <= float(visibility.min()) <= float(visibility.max()) <= 1.0


def test_close_cells_see_only_some_height_levels() -> None:
    cams = pinhole(0.0)[None, None]
    visibility = BEVLifting(PC_RANGE, BEV, num_heights=4).visibility(cams, [IMG])
    near = cell_of(1.5, 0.5)  # 1.5 m ahead, the 45 degree half-FOV sees |z| < 1.5 m: 2 of 4 levels
    assert float(visibility[0][near]) == 0.5


@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_two_cameras_seeing_a_voxel_give_the_average(reduction: str) -> None:
    cams = torch.stack((pinhole(0.0), pinhole(0.0)))[None]
    features = torch.cat((torch.full((1, 2, *FEAT), 2.0), torch.full((1, 2, *FEAT), 6.0)))
    bev = BEVLifting(PC_RANGE, BEV, num_heights=4, height_reduction=reduction)(features, cams, [IMG])
    row, col = cell_of(6.5, 0.5)
    assert torch.allclose(bev[0, :, row, col], torch.full((2,), 4.0))


def test_max_reduction_takes_the_brightest_seen_level() -> None:
    cams = pinhole(0.0)[None, None]
    features = torch.zeros(1, 1, *FEAT)
    features[0, 0, FEAT[0] // 2:] = -1.0  # the lower half of the image is negative
    lifting = BEVLifting(PC_RANGE, BEV, num_heights=4, height_reduction="max")
    row, col = cell_of(6.5, 0.5)
    assert float(lifting(features, cams, [IMG])[0, 0, row, col]) == 0.0  # upper levels see 0 > -1
    mean = BEVLifting(PC_RANGE, BEV, num_heights=4, height_reduction="mean")(features, cams, [IMG])
    assert float(mean[0, 0, row, col]) < 0.0


def test_shapes_no_state_dtype_and_gradient() -> None:
    cams = torch.stack((pinhole(0.0), pinhole(math.pi / 2), pinhole(math.pi)))
    cams = cams[None].expand(2, -1, -1, -1)
    lifting = BEVLifting(PC_RANGE, (12, 10), num_heights=3)
    assert list(lifting.parameters()) == [] and lifting.state_dict() == {}
    features = torch.randn(6, 5, *FEAT, requires_grad=True)
    bev = lifting(features, cams, [IMG, IMG])
    assert bev.shape == (2, 5, 12, 10) and bev.dtype == torch.float32
    bev.square().sum().backward()
    assert features.grad is not None and float(features.grad.abs().sum()) > 0
    half = lifting(features.detach().to(torch.bfloat16), cams, [IMG, IMG])
    assert half.dtype == torch.float32 and torch.allclose(half, bev.detach(), atol=0.05)


@pytest.mark.gpu
def test_cuda_gives_the_cpu_result() -> None:
    cams = torch.stack((pinhole(0.0), pinhole(math.pi / 2)))[None]
    features = torch.randn(2, 3, *FEAT)
    lifting = BEVLifting(PC_RANGE, BEV, num_heights=4)
    on_gpu = lifting(features.cuda().half(), cams.cuda(), [IMG])
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), lifting(features.half(), cams, [IMG]), atol=1e-4)


def test_bad_inputs_are_refused_with_what_is_expected() -> None:
    cams = pinhole(0.0)[None, None]
    lifting = BEVLifting(PC_RANGE, BEV)
    with pytest.raises(ValueError, match=r"features must be \(B\*N, C, H_f, W_f\) = \(1, C"):
        lifting(torch.zeros(2, 3, *FEAT), cams, [IMG])
    with pytest.raises(ValueError, match="pad_shape must hold B=1 pairs"):
        lifting(torch.zeros(1, 3, *FEAT), cams, [IMG, IMG])
    with pytest.raises(ValueError, match=r"lidar2img must be \(B, N, 4, 4\)"):
        lifting(torch.zeros(1, 3, *FEAT), cams[0], [IMG])
    with pytest.raises(ValueError, match="do not match the plan, made for"):
        lifting.lift(torch.zeros(1, 3, FEAT[0] * 2, FEAT[1]), lifting.plan(cams, [IMG], FEAT))
    with pytest.raises(ValueError, match="height_reduction must be one of"):
        BEVLifting(PC_RANGE, BEV, height_reduction="sum")
    with pytest.raises(ValueError, match="pc_range must be"):
        BEVLifting(PC_RANGE[:4], BEV)


class _Exported(nn.Module):
    """The lifting with a fixed image size (``pad_shape`` is not a tensor input)."""

    def __init__(self) -> None:
        super().__init__()
        self.lifting = BEVLifting(PC_RANGE, (8, 8), num_heights=2)

    def forward(self, features: torch.Tensor, lidar2img: torch.Tensor) -> torch.Tensor:
        return self.lifting(features, lidar2img, [IMG])


def test_exports_to_onnx(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    # The two fields of view overlap by 45 degrees: voxels seen by both cameras sum two samples.
    features, cams = torch.randn(2, 3, *FEAT), torch.stack((pinhole(0.0), pinhole(math.pi / 4)))[None]
    assert int(BEVLifting(PC_RANGE, (8, 8), num_heights=2).project(cams, [IMG])[1].sum(dim=1).max()) == 2
    path = tmp_path / "lifting.onnx"
    torch.onnx.export(_Exported(), (features, cams), str(path), opset_version=17, dynamo=False,
                      input_names=["features", "lidar2img"], output_names=["bev"])
    onnx.checker.check_model(onnx.load(str(path)))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"features": features.numpy(), "lidar2img": cams.numpy()})
    assert torch.allclose(torch.from_numpy(exported), _Exported()(features, cams), atol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_equals_dense_grid_sample_values_and_gradients(reduction: str) -> None:
    torch.manual_seed(0)
    yaws = [k * math.pi / 3 for k in range(6)]  # six cameras, neighbouring fields of view overlap
    cams = torch.stack([pinhole(yaw) for yaw in yaws])[None].expand(2, -1, -1, -1).clone()
    cams[1, :, 0, 3] += 3.0  # the second sample's rig differs (u moves by 3 / depth pixels)
    lifting = BEVLifting(PC_RANGE, (20, 24), num_heights=3, height_reduction=reduction)
    features = torch.randn(12, 4, *FEAT, requires_grad=True)
    reference = features.detach().clone().requires_grad_(True)
    lifted = lifting(features, cams, [IMG, IMG])
    dense = dense_bev_lifting(lifting, reference, cams, [IMG, IMG])
    assert torch.allclose(lifted, dense, atol=1e-5)
    weights = torch.randn_like(dense)
    (lifted * weights).sum().backward()
    (dense * weights).sum().backward()
    assert torch.allclose(features.grad, reference.grad, atol=1e-5)
    assert float(features.grad.abs().sum()) > 0
