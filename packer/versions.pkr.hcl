# Packer and plugin versions for the production template (eks-cis.pkr.hcl).
# Needs a current Packer: `packer init packer/` installs the amazon plugin, then
# `packer build -var-file=packer/vars/<platform>-<arch>.pkrvars.hcl ... packer/`.
# Debian's packer 1.6.6 rejects this block; it builds packer/local/ against the local AWS only.
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      # Exact pin: tests/build check every argument of eks-cis.pkr.hcl against this version's
      # schema (pipeline/data/packer/amazon-<version>.json); README.md says how to move it.
      version = "1.8.2"
      source  = "github.com/hashicorp/amazon"
    }
  }
}
