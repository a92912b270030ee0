"""Release engineering: channels (SSM parameters), promote, revoke, AMI retention, the nightly
rebuild's input fingerprint and the drift report. ``pipeline/aws/release.py`` makes the calls.
"""
