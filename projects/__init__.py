"""HarmoDistill projects namespace (``import projects.mmdet3d_plugin``)."""
