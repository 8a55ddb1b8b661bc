"""Feature pyramid necks (FPN, CPFPN) with mmdet parameter names."""
