"""Drawing predictions and ground truth (cameras + BEV) and teacher/student query fields.

The entry points are :func:`render_sample` (one PNG per sample) and
:func:`render_query_fields` (teacher | student receptive fields in BEV).
"""
from .query_fields import QueryField, record_query_field, render_query_fields
from .render import SampleBoxes, SampleView, render_sample

__all__ = ["QueryField", "SampleBoxes", "SampleView", "record_query_field", "render_query_fields",
           "render_sample"]
