"""Drawing predictions and ground truth (cameras + BEV) and teacher/student query fields.

The entry points are :func:`render_sample` (one PNG per sample, every box coloured by its
outcome: :func:`classify_boxes`, :mod:`.status_style`) and :func:`render_query_fields`
(teacher | student receptive fields in BEV).
"""
from .matching import MatchResult, classify_boxes
from .query_fields import QueryField, record_query_field, render_query_fields
from .render import SampleBoxes, SampleView, render_sample

__all__ = ["MatchResult", "QueryField", "SampleBoxes", "SampleView", "classify_boxes", "record_query_field",
           "render_query_fields", "render_sample"]
