# HarmoDistill on the generated world: the synthetic RayDN R50 teacher
# (raydn_r50_synthetic.py, trained here from scratch) distilled into the synthetic R18
# student (raydn_r18_synthetic.py) with every family of terms:
#   feature  - balanced KL on the four FPN outputs (HarmoDistill's released loss),
#   field    - the 3D-query receptive field: the last decoder layer's DFA sampling points
#              splatted into BEV, KL-aligned, weighted by DistillBEV regions,
#   output   - class (sigmoid Hinton KD) and box-code distillation on Hungarian-matched
#              teacher/student queries, weighted by teacher confidence,
#   relation - centre-distance relations among the matched queries.
# and inheritance: the student starts the parts it shares with the teacher (FPN output
# convolutions, 2D auxiliary head, 3D head; not the backbone nor the FPN's lateral
# convolutions, whose input widths differ) from the teacher's trained weights.
# Ablations switch families off from the command line, e.g.
#   --cfg-options "model.enabled_losses=[bkl_fpn_0,bkl_fpn_1,bkl_fpn_2,bkl_fpn_3]" "model.inherit=[]"
# Data, optimizer and schedule are the student's.
_base_ = ['./raydn_r18_synthetic.py']

teacher_config = 'projects/configs/synthetic/raydn_r50_synthetic.py'
teacher_checkpoint = 'work_dirs/raydn_r50_synthetic/latest.pth'
student_config = 'projects/configs/synthetic/raydn_r18_synthetic.py'

last_layer = 2  # num_layers - 1 of the synthetic RayDN
num_queries = 132  # 100 learnable + 32 propagated; the student's DN queries come first
dfa = f'pts_bbox_head.transformer.decoder.layers.{last_layer}.attentions.1'
fpn_levels = [0, 1, 2, 3]
# Loss weights: each family carries a stated share of the detection loss's gradient norm on
# the parts it reaches, measured by tools/kd_gradients.py at the start of training
# (docs/distillation.md, "Loss weights": the table and the why):
#   feature 50% on the neck, output 40% / field 25% / relation 5% on the 3D head
# (with the 2000-iteration teacher of docs/results.md: 50.8%, 40.9%, 27.4%, 4.2%).
# The released HarmoDistill values (0.1 / 0.01, BKL only) are distill_raydn_r50_r18_released.py
# under projects/configs/Distill3D.
fpn_loss_weights = [0.14, 0.14, 0.14, 0.014]

taps = {f'{who[0]}_fpn_{i}': dict(model=who, path=f'img_neck.fpn_convs.{i}.conv')
        for who in ('student', 'teacher') for i in fpn_levels}
taps.update({
    f'{who[0]}_{name}': dict(model=who, path=path, call=call)
    for who in ('student', 'teacher')
    for name, path, call in (
        ('points', f'{dfa}.key_points', 0),
        ('weights', f'{dfa}.aggregation_weights', 0),
        ('cls', 'pts_bbox_head.cls_branches.0', last_layer),
        ('box', 'pts_bbox_head.box_codes', last_layer),
    )
})
outputs = dict(student_cls='s_cls', student_box='s_box', teacher_cls='t_cls', teacher_box='t_box')

distill_losses = {
    f'bkl_fpn_{i}': dict(type='BalancedKLLoss', tau=4.0, reverse_weight=7.0, loss_weight=w,
                         inputs=dict(student=f's_fpn_{i}', teacher=f't_fpn_{i}'))
    for i, w in zip(fpn_levels, fpn_loss_weights)
}
distill_losses.update(
    field=dict(
        type='QueryFieldLoss', pc_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0],
        bev_size=(128, 128), loss_type='density', value_type='dfa_weights',
        num_queries=num_queries, region_weights=dict(gt_thr=0.5, teacher_thr=0.3, tn_weight=0.1),
        loss_weight=1.2,
        inputs=dict(student_points='s_points', student_values='s_weights',
                    teacher_points='t_points', teacher_values='t_weights',
                    gt_bboxes_3d='batch.gt_bboxes_3d', teacher_cls='t_cls', teacher_box='t_box')),
    output=dict(
        type='OutputDistillLoss', temperature=2.0, cls_weight=1.0, box_weight=0.25,
        code_weights=[1.0] * 8 + [0.2, 0.2], matcher=dict(center_weight=1.0, cls_weight=1.0),
        num_queries=num_queries, loss_weight=2.3, inputs=outputs),
    relation=dict(
        type='OutputRelationLoss', relation='center_distance', loss_type='mse',
        matcher=dict(num_pairs=50), num_queries=num_queries, loss_weight=20.0, inputs=outputs),
)

model = dict(
    _delete_=True,
    type='HarmoDistiller',
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_checkpoint,
    student_cfg=student_config,
    taps=taps,
    distill_losses=distill_losses,
    inherit=['img_neck.fpn_convs', 'img_roi_head', 'pts_bbox_head'],
)
