"""The model zoo: the checkpoint manifest and verified, resumable downloads."""
