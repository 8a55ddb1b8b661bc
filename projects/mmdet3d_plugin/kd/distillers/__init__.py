"""The distillation wrapper: frozen teacher, student, taps and losses."""
from .from_checkpoint import build_distiller_from_checkpoint
from .harmo_distiller import HarmoDistiller

__all__ = ["HarmoDistiller", "build_distiller_from_checkpoint"]
