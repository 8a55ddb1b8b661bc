"""Detection losses: focal, L1, GIoU, quality focal, Gaussian focal."""
