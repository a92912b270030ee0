"""Build, validate and gate CIS-hardened EKS node AMIs (Amazon Inspector CIS scans)."""

__version__ = "0.1.0"
USER_AGENT = f"eks-cis-ami-pipeline/{__version__}"
