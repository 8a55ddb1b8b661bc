"""The distillation wrapper: frozen teacher, student, taps and losses."""
