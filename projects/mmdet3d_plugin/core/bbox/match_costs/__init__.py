"""Match costs: (num_query, num_gt) cost matrices for the Hungarian assigners."""
