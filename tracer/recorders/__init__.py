"""Recorders: each watches the target one way and writes raw files; none knows about the others."""
