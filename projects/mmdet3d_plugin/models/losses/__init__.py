"""Detection losses with mmdet names: focal, quality focal, Gaussian focal, L1, smooth L1,
IoU, GIoU and cross-entropy (shared weighted reduction and ``forward`` in ``weighted_loss``)."""
