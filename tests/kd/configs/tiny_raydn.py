# The tiny RayDN of the distiller tests (tests/fixtures/configs/tiny_raydn.py), kept at this
# path for the configs and command lines that name it (tiny_distill_raydn.py's teacher_cfg).
_base_ = ['../../fixtures/configs/tiny_raydn.py']
