"""Image backbones (ResNet with torchvision parameter names)."""
