"""The distillation wrapper: frozen teacher, student, taps and losses."""
from .harmo_distiller import HarmoDistiller

__all__ = ["HarmoDistiller"]
