"""tools/visualize.py end to end on the generated world with a tiny RayDN checkpoint."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from projects.mmdet3d_plugin.core.bbox.box_layout import NUSCENES_CLASSES
from projects.mmdet3d_plugin.core.checkpoint import save_checkpoint
from projects.mmdet3d_plugin.registry import DATASETS, MODELS
from tests.fixtures.tiny_models import export_raydn
from projects.mmdet3d_plugin.paths import REPO_ROOT

ROOT = REPO_ROOT


def _load(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def _write_config(path: Path, model: dict, world: Path, ann_file: Path) -> None:
    keys = ["lidar2img", "intrinsics", "extrinsics", "timestamp", "img_timestamp", "ego_pose", "ego_pose_inv"]
    aug = dict(resize_lim=(0.44, 0.44), final_dim=(64, 176), bot_pct_lim=(0.0, 0.0), rot_lim=(0.0, 0.0),
               H=225, W=400, rand_flip=False)
    pipeline = [dict(type="LoadMultiViewImageFromFiles", to_float32=True),
                dict(type="ResizeCropFlipRotImage", data_aug_conf=aug, training=False),
                dict(type="NormalizeMultiviewImage", mean=[123.675, 116.28, 103.53],
                     std=[58.395, 57.12, 57.375], to_rgb=True),
                dict(type="PadMultiViewImage", size_divisor=32),
                dict(type="PETRFormatBundle3D", collect_keys=keys, class_names=list(NUSCENES_CLASSES),
                     with_label=False),
                dict(type="Collect3D", keys=["img"] + keys, meta_keys=("scene_token",))]
    val = dict(type="CustomNuScenesDataset", data_root=str(world), ann_file=str(ann_file), pipeline=pipeline,
               classes=list(NUSCENES_CLASSES), modality=dict(use_camera=True))
    path.write_text(f"model = {model!r}\ndata = {dict(val=val)!r}\n")


def test_visualize_writes_one_png_per_sample(synthetic_world, synthetic_infos, tmp_path, capsys):
    tool = _load("visualize_tool", ROOT / "tools" / "visualize.py")
    model_cfg = export_raydn()
    torch.manual_seed(0)
    ckpt = save_checkpoint({"state_dict": MODELS.build(model_cfg).state_dict()}, tmp_path / "tiny.pth")
    config = tmp_path / "tiny_raydn.py"
    _write_config(config, model_cfg, synthetic_world, synthetic_infos["val"])
    assert tool.main([str(config), str(ckpt), "--samples", "2", "--out", str(tmp_path / "vis"),
                      "--score-thr", "0.0"]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert len(written) == 2 and all(p.parent == tmp_path / "vis" for p in written)
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (2020, 778)


def test_ground_truth_comes_from_the_info_file_also_in_test_mode(synthetic_world, synthetic_infos):
    tool = _load("visualize_tool", ROOT / "tools" / "visualize.py")
    dataset = DATASETS.build(dict(type="CustomNuScenesDataset", data_root=str(synthetic_world),
                                  ann_file=str(synthetic_infos["val"]), test_mode=True))
    assert "gt_bboxes_3d" not in dataset.get_data_info(0)
    gt = tool._ground_truth(dataset, 0)
    assert gt is not None and len(gt.boxes) == len(dataset.get_ann_info(0)["gt_bboxes_3d"]) > 0


KD_CONFIGS = ROOT / "tests" / "kd" / "configs"


def _data_options(world: Path, infos: dict) -> list[str]:
    """``--cfg-options`` pointing the config's val split at the session's tiny world."""
    return ["--cfg-options", f"data.val.data_root={world}/", f"data.val.ann_file={infos['val']}"]


def test_cfg_options_point_a_shipped_config_at_the_world(synthetic_world, synthetic_infos, tmp_path, capsys):
    """tests/kd/configs/tiny_raydn.py leaves its data paths 'SET_BY_TEST': --cfg-options sets them."""
    from mmengine.config import Config

    tool = _load("visualize_tool", ROOT / "tools" / "visualize.py")
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(KD_CONFIGS / "tiny_raydn.py")).model.to_dict())
    ckpt = save_checkpoint({"state_dict": model.state_dict()}, tmp_path / "tiny.pth")
    assert tool.main([str(KD_CONFIGS / "tiny_raydn.py"), str(ckpt), "--samples", "1", "--out",
                      str(tmp_path / "vis"), *_data_options(synthetic_world, synthetic_infos)]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert len(written) == 1 and written[0].suffix == ".png"
    with Image.open(written[0]) as image:
        assert image.format == "PNG" and image.size == (2020, 778)


def test_distiller_checkpoint_brings_its_teacher(synthetic_world, synthetic_infos, tmp_path, capsys):
    """A distiller checkpoint (teacher.* keys) visualises after the teacher's own file is gone;
    the teacher's weights are the checkpoint's."""
    from projects.mmdet3d_plugin.engine.runner import load_config

    tool = _load("visualize_tool", ROOT / "tools" / "visualize.py")
    config = KD_CONFIGS / "tiny_distill_raydn.py"
    teacher = tmp_path / "teacher.pth"
    torch.manual_seed(1)
    save_checkpoint({"state_dict": MODELS.build(load_config(KD_CONFIGS / "tiny_raydn.py").model).state_dict()},
                    teacher)
    torch.manual_seed(0)
    state_dict = MODELS.build(load_config(config, {"model.teacher_ckpt": str(teacher)}).model).state_dict()
    ckpt = save_checkpoint({"state_dict": state_dict}, tmp_path / "distilled.pth")
    teacher.unlink()  # as after the demo: the config's model.teacher_ckpt is not there
    options = [f"model.teacher_ckpt={teacher}", *_data_options(synthetic_world, synthetic_infos)[1:]]
    assert tool.main([str(config), str(ckpt), "--samples", "1", "--out", str(tmp_path / "vis"),
                      "--cfg-options", *options]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert len(written) == 2 and written[1].name.endswith("_query_fields.png")
    distiller = tool.build_detector(load_config(config, {"model.teacher_ckpt": str(teacher)}), str(ckpt))
    for key, value in distiller.teacher.state_dict().items():
        assert torch.equal(value, state_dict[f"teacher.{key}"]), key


def test_bev_loss_gets_its_lifted_maps_and_regions_drawn(synthetic_world, synthetic_infos, tmp_path, capsys):
    """A distiller with a BEV feature loss writes one more PNG per such loss, drawn from the
    loss's own lifted maps; ground truth comes from the info file (the val pipeline has none)."""
    from projects.mmdet3d_plugin.engine.runner import load_config

    tool = _load("visualize_tool", ROOT / "tools" / "visualize.py")
    config = tmp_path / "tiny_distill_bev.py"
    teacher_tap = dict(model="teacher", call=1)  # tiny RayDN: 2 decoder layers
    bev = dict(type="BEVFeatureLoss", pc_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0], bev_size=(32, 32),
               num_heights=2, region_weights=dict(gt_thr=0.5, teacher_thr=0.05),
               inputs=dict(student="s_fpn_1", teacher="t_fpn_1", lidar2img="batch.lidar2img",
                           pad_shape="batch.pad_shape", gt_bboxes_3d="batch.gt_bboxes_3d",
                           teacher_cls="t_cls", teacher_box="t_box"))
    taps = dict(t_cls=dict(teacher_tap, path="pts_bbox_head.cls_branches.0"),
                t_box=dict(teacher_tap, path="pts_bbox_head.box_codes"))
    config.write_text(f"_base_ = [{str(KD_CONFIGS / 'tiny_distill_raydn.py')!r}]\n"
                      f"model = dict(taps={taps!r}, distill_losses=dict(bev_fpn_1={bev!r}))\n")
    torch.manual_seed(0)
    state_dict = MODELS.build(load_config(config, {"model.teacher_ckpt": "unused.pth",
                                                   "model.load_teacher": False}).model).state_dict()
    ckpt = save_checkpoint({"state_dict": state_dict}, tmp_path / "distilled.pth")
    options = ["model.teacher_ckpt=unused.pth", *_data_options(synthetic_world, synthetic_infos)[1:]]
    assert tool.main([str(config), str(ckpt), "--samples", "1", "--out", str(tmp_path / "vis"),
                      "--cfg-options", *options]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert len(written) == 3 and written[1].name.endswith("_query_fields.png")
    assert written[2].name.endswith("_bev_bev_fpn_1.png")
    with Image.open(written[2]) as image:
        assert image.format == "PNG" and np.asarray(image.convert("L")).std() > 10
