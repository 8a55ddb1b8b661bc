"""HarmoDistill: distillers, feature recorders, distillation losses and adapters."""
