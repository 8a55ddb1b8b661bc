"""BEV-space distillation: parameter-free lifting of camera feature maps into a BEV grid."""
