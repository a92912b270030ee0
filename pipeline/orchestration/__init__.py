"""Orchestration: the chain (build, validate, gate) and the nightly decision; above the stages."""
