"""Helpers of the command-line tools in ``tools/``: chaining tools, benchmarking, reporting.

The scripts in ``tools/`` import this package; the library (``projects.mmdet3d_plugin``)
never does. Its modules may import anything in the library.
"""
