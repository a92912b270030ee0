"""Tests of pipeline.release: channels, promote, revoke, retention, the nightly rebuild."""
