# shellcheck shell=bash
# Shared primitives of the CIS hardening scripts (sourced by cis-harden.sh, never run directly).
#
# Every primitive compares, then acts: it changes a file or calls a command only when the state
# differs from the wanted one, and then calls `changed`, so that a recommendation reports
# "applied" or "already compliant". A primitive that cannot do its job calls `cis_fail`, which
# ends the recommendation (each one runs in its own subshell) with a non-zero status.
#
# Every path a primitive takes is a path on the target system ("/etc/login.defs"); it is
# resolved under the root prefix $R (CIS_ROOT without its trailing slash: "" for the live system).
# Commands that only change the running system (sysctl -w, modprobe -r, augenrules, visudo and
# sshd checks, the AIDE database) run when CIS_LIVE=1, the default for CIS_ROOT=/. Partitioning
# and mounting the data volume is the remediation itself and always runs.
#
# Must stay compatible with bash 4.2 (Amazon Linux 2): no namerefs, no negative array indices,
# no @Q expansions.

# ---------------------------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------------------------

R=""                           # root prefix, set by cis_init
CIS_PLATFORM=""                # al2023 | al2
CIS_LEVEL=1                    # 1 | 2
CIS_LIVE=${CIS_LIVE:-}         # 1: also change the running system (default: CIS_ROOT is /)
CIS_ARCH=${CIS_ARCH:-}         # x86_64 | aarch64 (default: uname -m)
CIS_STATE=""                   # per-run scratch directory (results, pending actions)
CIS_VERBOSE=${CIS_VERBOSE:-1}  # 1: explain every change on stderr
# What auditd does when the audit file system is (nearly) full (Packer: audit_full_action).
# suspend (default) keeps the node serving and stops audit logging; halt | single follow the
# benchmark and take the node, with all its pods, out of service (an approved exception).
CIS_AUDIT_FULL_ACTION=${CIS_AUDIT_FULL_ACTION:-suspend}
# The SELinux mode of the image (Packer: selinux_mode). permissive (default) is what the
# EKS-optimized AMI ships; enforcing applies "Ensure the SELinux mode is enforcing" (level 2).
# Both satisfy "Ensure the SELinux mode is not disabled" (level 1).
CIS_SELINUX_MODE=${CIS_SELINUX_MODE:-permissive}
CIS_ID=""          # the recommendation being applied
CIS_TITLE=""
CIS_CHANGED=0
CIS_REPORTED=0
CIS_FAIL_REASON=""

# Paths that belong to containerd, the kubelet and the container images. They hold
# world-writable and unowned files by design (https://github.com/awslabs/amazon-eks-ami/issues/846);
# file-system wide searches never descend into them.
CIS_CONTAINER_PATHS=(
  /var/lib/containerd
  /run/containerd
  /var/lib/kubelet/pods
  /var/lib/kubelet/plugins
  /var/lib/docker
  /var/lib/soci-snapshotter-grpc
  /var/log/pods
  /var/log/containers
)
# Pseudo and volatile file systems that searches skip as well.
CIS_SKIP_PATHS=(/proc /sys /dev /run /tmp /mnt/cis-data)

# What an EKS node needs and no remediation may take away: the node-readiness probe
# (packer/scripts/node/probe.sh) checks each on the test instance, and the primitives below
# refuse (cis_fail) a change that would break one, so a recommendation that asks for it fails
# the build instead of shipping a node that cannot run Kubernetes.
# Kernel modules: containerd's overlayfs snapshotter, br_netfilter (the bridge sysctls), the
# netfilter modules kube-proxy programs through iptables-nft, veth for pod interfaces.
CIS_NODE_MODULES=(overlay br_netfilter bridge nf_tables nft_compat nf_conntrack nf_nat ip_tables
  iptable_nat iptable_filter x_tables veth)
# Directories whose file system must stay exec: container layers and shims, kubelet plugins,
# CNI plugin binaries.
CIS_NODE_EXEC_PATHS=(/var/lib/containerd /var/lib/kubelet /opt/cni/bin /run/containerd)
# sysctl keys that must stay 1 (EKS AMI /etc/sysctl.d/99-kubernetes-cri.conf).
CIS_NODE_SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables)
# Units nodeadm needs at boot (masked, the node never joins) and time sync.
CIS_NODE_UNITS=(nodeadm-config.service nodeadm-run.service nodeadm-boot-hook.service
  containerd.service kubelet.service chronyd.service amazon-ssm-agent.service)

cis_init() { # PLATFORM LEVEL
  CIS_PLATFORM=$1
  CIS_LEVEL=$2
  local root=${CIS_ROOT:-/}
  [[ $root == /* ]] || { echo "cis-harden: CIS_ROOT must be an absolute path: $root" >&2; return 2; }
  R=${root%/}
  if [[ -z ${CIS_LIVE:-} ]]; then
    if [[ -z $R ]]; then CIS_LIVE=1; else CIS_LIVE=0; fi
  fi
  CIS_ARCH=${CIS_ARCH:-$(uname -m)}
  CIS_VERBOSE=${CIS_VERBOSE:-1}
  _cis_check_os_release || return 2
  CIS_STATE=$(mktemp -d "${TMPDIR:-/tmp}/cis-harden.XXXXXX") || return 2
  : >"$CIS_STATE/results"
}

_cis_check_os_release() {
  local id="" version=""
  local line
  if [[ ! -f $R/etc/os-release ]]; then
    echo "cis-harden: $R/etc/os-release not found: is CIS_ROOT the root of an Amazon Linux system?" >&2
    return 2
  fi
  while IFS= read -r line || [[ -n $line ]]; do
    case $line in
    ID=*) id=${line#ID=} ;;
    VERSION_ID=*) version=${line#VERSION_ID=} ;;
    esac
  done <"$R/etc/os-release"
  id=${id//\"/}
  version=${version//\"/}
  local want
  case $CIS_PLATFORM in
  al2023) want=2023 ;;
  al2) want=2 ;;
  *) want=none ;;
  esac
  if [[ $id != amzn || $version != "$want" ]]; then
    echo "cis-harden: --platform $CIS_PLATFORM does not match $R/etc/os-release (ID=$id VERSION_ID=$version)" >&2
    return 2
  fi
}

# ---------------------------------------------------------------------------------------------
# Reporting: one line per recommendation on stdout
# ---------------------------------------------------------------------------------------------

# cis_rec LEVEL TITLE: start the recommendation named after the calling function
# (cis_1_1_2_3 -> 1.1.2.3). Returns 1 (after reporting "skipped") when LEVEL is above --level.
cis_rec() {
  local fn=${FUNCNAME[1]}
  CIS_ID=${fn#cis_}
  CIS_ID=${CIS_ID//_/.}
  CIS_TITLE=$2
  CIS_CHANGED=0
  if (($1 > CIS_LEVEL)); then
    cis_skip "level $1"
    return 1
  fi
  return 0
}

_cis_report() {
  printf '%s %s: %s\n' "$CIS_ID" "$CIS_TITLE" "$1"
  printf '%s\t%s\n' "$CIS_ID" "$1" >>"$CIS_STATE/results"
  CIS_REPORTED=1
}

cis_done() {
  if ((CIS_CHANGED)); then
    _cis_report applied
  else
    _cis_report "already compliant"
  fi
}

cis_skip() { _cis_report "skipped ($*)"; }

# cis_skip_excepted REASON: a deviation the exceptions policy approves; nothing is changed.
cis_skip_excepted() { cis_skip "excepted: $*"; }

changed() { CIS_CHANGED=1; }

cis_detail() {
  if ((CIS_VERBOSE)); then printf 'cis: %s: %s\n' "$CIS_ID" "$*" >&2; fi
}

cis_warn() { printf 'cis: %s: warning: %s\n' "$CIS_ID" "$*" >&2; }

cis_fail() {
  CIS_FAIL_REASON=$*
  printf 'cis: %s: error: %s\n' "$CIS_ID" "$*" >&2
  exit 1
}

_cis_on_exit() {
  local rc=$1
  if ((rc != 0)) || ((CIS_REPORTED == 0)); then
    if [[ -z $CIS_FAIL_REASON ]]; then
      if ((rc != 0)); then CIS_FAIL_REASON="exit status $rc"; else CIS_FAIL_REASON="no result reported"; fi
    fi
    CIS_REPORTED=0
    _cis_report "failed ($CIS_FAIL_REASON)"
    exit 1
  fi
}

# Run one recommendation function in a subshell with errexit, so that an unexpected failure
# ends it (and only it) with a "failed" line.
cis_run_one() {
  (
    set -o errexit -o nounset -o pipefail
    CIS_ID=${1#cis_}
    CIS_ID=${CIS_ID//_/.}
    CIS_TITLE="(title not reported)"
    CIS_REPORTED=0
    trap '_cis_on_exit $?' EXIT
    "$1"
  )
}

# All functions named cis_<id>, in benchmark order (1.1.2 < 1.1.10).
cis_functions() {
  compgen -A function cis_ | grep -E '^cis_[0-9]+(_[0-9]+)*$' |
    sort -t_ -k2,2n -k3,3n -k4,4n -k5,5n -k6,6n
}

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

have() { command -v "$1" >/dev/null 2>&1; }

# Read a file into the variable named $1 without forking (empty when the file is missing).
read_file() {
  local __content=""
  if [[ -f $2 ]]; then IFS= read -r -d '' __content <"$2" || true; fi
  printf -v "$1" '%s' "$__content"
}

# _re_escape_to VAR STRING: VAR = STRING escaped for an extended regular expression (no fork).
_re_escape_to() {
  local __s=$2 __r="" __c __i
  for ((__i = 0; __i < ${#__s}; __i++)); do
    __c=${__s:__i:1}
    case $__c in
    [.\[\]\\\*^\$\(\)\+\?\{\}\|]) __r+="\\$__c" ;;
    *) __r+=$__c ;;
    esac
  done
  printf -v "$1" '%s' "$__r"
}

# re_escape STRING: print STRING escaped for an extended regular expression.
re_escape() {
  local escaped
  _re_escape_to escaped "$1"
  printf '%s' "$escaped"
}

# _id_of VAR passwd|group NAME: VAR = the uid / gid of NAME (status 1 when unknown; no fork).
_id_of() {
  local __line
  while IFS= read -r __line || [[ -n $__line ]]; do
    if [[ ${__line%%:*} == "$3" ]]; then
      __line=${__line#*:}
      __line=${__line#*:}
      printf -v "$1" '%s' "${__line%%:*}"
      return 0
    fi
  done <"$R/etc/$2"
  return 1
}

# uid / gid of a user / group name in the target's /etc/passwd and /etc/group.
name_to_id() { # passwd|group NAME
  local __id
  _id_of __id "$1" "$2" || return 1
  printf '%s' "$__id"
}

# UID_MIN of the target (login.defs), 1000 when unset.
uid_min() {
  local line
  if [[ -f $R/etc/login.defs ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
      if [[ $line =~ ^[[:space:]]*UID_MIN[[:space:]]+([0-9]+) ]]; then
        printf '%s' "${BASH_REMATCH[1]}"
        return 0
      fi
    done <"$R/etc/login.defs"
  fi
  printf '1000'
}

# Replace the content of a file, keeping its inode (and so its mode, owner and SELinux label).
replace_content() { # PATH(target) CONTENT
  local path=$R$1
  printf '%s' "$2" >"$path" || cis_fail "cannot write $1"
}

lines_to_text() { # print the array elements given as arguments, one per line
  if (($# > 0)); then printf '%s\n' "$@"; fi
}

# write_lines PATH LINE...: replace the content of a file by these lines (keeping its inode).
write_lines() {
  local path=$R$1
  shift
  printf '%s\n' "$@" >"$path" || cis_fail "cannot write ${path#"$R"}"
}

# ---------------------------------------------------------------------------------------------
# Files, modes and owners
# ---------------------------------------------------------------------------------------------

# ensure_dir PATH MODE [OWNER] [GROUP]
ensure_dir() {
  local path=$R$1
  if [[ ! -d $path ]]; then
    mkdir -p "$path" || cis_fail "cannot create $1"
    changed
    cis_detail "created directory $1"
  fi
  set_mode "$1" "$2" "${3:-root}" "${4:-root}"
}

# write_file PATH MODE [OWNER] [GROUP] < CONTENT: the whole file, exactly.
write_file() {
  local path=$R$1 want have=""
  IFS= read -r -d '' want || true
  read_file have "$path"
  if [[ ! -f $path || $have != "$want" ]]; then
    if [[ ! -d ${path%/*} ]]; then
      mkdir -p "${path%/*}" || cis_fail "cannot create ${1%/*}"
    fi
    printf '%s' "$want" >"$path" || cis_fail "cannot write $1"
    changed
    cis_detail "wrote $1"
  fi
  set_mode "$1" "$2" "${3:-root}" "${4:-root}"
}

# remove_file PATH: make sure the file does not exist.
remove_file() {
  if [[ -e $R$1 || -L $R$1 ]]; then
    rm -f -- "$R$1" || cis_fail "cannot remove $1"
    changed
    cis_detail "removed $1"
  fi
}

_stat() { # PATH -> "mode uid gid" (octal mode)
  stat -L -c '%a %u %g' -- "$1"
}

# set_mode PATH MODE OWNER GROUP: exactly this mode and ownership.
set_mode() {
  local path=$R$1 want=$2 owner=${3:-root} group=${4:-root} cur mode uid gid wuid wgid
  [[ -e $path ]] || cis_fail "$1 does not exist"
  cur=$(_stat "$path") || cis_fail "cannot stat $1"
  read -r mode uid gid <<<"$cur"
  _id_of wuid passwd "$owner" || cis_fail "no user $owner in /etc/passwd"
  _id_of wgid group "$group" || cis_fail "no group $group in /etc/group"
  if ((8#$mode != 8#$want)); then
    chmod "$want" -- "$path" || cis_fail "cannot chmod $1"
    changed
    cis_detail "chmod $want $1"
  fi
  if [[ $uid != "$wuid" || $gid != "$wgid" ]]; then
    chown "$wuid:$wgid" -- "$path" || cis_fail "cannot chown $1"
    changed
    cis_detail "chown $owner:$group $1"
  fi
}

# limit_mode PATH MAXMODE OWNER GROUPS [required]: mode no more permissive than MAXMODE (bits
# outside it are removed), owned by OWNER, group one of GROUPS ("root|ssh_keys"; the first one
# is set when the group is not allowed). "-" skips a part. A missing file is fine (nothing to
# restrict) unless the 5th argument is "required".
limit_mode() {
  local path=$R$1 max=$2 owner=$3 groups=$4 cur mode uid gid wuid gname allowed=0 g new
  if [[ ! -e $path ]]; then
    [[ ${5:-} == required ]] && cis_fail "$1 does not exist"
    return 0
  fi
  cur=$(_stat "$path") || cis_fail "cannot stat $1"
  read -r mode uid gid <<<"$cur"
  if [[ $max != - ]]; then
    new=$((8#$mode & 8#$max))
    if ((new != 8#$mode)); then
      chmod "$(printf '%o' "$new")" -- "$path" || cis_fail "cannot chmod $1"
      changed
      cis_detail "chmod $(printf '%o' "$new") $1 (was $mode)"
    fi
  fi
  if [[ $owner != - ]]; then
    _id_of wuid passwd "$owner" || cis_fail "no user $owner in /etc/passwd"
    if [[ $uid != "$wuid" ]]; then
      chown "$wuid" -- "$path" || cis_fail "cannot chown $1"
      changed
      cis_detail "chown $owner $1"
    fi
  fi
  if [[ $groups != - ]]; then
    for g in ${groups//|/ }; do
      local gv=""
      if _id_of gv group "$g" && [[ $gv == "$gid" ]]; then allowed=1; fi
    done
    if ((!allowed)); then
      gname=${groups%%|*}
      _id_of g group "$gname" || cis_fail "no group $gname in /etc/group"
      chgrp "$g" -- "$path" || cis_fail "cannot chgrp $1"
      changed
      cis_detail "chgrp $gname $1"
    fi
  fi
}

# limit_mode_glob MAXMODE OWNER GROUPS PATTERN...: limit_mode for every existing match.
limit_mode_glob() {
  local max=$1 owner=$2 groups=$3 pat f
  shift 3
  for pat in "$@"; do
    for f in $R$pat; do
      [[ -e $f ]] || continue
      limit_mode "${f#"$R"}" "$max" "$owner" "$groups"
    done
  done
}

# ---------------------------------------------------------------------------------------------
# Key/value configuration files
# ---------------------------------------------------------------------------------------------

# conf_set FILE KEY LINE [MODE]: FILE sets KEY exactly once, with LINE.
# Lines setting KEY look like "KEY value", "KEY=value" or "KEY = value" (leading blanks allowed).
# The first active one is replaced by LINE, later ones are commented out; when none is active,
# LINE is appended (prepended with CIS_CONF_AT=top). A missing FILE is created (MODE, default 0644).
conf_set() {
  local file=$R$1 key line=$3 re i found=-1 out=() l edited=0
  _re_escape_to key "$2"
  re="^[[:space:]]*${key}([[:space:]]*=|[[:space:]]|$)"
  local lines=()
  if [[ -f $file ]]; then mapfile -t lines <"$file"; fi
  for i in "${!lines[@]}"; do
    l=${lines[$i]}
    if [[ $l =~ $re ]]; then
      if ((found < 0)); then
        found=$i
        if [[ $l != "$line" ]]; then
          l=$line
          edited=1
        fi
      else
        l="# $l"
        edited=1
      fi
    fi
    out+=("$l")
  done
  if ((found < 0)); then
    if [[ ${CIS_CONF_AT:-end} == top ]]; then out=("$line" "${out[@]}"); else out+=("$line"); fi
    edited=1
  fi
  if ((edited)); then
    if [[ ! -f $file ]]; then
      { mkdir -p "${file%/*}" && : >"$file"; } || cis_fail "cannot create $1"
      chmod "${4:-0644}" -- "$file"
    fi
    write_lines "$1" "${out[@]}"
    changed
    cis_detail "set '$line' in $1"
  fi
}

# conf_get FILE KEY: the value of the first active "KEY value" / "KEY=value" line.
conf_get() {
  local file=$R$1 key re l
  _re_escape_to key "$2"
  re="^[[:space:]]*${key}[[:space:]]*[=[:space:]][[:space:]]*(.*)$"
  [[ -f $file ]] || return 1
  while IFS= read -r l || [[ -n $l ]]; do
    if [[ $l =~ $re ]]; then
      l=${BASH_REMATCH[1]}
      l=${l%%[[:space:]]#*}
      printf '%s' "${l%"${l##*[![:space:]]}"}"
      return 0
    fi
  done <"$file"
  return 1
}

# comment_out FILE REGEX [REASON]: comment every active line matching the extended REGEX.
comment_out() {
  local file=$R$1 re=$2 out=() l edited=0
  [[ -f $file ]] || return 0
  local lines=()
  mapfile -t lines <"$file"
  for l in "${lines[@]}"; do
    if [[ ! $l =~ ^[[:space:]]*# && $l =~ $re ]]; then
      l="# ${3:-cis:} $l"
      edited=1
    fi
    out+=("$l")
  done
  if ((edited)); then
    write_lines "$1" "${out[@]}"
    changed
    cis_detail "commented out lines matching /$re/ in $1"
  fi
}

# ini_set FILE SECTION KEY VALUE: "KEY=VALUE" inside [SECTION] (created when missing).
ini_set() {
  local file=$R$1 section=$2 key=$3 value=$4 i l sec="" found=-1 end=-1 out=() edited=0 re
  local ekey
  _re_escape_to ekey "$key"
  re="^[[:space:]]*${ekey}[[:space:]]*="
  local lines=()
  if [[ -f $file ]]; then mapfile -t lines <"$file"; fi
  for i in "${!lines[@]}"; do
    l=${lines[$i]}
    if [[ $l =~ ^[[:space:]]*\[([^]]+)\] ]]; then
      sec=${BASH_REMATCH[1]}
      continue
    fi
    if [[ $sec == "$section" ]]; then
      end=$i
      if [[ $l =~ $re ]]; then
        if ((found < 0)); then found=$i; else
          lines[i]="# $l"
          edited=1
        fi
      fi
    fi
  done
  if ((found >= 0)); then
    if [[ ${lines[$found]} != "$key=$value" ]]; then
      lines[found]="$key=$value"
      edited=1
    fi
    out=("${lines[@]}")
  else
    edited=1
    if ((end >= 0)); then
      out=("${lines[@]:0:end+1}" "$key=$value" "${lines[@]:end+1}")
    else
      # the section header may exist without keys
      local hdr=-1
      for i in "${!lines[@]}"; do
        [[ ${lines[$i]} =~ ^[[:space:]]*\[$(re_escape "$section")\] ]] && hdr=$i
      done
      if ((hdr >= 0)); then
        out=("${lines[@]:0:hdr+1}" "$key=$value" "${lines[@]:hdr+1}")
      else
        out=("${lines[@]}" "[$section]" "$key=$value")
      fi
    fi
  fi
  if ((edited)); then
    if [[ ! -f $file ]]; then
      { mkdir -p "${file%/*}" && : >"$file"; } || cis_fail "cannot create $1"
      chmod 0644 -- "$file"
    fi
    write_lines "$1" "${out[@]}"
    changed
    cis_detail "set $key=$value in [$section] of $1"
  fi
}

# ---------------------------------------------------------------------------------------------
# Kernel parameters (sysctl) and kernel modules
# ---------------------------------------------------------------------------------------------

# Our drop-in sorts after every other file, so its values win at boot; conflicting settings
# of the same keys in /etc are commented out as well (scanners read every file).
CIS_SYSCTL_FILE=/etc/sysctl.d/zz-cis-hardening.conf

sysctl_set() { # KEY VALUE
  local key=$1 value=$2 f re k
  for k in "${CIS_NODE_SYSCTLS[@]}"; do
    if [[ $key == "$k" && $value != 1 ]]; then
      cis_fail "$key = $value would break the EKS node (it needs 1: node-readiness probe)"
    fi
  done
  conf_set "$CIS_SYSCTL_FILE" "$key" "$key = $value"
  local ekey
  _re_escape_to ekey "$key"
  re="^[[:space:]]*${ekey}[[:space:]]*=[[:space:]]*"
  for f in "$R/etc/sysctl.conf" "$R"/etc/sysctl.d/*.conf; do
    [[ -f $f && ${f#"$R"} != "$CIS_SYSCTL_FILE" ]] || continue
    _comment_conflicting "${f#"$R"}" "$re" "$value"
  done
  if ((CIS_LIVE)) && ((CIS_CHANGED)); then
    sysctl -q -w "$key=$value" >/dev/null 2>&1 || cis_warn "could not set $key at runtime (applied at boot)"
  fi
}

# Comment lines matching RE (a "key =" prefix) whose value differs from VALUE.
_comment_conflicting() { # FILE RE VALUE
  local file=$R$1 re=$2 value=$3 l v out=() edited=0
  local lines=()
  mapfile -t lines <"$file"
  for l in "${lines[@]}"; do
    if [[ $l =~ $re ]]; then
      v=${l#*=}
      v=${v//[[:space:]]/}
      if [[ $v != "$value" ]]; then
        l="# cis: $l"
        edited=1
      fi
    fi
    out+=("$l")
  done
  if ((edited)); then
    write_lines "$1" "${out[@]}"
    changed
    cis_detail "commented out a conflicting setting in $1"
  fi
}

# module_disable NAME: the module cannot be loaded (install -> /bin/false, blacklisted),
# and is unloaded from the running kernel.
module_disable() {
  local name=$1 m
  for m in "${CIS_NODE_MODULES[@]}"; do
    if [[ ${name//-/_} == "$m" ]]; then
      cis_fail "the $name kernel module is needed by the EKS node (node-readiness probe); not disabled"
    fi
  done
  write_file "/etc/modprobe.d/cis-$name.conf" 0644 <<EOF
# CIS: the $name kernel module is not needed on an EKS worker node.
install $name /bin/false
blacklist $name
EOF
  if ((CIS_LIVE)); then
    local line mod=${name//-/_}
    if [[ -r $R/proc/modules ]]; then
      while IFS=' ' read -r line _; do
        if [[ $line == "$mod" ]]; then
          if modprobe -r "$name" >/dev/null 2>&1; then
            changed
            cis_detail "unloaded module $name"
          else
            cis_warn "module $name is in use; it will not be loaded after the next boot"
          fi
        fi
      done <"$R/proc/modules"
    fi
  fi
}

# ---------------------------------------------------------------------------------------------
# Packages and services
# ---------------------------------------------------------------------------------------------

_rpm() { if [[ -n $R ]]; then rpm --root "$R" "$@"; else rpm "$@"; fi; }

_pm() {
  local pm=dnf
  [[ $CIS_PLATFORM == al2 ]] && pm=yum
  if [[ -n $R ]]; then "$pm" --installroot="$R" "$@"; else "$pm" "$@"; fi
}

pkg_installed() { _rpm -q --quiet "$1" >/dev/null 2>&1; }

# pkg_install NAME...: install what is missing.
pkg_install() {
  local p missing=()
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  _pm -y -q install "${missing[@]}" >&2 || cis_fail "could not install ${missing[*]}"
  changed
  cis_detail "installed ${missing[*]}"
}

# pkg_remove NAME...: remove what is installed, but never other packages along with them:
# `rpm -e --test` refuses when an installed package still needs one of them.
pkg_remove() {
  local p present=()
  for p in "$@"; do pkg_installed "$p" && present+=("$p"); done
  ((${#present[@]})) || return 0
  if ! _rpm -e --test "${present[@]}" >&2; then
    cis_fail "removing ${present[*]} would break packages that need them"
  fi
  if [[ $CIS_PLATFORM == al2 ]]; then
    _pm -y -q remove "${present[@]}" >&2 || cis_fail "could not remove ${present[*]}"
  else
    _pm -y -q remove --noautoremove "${present[@]}" >&2 || cis_fail "could not remove ${present[*]}"
  fi
  changed
  cis_detail "removed ${present[*]}"
}

_systemctl() { if [[ -n $R ]]; then systemctl --root="$R" "$@"; else systemctl "$@"; fi; }

unit_exists() {
  local d
  for d in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
    [[ -e $R$d/$1 ]] && return 0
  done
  return 1
}

unit_state() { _systemctl is-enabled "$1" 2>/dev/null || true; }

# svc_enable UNIT: enabled at boot (not started now: the AMI starts it at first boot).
svc_enable() {
  local state
  unit_exists "$1" || cis_fail "unit $1 is not installed"
  state=$(unit_state "$1")
  case $state in
  enabled | static | alias | indirect | generated) return 0 ;;
  masked) _systemctl unmask "$1" >&2 || cis_fail "cannot unmask $1" ;;
  esac
  _systemctl enable "$1" >&2 || cis_fail "cannot enable $1"
  changed
  cis_detail "enabled $1"
}

# svc_mask UNIT...: masked when installed (stopped as well on the live system).
svc_mask() {
  local u n
  for u in "$@"; do
    for n in "${CIS_NODE_UNITS[@]}"; do
      if [[ $u == "$n" ]]; then
        cis_fail "$u is needed by the EKS node (node-readiness probe); not masked"
      fi
    done
    unit_exists "$u" || continue
    [[ $(unit_state "$u") == masked ]] && continue
    if ((CIS_LIVE)); then systemctl stop "$u" >/dev/null 2>&1 || true; fi
    _systemctl mask "$u" >&2 || cis_fail "cannot mask $u"
    changed
    cis_detail "masked $u"
  done
}

# remove_or_mask PACKAGE UNIT...: CIS "not installed, or its service masked". Used where other
# software may need the package (nfs-utils, rpcbind for NFS client mounts): the units are
# masked and the package stays.
mask_services() { svc_mask "$@"; }

# systemd drop-in for a unit: /etc/systemd/system/UNIT.d/NAME.conf
unit_dropin() { # UNIT NAME < CONTENT
  write_file "/etc/systemd/system/$1.d/$2.conf" 0644
}

# ---------------------------------------------------------------------------------------------
# SSH daemon
# ---------------------------------------------------------------------------------------------

# sshd takes the FIRST value it reads for a keyword. The hardening keeps its settings in a
# managed block at the very top of sshd_config (before any Include), and comments out other
# settings of the same keywords in sshd_config and sshd_config.d/*.conf, so that `sshd -T`
# and scanners that read the files see the same value. The change is validated with `sshd -t`
# and rolled back if sshd would reject it. sshd is not reloaded: the running daemon (and so
# Packer's connection) keeps its configuration until the next boot.
CIS_SSHD_CONFIG=/etc/ssh/sshd_config
CIS_SSHD_BEGIN="# BEGIN cis-hardening (managed by cis-harden.sh; sshd uses the first value it reads)"
CIS_SSHD_END="# END cis-hardening"

sshd_set() { # KEYWORD VALUE
  local key=$1 value=$2 file=$R$CIS_SSHD_CONFIG re l i in_block=0 have_block=0
  local block=() rest=() out=() set_in_block=0 edited=0 original
  [[ -f $file ]] || cis_fail "$CIS_SSHD_CONFIG not found"
  read_file original "$file"
  local lines=()
  mapfile -t lines <"$file"
  shopt -s nocasematch
  local ekey
  _re_escape_to ekey "$key"
  re="^[[:space:]]*${ekey}([[:space:]]|=)"
  for l in "${lines[@]}"; do
    if [[ $l == "$CIS_SSHD_BEGIN" ]]; then
      in_block=1
      have_block=1
      continue
    fi
    if ((in_block)); then
      if [[ $l == "$CIS_SSHD_END" ]]; then
        in_block=0
        continue
      fi
      if [[ $l =~ $re ]]; then
        if ((set_in_block)); then
          edited=1
          continue
        fi
        set_in_block=1
        if [[ $l != "$key $value" ]]; then edited=1; fi
        l="$key $value"
      fi
      block+=("$l")
      continue
    fi
    if [[ $l =~ $re ]]; then
      l="# cis: $l"
      edited=1
    fi
    rest+=("$l")
  done
  shopt -u nocasematch
  if ((!set_in_block)); then
    block+=("$key $value")
    edited=1
  fi
  ((have_block)) || edited=1
  if ((edited)); then
    out=("$CIS_SSHD_BEGIN" "${block[@]}" "$CIS_SSHD_END" "${rest[@]}")
    write_lines "$CIS_SSHD_CONFIG" "${out[@]}"
    changed
    cis_detail "set '$key $value' in $CIS_SSHD_CONFIG"
  fi
  # Included drop-ins: comment out other values of the keyword.
  for i in "$R"/etc/ssh/sshd_config.d/*.conf; do
    [[ -f $i ]] || continue
    shopt -s nocasematch
    if _file_has_active "$i" "$re"; then
      shopt -u nocasematch
      _comment_ci "${i#"$R"}" "$re"
    fi
    shopt -u nocasematch
  done
  if ((edited)); then _sshd_validate "$original"; fi
}

_file_has_active() { # FILE RE (caller sets nocasematch as needed)
  local l
  while IFS= read -r l || [[ -n $l ]]; do
    [[ $l =~ ^[[:space:]]*# ]] && continue
    [[ $l =~ $2 ]] && return 0
  done <"$1"
  return 1
}

_comment_ci() { # FILE(target) RE: comment out active lines matching RE, case-insensitively
  local file=$R$1 l out=()
  local lines=()
  mapfile -t lines <"$file"
  shopt -s nocasematch
  for l in "${lines[@]}"; do
    if [[ ! $l =~ ^[[:space:]]*# && $l =~ $2 ]]; then l="# cis: $l"; fi
    out+=("$l")
  done
  shopt -u nocasematch
  write_lines "$1" "${out[@]}"
  changed
  cis_detail "commented out a conflicting setting in $1"
}

_sshd_validate() { # ORIGINAL_CONTENT
  ((CIS_LIVE)) || return 0
  local sshd=/usr/sbin/sshd
  have sshd && sshd=$(command -v sshd)
  [[ -x $sshd ]] || return 0
  if ! "$sshd" -t -f "$R$CIS_SSHD_CONFIG" >&2; then
    replace_content "$CIS_SSHD_CONFIG" "$1"
    cis_fail "sshd rejects the new configuration; $CIS_SSHD_CONFIG restored"
  fi
}

# The value of KEYWORD that sshd uses: the first one in sshd_config or the files it includes.
sshd_effective() { # KEYWORD -> value (status 1 when unset)
  local re l f inc
  local ekey
  _re_escape_to ekey "$1"
  re="^[[:space:]]*${ekey}[[:space:]=]+(.*)$"
  shopt -s nocasematch
  while IFS= read -r l || [[ -n $l ]]; do
    [[ $l =~ ^[[:space:]]*# ]] && continue
    if [[ $l =~ ^[[:space:]]*Include[[:space:]]+(.*)$ ]]; then
      inc=${BASH_REMATCH[1]}
      for f in $R$inc; do
        [[ -f $f ]] || continue
        local l2
        while IFS= read -r l2 || [[ -n $l2 ]]; do
          [[ $l2 =~ ^[[:space:]]*# ]] && continue
          if [[ $l2 =~ $re ]]; then
            shopt -u nocasematch
            printf '%s' "${BASH_REMATCH[1]}"
            return 0
          fi
        done <"$f"
      done
      continue
    fi
    if [[ $l =~ ^[[:space:]]*Match[[:space:]] ]]; then break; fi
    if [[ $l =~ $re ]]; then
      shopt -u nocasematch
      printf '%s' "${BASH_REMATCH[1]}"
      return 0
    fi
  done <"$R$CIS_SSHD_CONFIG"
  shopt -u nocasematch
  return 1
}

# sshd_algorithms KEYWORD WEAK_REGEX STRONG_LIST: keep a configured list that has no weak
# algorithm in it; otherwise set STRONG_LIST.
sshd_algorithms() {
  local current item weak=0
  if current=$(sshd_effective "$1"); then
    local IFS=,
    for item in $current; do
      [[ $item =~ $2 ]] && weak=1
    done
    unset IFS
    if ((!weak)); then
      cis_detail "$1 already lists only strong algorithms ($current)"
      return 0
    fi
  fi
  sshd_set "$1" "$3"
}

# ---------------------------------------------------------------------------------------------
# PAM
# ---------------------------------------------------------------------------------------------

# The PAM files the CIS recommendations edit. Symbolic links (AL2: system-auth ->
# system-auth-ac) are edited through: the link stays, its target changes.
# shellcheck disable=SC2034  # used by the section scripts
CIS_PAM_STACKS=(/etc/pam.d/system-auth /etc/pam.d/password-auth)

_pam_target() { # PATH(target) -> real target path (without root prefix)
  local p=$1 t
  if [[ -L $R$p ]]; then
    t=$(readlink "$R$p")
    if [[ $t == /* ]]; then p=$t; else p=${p%/*}/$t; fi
  fi
  printf '%s' "$p"
}

# authselect manages the PAM stacks when it has a configuration; its files must not be edited.
authselect_in_use() { [[ -f $R/etc/authselect/authselect.conf ]] && have authselect; }

# pam_line FILE TYPE CONTROL MODULE ARGS POSITION ANCHOR_REGEX
# Ensure an active "TYPE CONTROL MODULE ARGS" line (the one matching TYPE and MODULE, and
# for pam_faillock also the first argument) exists, and has exactly CONTROL and ARGS.
# A new line goes before (POSITION=before) or after (after) the first active line matching
# ANCHOR_REGEX; when no line matches, before the first / after the last line of TYPE.
pam_line() {
  local target type=$2 control=$3 module=$4 args=$5 pos=$6 anchor=$7
  target=$(_pam_target "$1")
  local file=$R$target l i idx=-1 match_re want out=() first=-1 last=-1 aidx=-1 edited=0
  [[ -f $file ]] || cis_fail "$1 not found"
  local lines=()
  mapfile -t lines <"$file"
  local emod
  _re_escape_to emod "$module"
  match_re="^[[:space:]]*-?${type}[[:space:]]+(\[[^]]*\]|[^[:space:]]+)[[:space:]]+([^[:space:]]*/)?${emod}"
  if [[ $module == pam_faillock.so && -n $args ]]; then
    # preauth / authfail / authsucc lines are distinct lines of the same module
    match_re+="[[:space:]]+${args%% *}([[:space:]]|$)"
  else
    match_re+="([[:space:]]|$)"
  fi
  want=$(printf '%-11s %-13s %s' "$type" "$control" "$module")
  [[ -n $args ]] && want+=" $args"
  for i in "${!lines[@]}"; do
    l=${lines[$i]}
    [[ $l =~ ^[[:space:]]*# ]] && continue
    if [[ $l =~ ^[[:space:]]*-?${type}[[:space:]] ]]; then
      ((first < 0)) && first=$i
      last=$i
    fi
    if ((idx < 0)) && [[ $l =~ $match_re ]]; then idx=$i; fi
    if ((aidx < 0)) && [[ -n $anchor && $l =~ $anchor ]]; then aidx=$i; fi
  done
  if ((idx >= 0)); then
    if [[ $(_pam_norm "${lines[$idx]}") != "$(_pam_norm "$want")" ]]; then
      lines[idx]=$want
      edited=1
    fi
    out=("${lines[@]}")
  else
    edited=1
    local at
    if ((aidx >= 0)); then
      if [[ $pos == before ]]; then at=$aidx; else at=$((aidx + 1)); fi
    elif ((first >= 0)); then
      if [[ $pos == before ]]; then at=$first; else at=$((last + 1)); fi
    else
      at=${#lines[@]}
    fi
    out=("${lines[@]:0:at}" "$want" "${lines[@]:at}")
  fi
  if ((edited)); then
    write_lines "$target" "${out[@]}"
    changed
    cis_detail "set '$type $control $module $args' in $target"
  fi
}

_pam_norm() { # collapse blanks, so that alignment does not count as a difference
  local s=$1
  s=${s//$'\t'/ }
  while [[ $s == *"  "* ]]; do s=${s//  / }; done
  s=${s# }
  printf '%s' "${s% }"
}

# Print a PAM line from its words, aligned like the distribution's files
# ("type        control       module args"); a bracketed control may span several words.
_pam_format() {
  local type=$1 control=$2 i=3
  local close=']'
  if [[ $control == "["* && $control != *"$close" ]]; then
    while ((i <= $#)) && [[ $control != *"$close" ]]; do
      control+=" ${!i}"
      i=$((i + 1))
    done
  fi
  local module=${!i:-} tail=""
  i=$((i + 1))
  while ((i <= $#)); do
    tail+=" ${!i}"
    i=$((i + 1))
  done
  printf '%-11s %-13s %s%s' "$type" "$control" "$module" "$tail"
}

# pam_arg FILE TYPE MODULE ARG [VALUE]: the active TYPE/MODULE lines carry ARG (ARG=VALUE).
pam_arg() {
  local target type=$2 module=$3 arg=$4 value=${5-} l out=() edited=0 re new w words
  target=$(_pam_target "$1")
  local file=$R$target
  [[ -f $file ]] || cis_fail "$1 not found"
  local emod
  _re_escape_to emod "$module"
  re="^[[:space:]]*-?${type}[[:space:]]+(\[[^]]*\]|[^[:space:]]+)[[:space:]]+([^[:space:]]*/)?${emod}([[:space:]]|$)"
  local lines=()
  mapfile -t lines <"$file"
  for l in "${lines[@]}"; do
    if [[ ! $l =~ ^[[:space:]]*# && $l =~ $re ]]; then
      new=""
      local found=0
      read -r -a words <<<"$l"
      for w in "${words[@]}"; do
        if [[ $w == "$arg" || $w == "$arg="* ]]; then
          if ((found)); then continue; fi
          found=1
          if [[ -n $value ]]; then w="$arg=$value"; else w=$arg; fi
        fi
        new+="${new:+ }$w"
      done
      if ((!found)); then
        if [[ -n $value ]]; then new+=" $arg=$value"; else new+=" $arg"; fi
      fi
      if [[ $(_pam_norm "$new") != "$(_pam_norm "$l")" ]]; then
        read -r -a words <<<"$new"
        l=$(_pam_format "${words[@]}")
        edited=1
      fi
    fi
    out+=("$l")
  done
  if ((edited)); then
    write_lines "$target" "${out[@]}"
    changed
    cis_detail "set $arg${value:+=$value} on $type $module in $target"
  fi
}

# pam_drop_arg FILE TYPE MODULE ARG_REGEX: remove matching arguments from the TYPE/MODULE lines.
pam_drop_arg() {
  local target type=$2 module=$3 argre=$4 l out=() edited=0 re new w words
  target=$(_pam_target "$1")
  local file=$R$target
  [[ -f $file ]] || return 0
  local emod
  _re_escape_to emod "$module"
  re="^[[:space:]]*-?${type}[[:space:]]+(\[[^]]*\]|[^[:space:]]+)[[:space:]]+([^[:space:]]*/)?${emod}([[:space:]]|$)"
  local lines=()
  mapfile -t lines <"$file"
  for l in "${lines[@]}"; do
    if [[ ! $l =~ ^[[:space:]]*# && $l =~ $re ]]; then
      new=""
      read -r -a words <<<"$l"
      local dropped=0
      for w in "${words[@]}"; do
        if [[ $w =~ $argre ]]; then
          dropped=1
          continue
        fi
        new+="${new:+ }$w"
      done
      if ((dropped)); then
        read -r -a words <<<"$new"
        l=$(_pam_format "${words[@]}")
        edited=1
      fi
    fi
    out+=("$l")
  done
  if ((edited)); then
    write_lines "$target" "${out[@]}"
    changed
    cis_detail "removed /$argre/ from $type $module in $target"
  fi
}

# pam_present FILE TYPE CONTROL MODULE ARGS POSITION ANCHOR_REGEX: like pam_line, but an
# existing TYPE/MODULE line is left as it is (only a missing one is added).
pam_present() {
  local target file re l
  target=$(_pam_target "$1")
  file=$R$target
  [[ -f $file ]] || cis_fail "$1 not found"
  local emod
  _re_escape_to emod "$4"
  re="^[[:space:]]*-?$2[[:space:]]+(\[[^]]*\]|[^[:space:]]+)[[:space:]]+([^[:space:]]*/)?${emod}([[:space:]]|$)"
  while IFS= read -r l || [[ -n $l ]]; do
    [[ $l =~ ^[[:space:]]*# ]] && continue
    [[ $l =~ $re ]] && return 0
  done <"$file"
  pam_line "$@"
}

# ---------------------------------------------------------------------------------------------
# Kernel command line
# ---------------------------------------------------------------------------------------------

# kernel_arg ARG: ARG ("audit=1") is on the command line of every boot entry and in
# GRUB_CMDLINE_LINUX (for entries generated later). kernel_arg_absent ARG removes it.
kernel_arg() { _kernel_args add "$1"; }
kernel_arg_absent() { _kernel_args remove "$1"; }

_cmdline_edit() { # MODE ARG "words..." -> new words
  local mode=$1 arg=$2 w res="" name=${2%%=*} seen=0 words=()
  read -r -a words <<<"$3"
  for w in "${words[@]}"; do
    if [[ ${w%%=*} == "$name" ]]; then
      if [[ $mode == add && $seen -eq 0 ]]; then
        res+="${res:+ }$arg"
        seen=1
      elif [[ $mode == remove && $w != "$arg" ]]; then
        res+="${res:+ }$w"
      fi
      continue
    fi
    res+="${res:+ }$w"
  done
  if [[ $mode == add && $seen -eq 0 ]]; then res+="${res:+ }$arg"; fi
  printf '%s' "$res"
}

_kernel_args() { # add|remove ARG
  local mode=$1 arg=$2 grub=/etc/default/grub l cur new out=() found=0 edited=0
  # 1. /etc/default/grub
  if [[ -f $R$grub ]]; then
    local lines=()
    mapfile -t lines <"$R$grub"
    for l in "${lines[@]}"; do
      if [[ $l == GRUB_CMDLINE_LINUX=* ]]; then
        found=1
        cur=${l#GRUB_CMDLINE_LINUX=}
        cur=${cur#[\"\']}
        cur=${cur%[\"\']}
        new=$(_cmdline_edit "$mode" "$arg" "$cur")
        if [[ $new != "$cur" ]]; then
          l="GRUB_CMDLINE_LINUX=\"$new\""
          edited=1
        fi
      fi
      out+=("$l")
    done
    if ((!found)) && [[ $mode == add ]]; then
      out+=("GRUB_CMDLINE_LINUX=\"$arg\"")
      edited=1
    fi
    if ((edited)); then
      write_lines "$grub" "${out[@]}"
      changed
      cis_detail "$mode $arg in GRUB_CMDLINE_LINUX ($grub)"
    fi
  fi
  # 2. /etc/kernel/cmdline (kernel-install, AL2023)
  if [[ -f $R/etc/kernel/cmdline ]]; then
    read_file cur "$R/etc/kernel/cmdline"
    cur=${cur%$'\n'}
    new=$(_cmdline_edit "$mode" "$arg" "$cur")
    if [[ $new != "$cur" ]]; then
      replace_content /etc/kernel/cmdline "$new"$'\n'
      changed
      cis_detail "$mode $arg in /etc/kernel/cmdline"
    fi
  fi
  # 3. the boot entries
  local entries=("$R"/boot/loader/entries/*.conf) e need=0
  if [[ -f ${entries[0]} ]]; then
    # Boot Loader Specification entries (AL2023): grubby edits their "options" lines.
    for e in "${entries[@]}"; do
      while IFS= read -r l || [[ -n $l ]]; do
        if [[ $l =~ ^options[[:space:]]+(.*)$ ]]; then
          cur=${BASH_REMATCH[1]}
          [[ $(_cmdline_edit "$mode" "$arg" "$cur") != "$cur" ]] && need=1
        fi
      done <"$e"
    done
    if ((need)); then
      local flag=--args
      [[ $mode == remove ]] && flag=--remove-args
      grubby --update-kernel=ALL "$flag=$arg" >&2 || cis_fail "grubby could not update the boot entries"
      changed
      cis_detail "grubby: $mode $arg on every boot entry"
    fi
  else
    # A generated grub.cfg (AL2): regenerate it from /etc/default/grub.
    local cfg
    for cfg in "$R"/boot/grub2/grub.cfg "$R"/boot/efi/EFI/*/grub.cfg; do
      [[ -f $cfg ]] || continue
      need=0
      while IFS= read -r l || [[ -n $l ]]; do
        if [[ $l =~ ^[[:space:]]*linux(16|efi)?[[:space:]]+[^[:space:]]+[[:space:]]*(.*)$ ]]; then
          cur=${BASH_REMATCH[2]}
          [[ $(_cmdline_edit "$mode" "$arg" "$cur") != "$cur" ]] && need=1
        fi
      done <"$cfg"
      if ((need)); then
        grub2-mkconfig -o "${cfg#"$R"}" >&2 || cis_fail "grub2-mkconfig failed"
        changed
        cis_detail "regenerated ${cfg#"$R"}"
      fi
    done
  fi
}

# ---------------------------------------------------------------------------------------------
# Audit rules
# ---------------------------------------------------------------------------------------------

# audit_rules NAME < RULES: /etc/audit/rules.d/NAME.rules, loaded at the next boot.
# (Not loaded now: the last file locks the configuration with "-e 2", after which a build
# step that restarts auditd would fail.) `augenrules` merges them into audit.rules at the end.
audit_rules() {
  write_file "/etc/audit/rules.d/$1.rules" 0640
  if ((CIS_CHANGED)); then : >"$CIS_STATE/audit-rules-changed"; fi
}

# The syscall architectures to audit: b64 and b32 on x86_64. On aarch64 only b64 (32-bit
# compat syscalls are absent on recent Graviton CPUs, and auditctl rejects unknown names).
audit_arches() {
  if [[ $CIS_ARCH == x86_64 ]]; then echo "b64 b32"; else echo "b64"; fi
}

# Filter a comma-separated syscall list to the names the architecture has.
audit_syscalls() { # ARCH(b64|b32) LIST
  local arch=$1 s res=""
  local IFS=,
  for s in $2; do
    if [[ $CIS_ARCH == aarch64 ]]; then
      case $s in
      open | creat | chmod | chown | lchown | unlink | rename | rmdir | stime | create_module | query_module) continue ;;
      esac
    elif [[ $arch == b64 && $s == stime ]]; then
      continue
    fi
    res+="${res:+,}$s"
  done
  printf '%s' "$res"
}

# One rule per audited architecture: audit_syscall_rules "SYSCALLS" "FIELDS" KEY
audit_syscall_rules() {
  local a list
  for a in $(audit_arches); do
    list=$(audit_syscalls "$a" "$1")
    [[ -n $list ]] || continue
    printf -- '-a always,exit -F arch=%s -S %s %s-k %s\n' "$a" "$list" "${2:+$2 }" "$3"
  done
}

# audit_program_rule NAME PROGRAM KEY: NAME.rules holds the one rule that records every run of
# PROGRAM by a user (auid at least UID_MIN and set; "auid!=unset" is the AL2023 audit syntax).
audit_program_rule() {
  audit_rules "$1" <<EOF
-a always,exit -F path=$2 -F perm=x -F auid>=$(uid_min) -F auid!=unset -k $3
EOF
}

# auditd_full_action: warn by mail at space_left, then CIS_AUDIT_FULL_ACTION (suspend | single |
# halt) at admin_space_left and when the disk is full. Only halt and single satisfy "system is
# disabled when audit logs are full"; suspend is the documented default (packer/README.md).
auditd_full_action() {
  local action=$CIS_AUDIT_FULL_ACTION
  case $action in
  suspend | single | halt) ;;
  *) cis_fail "CIS_AUDIT_FULL_ACTION=$action: expected suspend, single or halt" ;;
  esac
  conf_set /etc/audit/auditd.conf space_left_action "space_left_action = email"
  conf_set /etc/audit/auditd.conf action_mail_acct "action_mail_acct = root"
  conf_set /etc/audit/auditd.conf admin_space_left_action "admin_space_left_action = $action"
  conf_set /etc/audit/auditd.conf disk_full_action "disk_full_action = $action"
}

# ---------------------------------------------------------------------------------------------
# /etc/fstab and the data volume
# ---------------------------------------------------------------------------------------------

# fstab_entry MOUNTPOINT SPEC FSTYPE OPTIONS: an entry for MOUNTPOINT exists (an existing entry
# is kept as it is; options are managed by fstab_option).
fstab_entry() {
  local mp=$1 line f
  if [[ -f $R/etc/fstab ]]; then
    while read -r line || [[ -n $line ]]; do
      [[ $line =~ ^[[:space:]]*# || -z $line ]] && continue
      read -r _ f _ <<<"$line"
      [[ $f == "$mp" ]] && return 0
    done <"$R/etc/fstab"
  fi
  printf '%s\t%s\t%s\t%s\t0 0\n' "$2" "$mp" "$3" "$4" >>"$R/etc/fstab" || cis_fail "cannot write /etc/fstab"
  changed
  cis_detail "added $mp to /etc/fstab"
}

fstab_has() { # MOUNTPOINT
  local line f
  [[ -f $R/etc/fstab ]] || return 1
  while read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*# || -z $line ]] && continue
    read -r _ f _ <<<"$line"
    [[ $f == "$1" ]] && return 0
  done <"$R/etc/fstab"
  return 1
}

# fstab_option MOUNTPOINT OPTION...: the fstab entry of MOUNTPOINT carries the options.
# Takes effect at the next mount (the next boot of the AMI); the running system is not
# remounted, so that the build (which runs scripts from /tmp) keeps working.
fstab_option() {
  local mp=$1 line out=() found=0 edited=0 spec f type opts rest o p
  shift
  for o in "$@"; do
    [[ $o == noexec ]] || continue
    for p in "${CIS_NODE_EXEC_PATHS[@]}"; do
      if [[ $mp == / || $p == "$mp" || $p == "$mp"/* ]]; then
        cis_fail "noexec on $mp would stop $p (EKS node: containerd, the kubelet, CNI plugins)"
      fi
    done
  done
  local lines=()
  mapfile -t lines <"$R/etc/fstab"
  for line in "${lines[@]}"; do
    if [[ ! $line =~ ^[[:space:]]*# && -n $line ]]; then
      read -r spec f type opts rest <<<"$line"
      if [[ $f == "$mp" ]]; then
        found=1
        for o in "$@"; do
          if [[ ,$opts, != *",$o,"* ]]; then
            opts+=",$o"
            edited=1
          fi
        done
        line=$(printf '%s\t%s\t%s\t%s\t%s' "$spec" "$f" "$type" "$opts" "${rest:-0 0}")
      fi
    fi
    out+=("$line")
  done
  ((found)) || cis_fail "$mp has no entry in /etc/fstab"
  if ((edited)); then
    write_lines /etc/fstab "${out[@]}"
    changed
    cis_detail "mount options $* on $mp"
  fi
}

# The second EBS volume of the build (launch_block_device_mappings /dev/xvdb, 64 GiB), partitioned
# into the separate file systems CIS asks for (GPT, XFS, mounted by label). /var is the last
# partition and takes the rest of the volume (container images live there); cis-grow-var grows
# it at boot when a launch template gives the volume more space. Sizes can be overridden with
# CIS_VARTMP_MIB, CIS_VARLOG_MIB, CIS_AUDIT_MIB and CIS_HOME_MIB.
CIS_DATA_DEVICE=${CIS_DATA_DEVICE:-/dev/xvdb}
# label:mount point:size in MiB (0 = the rest of the disk), in mount order
CIS_DATA_LAYOUT=(
  "cis-var:/var:0"
  "cis-vartmp:/var/tmp:${CIS_VARTMP_MIB:-4096}"
  "cis-varlog:/var/log:${CIS_VARLOG_MIB:-12288}"
  "cis-audit:/var/log/audit:${CIS_AUDIT_MIB:-6144}"
  "cis-home:/home:${CIS_HOME_MIB:-2048}"
)

CIS_GPT_LINUX=0FC63DAF-8483-4772-8E79-3D69D8477DE4
CIS_DATA_MOUNT_OPTIONS="defaults,nofail,x-systemd.device-timeout=${CIS_DATA_DEVICE_TIMEOUT:-10s}"

# data_volume MOUNTPOINT: MOUNTPOINT is a separate file system on the data volume (the first
# call partitions the volume, creates every file system, copies the current content of /var
# and /home onto them, records them in /etc/fstab and mounts them).
data_volume() {
  local mp=$1
  fstab_has "$mp" && return 0
  _data_volume_setup
  fstab_has "$mp" || cis_fail "$mp is not part of the data volume layout"
}

_data_volume_setup() {
  local entry label mp size dev real part n=0 stage=/mnt/cis-data script="label: gpt"$'\n'
  for entry in "${CIS_DATA_LAYOUT[@]}"; do
    IFS=: read -r label mp size <<<"$entry"
    if fstab_has "$mp"; then
      cis_fail "$mp is already in /etc/fstab but the data volume is not set up; refusing to guess"
    fi
  done
  dev=$CIS_DATA_DEVICE
  if [[ ! -e $R$dev ]]; then
    cis_fail "data volume $dev not found: the Packer template must attach it (launch_block_device_mappings)"
  fi
  real=$(readlink -f "$R$dev")
  real=${real#"$R"}
  if [[ -n $(blkid -p -o value -s PTTYPE "$R$real" 2>/dev/null || true) ]] ||
    [[ -n $(blkid -p -o value -s TYPE "$R$real" 2>/dev/null || true) ]]; then
    cis_fail "$dev ($real) already holds a partition table or a file system; refusing to overwrite it"
  fi
  # The partition table: the fixed-size partitions first, /var (the rest) last.
  local order=()
  for entry in "${CIS_DATA_LAYOUT[@]:1}" "${CIS_DATA_LAYOUT[0]}"; do
    IFS=: read -r label mp size <<<"$entry"
    # type: the GPT "Linux filesystem" GUID (older sfdisk versions know no type aliases)
    if ((size > 0)); then
      script+="size=${size}MiB, type=$CIS_GPT_LINUX, name=$label"$'\n'
    else
      script+="type=$CIS_GPT_LINUX, name=$label"$'\n'
    fi
    order+=("$label")
  done
  sfdisk --quiet --wipe always "$R$real" <<<"$script" >&2 || cis_fail "sfdisk could not partition $real"
  if have udevadm; then udevadm settle >/dev/null 2>&1 || true; fi
  local pfx=$real
  [[ $real =~ [0-9]$ ]] && pfx=${real}p
  declare -A partof=()
  for label in "${order[@]}"; do
    n=$((n + 1))
    part=$pfx$n
    local waited=0
    while [[ ! -e $R$part ]] && ((waited < 20)); do
      sleep 0.5
      waited=$((waited + 1))
    done
    [[ -e $R$part ]] || cis_fail "partition $part did not appear"
    mkfs.xfs -q -f -L "$label" "$R$part" >&2 || cis_fail "mkfs.xfs failed on $part"
    partof[$label]=$part
  done
  # Copy the current content (SELinux labels, ACLs and xattrs included) through a staging tree
  # that nests the new file systems as they will be mounted (/var, then /var/tmp, /var/log and
  # /var/log/audit inside it), so each file lands on the file system that will hold it.
  for entry in "${CIS_DATA_LAYOUT[@]}"; do
    IFS=: read -r label mp size <<<"$entry"
    mkdir -p "$R$stage$mp" || cis_fail "cannot create $stage$mp"
    mount "$R${partof[$label]}" "$R$stage$mp" || cis_fail "cannot mount ${partof[$label]}"
  done
  for mp in /var /home; do
    if [[ -d $R$mp ]]; then
      cp -ax "$R$mp/." "$R$stage$mp/" || cis_fail "copying $mp to the data volume failed"
    fi
  done
  local i
  for ((i = ${#CIS_DATA_LAYOUT[@]} - 1; i >= 0; i--)); do
    IFS=: read -r label mp size <<<"${CIS_DATA_LAYOUT[$i]}"
    umount "$R$stage$mp" || cis_fail "cannot unmount $stage$mp"
  done
  rmdir "$R$stage/var/tmp" "$R$stage/var/log/audit" "$R$stage/var/log" "$R$stage/var" \
    "$R$stage/home" "$R$stage" 2>/dev/null || true
  # nofail + a short device timeout: a node launched without the second volume still boots
  # (with a fresh /var that systemd-tmpfiles populates) and joins, instead of dropping to the
  # emergency shell after systemd's default 90 s wait.
  for entry in "${CIS_DATA_LAYOUT[@]}"; do
    IFS=: read -r label mp size <<<"$entry"
    fstab_entry "$mp" "LABEL=$label" xfs "$CIS_DATA_MOUNT_OPTIONS"
  done
  # Mount them now, so that the rest of the build (hardening and cleanup) writes to the file
  # systems that ship in the AMI. Running processes keep their open files on the old tree.
  for entry in "${CIS_DATA_LAYOUT[@]}"; do
    IFS=: read -r label mp size <<<"$entry"
    mount "$R${partof[$label]}" "$R$mp" || cis_fail "cannot mount $mp"
  done
  _data_volume_unhide
  if ((CIS_LIVE)) && have selinuxenabled && selinuxenabled; then
    restorecon -R /var /home >&2 || cis_warn "restorecon on /var and /home reported errors"
  fi
  _data_volume_grow_unit
  _data_volume_order_units
  changed
  cis_detail "data volume $dev: ${order[*]} (separate /var, /var/tmp, /var/log, /var/log/audit, /home)"
}

# The copies of /var and /home now live on the data volume; the originals are still on the root
# file system, hidden under the new mounts (wasted space, and stale data a node without the
# second volume would boot with). Empty them through a non-recursive bind mount of /, which shows
# the root file system without anything mounted on it; the mount point directories stay.
_data_volume_unhide() {
  local view=/mnt/cis-rootfs mp
  mkdir -p "$R$view" || cis_fail "cannot create $view"
  mount --bind "$R/" "$R$view" || cis_fail "cannot bind-mount / on $view"
  for mp in /var /home; do
    if [[ -d $R$view$mp ]]; then
      find "$R$view$mp" -xdev -mindepth 1 -delete ||
        cis_fail "cannot empty $mp on the root file system (under its new mount)"
    fi
  done
  umount "$R$view" || cis_fail "cannot unmount $view"
  rmdir "$R$view" || cis_fail "cannot remove $view"
  cis_detail "emptied /var and /home on the root file system (now on the data volume)"
}

# At every boot, grow /var (the last partition) to the size of the volume, so that a launch
# template can give nodes a bigger data volume for container images.
_data_volume_grow_unit() {
  write_file /usr/local/sbin/cis-grow-var 0755 <<'EOF'
#!/bin/bash
# Grow /var (last partition of the CIS data volume) to the size of the EBS volume.
set -u
src=$(findmnt -no SOURCE /var) || exit 0
disk=$(lsblk -no PKNAME "$src" | head -n1)
part=$(cat "/sys/class/block/${src##*/}/partition" 2>/dev/null) || exit 0
[ -n "$disk" ] && [ -n "$part" ] || exit 0
growpart "/dev/$disk" "$part" >/dev/null 2>&1   # exit 1 = nothing to grow
xfs_growfs /var >/dev/null
EOF
  write_file /etc/systemd/system/cis-grow-var.service 0644 <<'EOF'
[Unit]
Description=Grow /var to the size of the CIS data volume
RequiresMountsFor=/var
After=local-fs.target
Before=containerd.service kubelet.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/cis-grow-var

[Install]
WantedBy=multi-user.target
EOF
  svc_enable cis-grow-var.service
}

# The data volume's mounts are nofail, which (systemd.mount(5)) drops their ordering before
# local-fs.target: nodeadm, containerd and the kubelet could start, and write under /var, before
# /var is mounted. Order them after the mounts explicitly. Wants=, not Requires= (what
# RequiresMountsFor= adds): a node launched without the data volume must still start them, on
# its fresh /var, once the 10 s device timeout has failed the mounts.
CIS_NODE_SERVICES=(nodeadm-config.service nodeadm-run.service containerd.service kubelet.service)

_data_volume_order_units() {
  local svc entry label mp size mounts=""
  for entry in "${CIS_DATA_LAYOUT[@]}"; do
    IFS=: read -r label mp size <<<"$entry"
    [[ $mp == /var* ]] || continue
    mounts+="${mounts:+ }$(_mount_unit "$mp")"
  done
  for svc in "${CIS_NODE_SERVICES[@]}"; do
    write_file "/etc/systemd/system/$svc.d/10-cis-data-volume.conf" 0644 <<EOF
# CIS data volume: start after /var and its file systems are mounted (they are nofail).
[Unit]
Wants=$mounts
After=$mounts
EOF
  done
}

# _mount_unit /var/log/audit -> var-log-audit.mount (systemd-escape --path, for plain paths)
_mount_unit() {
  local path=${1#/}
  printf '%s.mount' "${path//\//-}"
}

# ---------------------------------------------------------------------------------------------
# File-system searches
# ---------------------------------------------------------------------------------------------

# The local file systems to search (mount points), from the target's mount table, else "/".
local_mounts() {
  local dev mp type _rest seen=0
  if [[ -r $R/proc/self/mounts ]]; then
    while read -r dev mp type _rest; do
      case $type in
      xfs | ext2 | ext3 | ext4 | btrfs | vfat)
        if [[ -z $R || $mp == "$R" || $mp == "$R"/* ]]; then
          printf '%s\n' "${mp#"$R"}"
          seen=1
        fi
        ;;
      esac
    done <"$R/proc/self/mounts"
  fi
  ((seen)) || printf '/\n'
}

# search EXPRESSION...: find(1) over every local file system of the target, skipping the
# container paths and pseudo file systems; prints target paths (without the root prefix).
search() {
  local prune=() p mp
  for p in "${CIS_CONTAINER_PATHS[@]}" "${CIS_SKIP_PATHS[@]}"; do
    prune+=(-path "$R$p" -o)
  done
  unset 'prune[${#prune[@]}-1]'
  while IFS= read -r mp; do
    [[ -z $mp ]] && mp=/
    find "$R${mp%/}/" -xdev \( "${prune[@]}" \) -prune -o \( "$@" \) -print 2>/dev/null |
      while IFS= read -r p; do printf '%s\n' "${p#"$R"}"; done
  done < <(local_mounts)
}

# ---------------------------------------------------------------------------------------------
# Accounts: /etc/passwd, /etc/shadow, /etc/group
# ---------------------------------------------------------------------------------------------

# Split a colon-separated line into the global array _F, keeping empty fields.
_split_colon() {
  local rest=$1
  _F=()
  while [[ $rest == *:* ]]; do
    _F+=("${rest%%:*}")
    rest=${rest#*:}
  done
  _F+=("$rest")
}

_join_colon() { # -> the global array _F joined with ":"
  local IFS=:
  printf '%s' "${_F[*]}"
}

# Edit one field of a colon-separated file (/etc/passwd, /etc/shadow, /etc/group) for the
# entries whose first field is one of NAMES.  set_db_field FILE FIELD(1-based) VALUE NAME...
set_db_field() {
  local file=$1 field=$2 value=$3 l out=() edited=0
  shift 3
  local names=" $* "
  local lines=()
  mapfile -t lines <"$R$file"
  for l in "${lines[@]}"; do
    if [[ -n $l && $names == *" ${l%%:*} "* ]]; then
      _split_colon "$l"
      while ((${#_F[@]} < field)); do _F+=(""); done
      if [[ ${_F[$((field - 1))]} != "$value" ]]; then
        _F[field - 1]=$value
        edited=1
        l=$(_join_colon)
      fi
    fi
    out+=("$l")
  done
  if ((edited)); then
    write_lines "$file" "${out[@]}"
    changed
    cis_detail "set field $field to '$value' in $file for: $*"
  fi
}

# Users with a usable password: the shadow hash does not start with "!" or "*".
users_with_password() {
  local name pw _rest
  while IFS=: read -r name pw _rest || [[ -n $name ]]; do
    [[ -n $pw && $pw != \!* && $pw != \** ]] && printf '%s\n' "$name"
  done <"$R/etc/shadow"
}

# Interactive users: UID >= UID_MIN, a login shell (not nologin/false).
interactive_users() { # -> "name:uid:home" lines
  local min name _pw uid _gid _gecos home shell
  min=$(uid_min)
  while IFS=: read -r name _pw uid _gid _gecos home shell || [[ -n $name ]]; do
    [[ $uid =~ ^[0-9]+$ ]] || continue
    ((uid >= min)) || continue
    [[ $name == nfsnobody || $name == nobody ]] && continue
    case $shell in */nologin | */false | "") continue ;; esac
    printf '%s:%s:%s\n' "$name" "$uid" "$home"
  done <"$R/etc/passwd"
}

# verify_unique FILE FIELD WHAT: fail when a value of the field occurs twice.
verify_unique() {
  local file=$R$1 field=$2 line v dups=""
  declare -A seen=()
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line ]] && continue
    _split_colon "$line"
    v=${_F[$((field - 1))]:-}
    if [[ -n ${seen[$v]:-} ]]; then dups+=" $v"; fi
    seen[$v]=1
  done <"$file"
  [[ -z $dups ]] || cis_fail "duplicate $3 in $1:$dups"
}

# ---------------------------------------------------------------------------------------------
# Building blocks shared by both platforms
# ---------------------------------------------------------------------------------------------

CIS_BANNER="Authorized users only. All activity may be monitored and reported."

# banner_file PATH: a static banner, without OS or kernel details (no \m \r \s \v escapes).
# A symbolic link (update-motd) is replaced by a regular file.
banner_file() {
  if [[ -L $R$1 ]]; then
    rm -f -- "$R$1" || cis_fail "cannot remove the link $1"
    changed
    cis_detail "replaced the symbolic link $1 by a static banner"
  fi
  write_file "$1" 0644 root root <<<"$CIS_BANNER"
}

# /tmp on tmpfs (fstab); the entry takes effect at the next boot. Not mounted during the build,
# which runs its scripts from /tmp.
tmp_tmpfs() {
  fstab_entry /tmp tmpfs tmpfs defaults,mode=1777
  if [[ $(unit_state tmp.mount) == masked ]]; then
    _systemctl unmask tmp.mount >&2 || cis_fail "cannot unmask tmp.mount"
    changed
    cis_detail "unmasked tmp.mount"
  fi
}

shm_tmpfs() { fstab_entry /dev/shm tmpfs tmpfs defaults; }

# gpgcheck=1 in the package manager's main configuration and every repository.
gpgcheck_on() { # MAIN_CONF
  ini_set "$1" main gpgcheck 1
  local f
  for f in "$R"/etc/yum.repos.d/*.repo; do
    [[ -f $f ]] || continue
    _replace_re "${f#"$R"}" '^[[:space:]]*gpgcheck[[:space:]]*=[[:space:]]*0[[:space:]]*$' 'gpgcheck=1'
  done
}

# _replace_re FILE REGEX LINE: replace every line matching REGEX by LINE.
_replace_re() {
  local file=$R$1 l out=() edited=0
  local lines=()
  mapfile -t lines <"$file"
  for l in "${lines[@]}"; do
    if [[ $l =~ $2 ]]; then
      l=$3
      edited=1
    fi
    out+=("$l")
  done
  if ((edited)); then
    write_lines "$1" "${out[@]}"
    changed
    cis_detail "replaced lines matching /$2/ in $1 by '$3'"
  fi
}

# managed_block FILE NAME < CONTENT: a block "# BEGIN cis NAME" ... "# END cis NAME" holding
# CONTENT exactly; appended when missing.
managed_block() {
  local file=$R$1 begin="# BEGIN cis $2" end="# END cis $2" want l in=0 found=0 out=() body=()
  local content
  IFS= read -r -d '' content || true
  mapfile -t body <<<"${content%$'\n'}"
  [[ -f $file ]] || cis_fail "$1 not found"
  local lines=() cur=()
  mapfile -t lines <"$file"
  for l in "${lines[@]}"; do
    if [[ $l == "$begin" ]]; then
      in=1
      found=1
      continue
    fi
    if ((in)); then
      if [[ $l == "$end" ]]; then in=0; else cur+=("$l"); fi
      continue
    fi
    out+=("$l")
  done
  want=$(lines_to_text "${body[@]}")
  if ((found)) && [[ $(lines_to_text "${cur[@]}") == "$want" ]]; then return 0; fi
  out+=("$begin" "${body[@]}" "$end")
  write_lines "$1" "${out[@]}"
  changed
  cis_detail "wrote the '$2' block of $1"
}

# AIDE checks the file system every day (systemd timer: no cron needed).
aide_timer() {
  write_file /etc/systemd/system/aidecheck.service 0644 <<'EOF'
[Unit]
Description=Check file integrity with AIDE (CIS)
ConditionPathExists=/var/lib/aide/aide.db.gz

[Service]
Type=oneshot
ExecStart=/usr/sbin/aide --check
EOF
  write_file /etc/systemd/system/aidecheck.timer 0644 <<'EOF'
[Unit]
Description=Daily AIDE file integrity check (CIS)

[Timer]
OnCalendar=*-*-* 05:00:00
RandomizedDelaySec=30min
Persistent=true

[Install]
WantedBy=timers.target
EOF
  svc_enable aidecheck.timer
}

aide_audit_tools() {
  [[ -f $R/etc/aide.conf ]] || cis_fail "/etc/aide.conf not found (AIDE is installed by the AIDE recommendation)"
  local t rules=""
  for t in auditctl auditd ausearch aureport autrace augenrules; do
    rules+="/sbin/$t p+i+n+u+g+s+b+acl+xattrs+sha512"$'\n'
  done
  managed_block /etc/aide.conf audit-tools <<<"${rules%$'\n'}"
}

# Time synchronisation with chrony: sources and options in a drop-in (/etc/chrony.d), the
# daemon running as the chrony user. chrony.conf itself is not rewritten; at most an include
# of /etc/chrony.d is appended when it has none.
chrony_dropin() {
  local conf=/etc/chrony.conf dropin=/etc/chrony.d/cis-time-sync.conf l has_include=0 has_source=0 f
  [[ -f $R$conf ]] || cis_fail "$conf not found (chrony is installed by the time synchronisation recommendation)"
  while IFS= read -r l || [[ -n $l ]]; do
    [[ $l =~ ^[[:space:]]*(include|confdir)[[:space:]]+/etc/chrony\.d ]] && has_include=1
    [[ $l =~ ^[[:space:]]*(server|pool)[[:space:]]+(169\.254\.169\.123|fd00:ec2::123) ]] && has_source=1
  done <"$R$conf"
  for f in "$R"/etc/chrony.d/*.conf "$R"/etc/chrony.d/*.sources; do
    [[ -f $f && ${f#"$R"} != "$dropin" ]] || continue
    while IFS= read -r l || [[ -n $l ]]; do
      [[ $l =~ ^[[:space:]]*(server|pool)[[:space:]]+(169\.254\.169\.123|fd00:ec2::123) ]] && has_source=1
    done <"$f"
  done
  if ((!has_include)); then
    printf '\n# CIS hardening: time sources and options in drop-ins\ninclude /etc/chrony.d/*.conf\n' >>"$R$conf" ||
      cis_fail "cannot append to $conf"
    changed
    cis_detail "added 'include /etc/chrony.d/*.conf' to $conf"
  fi
  if ((has_source)); then
    write_file "$dropin" 0644 <<'EOF'
# CIS: time synchronisation. The Amazon Time Sync Service is already configured elsewhere.
EOF
  else
    write_file "$dropin" 0644 <<'EOF'
# CIS: time synchronisation with the Amazon Time Sync Service (link-local, in every region).
server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4
EOF
  fi
  # chronyd runs as the chrony user (-u chrony in OPTIONS)
  local sys=/etc/sysconfig/chronyd opts
  if ! opts=$(conf_get "$sys" OPTIONS); then opts='""'; fi
  opts=${opts#\"}
  opts=${opts%\"}
  if [[ " $opts " != *" -u chrony "* ]]; then
    opts="${opts:+$opts }-u chrony"
    conf_set "$sys" OPTIONS "OPTIONS=\"$opts\""
  fi
}

# The CIS nftables ruleset for Amazon Linux 2023: one table of our own next to the tables of
# kube-proxy / iptables-nft. Policy accept everywhere: a default-deny would block the kubelet
# (10250), the VPC CNI, kube-proxy and EKS Pod Identity (169.254.170.23:80/2703); that
# recommendation (3.4.2.7) is an approved exception. What CIS asks beyond it is here: a table,
# base chains on the input/forward/output hooks, loopback traffic accepted and spoofed
# loopback traffic dropped. Stopping or reloading nftables.service only ever touches this table.
CIS_NFT_FILE=/etc/nftables/cis-eks.nft
nft_ruleset() {
  write_file "$CIS_NFT_FILE" 0600 <<'EOF'
#!/usr/sbin/nft -f
# CIS host firewall for EKS worker nodes (managed by cis-harden.sh).
# Only this table is (re)loaded: the rules of kube-proxy and the VPC CNI are never flushed.
table inet cis_eks_filter
delete table inet cis_eks_filter
table inet cis_eks_filter {
  chain input {
    type filter hook input priority filter; policy accept;
    iif "lo" accept
    ip saddr 127.0.0.0/8 counter drop
    ip6 saddr ::1 counter drop
    ct state established,related accept
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
  }
  chain output {
    type filter hook output priority filter; policy accept;
    oif "lo" accept
    ct state new,established,related accept
  }
}
EOF
  local main=/etc/sysconfig/nftables.conf
  # (re)loading the main file must not flush the rules of kube-proxy and the VPC CNI
  comment_out "$main" '^[[:space:]]*flush[[:space:]]+ruleset' "cis:"
  if [[ ! -f $R$main ]]; then
    write_file "$main" 0600 <<<"include \"$CIS_NFT_FILE\""
  else
    local l has=0
    while IFS= read -r l || [[ -n $l ]]; do
      [[ $l == "include \"$CIS_NFT_FILE\"" ]] && has=1
    done <"$R$main"
    if ((!has)); then
      printf 'include "%s"\n' "$CIS_NFT_FILE" >>"$R$main" || cis_fail "cannot append to $main"
      changed
      cis_detail "included $CIS_NFT_FILE in $main"
    fi
  fi
  unit_dropin nftables.service 50-cis-eks <<EOF
# Never flush the whole ruleset: kube-proxy and the VPC CNI keep their rules in nftables too.
[Service]
ExecReload=
ExecReload=/usr/sbin/nft -f $main
ExecStop=
ExecStop=/usr/sbin/nft delete table inet cis_eks_filter
EOF
}

# The CIS iptables/ip6tables configuration for Amazon Linux 2 (iptables-services).
# IPv4: policy ACCEPT (kube-proxy and the VPC CNI own the IPv4 rules; the default-deny and
# per-port recommendations are approved exceptions) plus the loopback rules.
# IPv6: default deny, with explicit allow rules for what an EKS node needs: loopback, replies,
# ICMPv6 (neighbour discovery), DHCPv6, the kubelet (10250), EKS Pod Identity
# (fd00:ec2::23, ports 80 and 2703), traffic from and to pods (VPC CNI host-side interfaces
# eni*/vlan*) and all outbound traffic.
iptables_rules() {
  write_file /etc/sysconfig/iptables 0600 <<'EOF'
# CIS iptables rules for EKS worker nodes (managed by cis-harden.sh). The policies stay ACCEPT:
# kube-proxy and the VPC CNI add their own chains when the node starts.
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -s 127.0.0.0/8 -j DROP
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -m conntrack --ctstate NEW,ESTABLISHED,RELATED -j ACCEPT
COMMIT
EOF
  write_file /etc/sysconfig/ip6tables 0600 <<'EOF'
# CIS ip6tables rules for EKS worker nodes (managed by cis-harden.sh): default deny, with the
# traffic an EKS node needs allowed explicitly.
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -s ::1 -j DROP
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -p udp --dport 546 -j ACCEPT
-A INPUT -p tcp --dport 10250 -j ACCEPT
-A INPUT -d fd00:ec2::23/128 -p tcp -m multiport --dports 80,2703 -j ACCEPT
-A INPUT -i eni+ -j ACCEPT
-A INPUT -i vlan+ -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i eni+ -j ACCEPT
-A FORWARD -o eni+ -j ACCEPT
-A FORWARD -i vlan+ -j ACCEPT
-A FORWARD -o vlan+ -j ACCEPT
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -m conntrack --ctstate NEW,ESTABLISHED,RELATED -j ACCEPT
COMMIT
EOF
  local u
  for u in iptables ip6tables; do
    unit_dropin "$u.service" 50-cis-eks <<EOF
# Stopping or reloading must not flush the rules that kube-proxy and the VPC CNI program.
[Service]
ExecReload=
ExecStop=
EOF
  done
}

# sudo_default SETTING: "Defaults SETTING" in /etc/sudoers.d/50-cis-hardening; for key=value
# settings, other files' values of the same key are commented out. Every change is checked
# with `visudo -c` and rolled back when sudo would reject it (a broken sudoers file would stop
# every later build step).
CIS_SUDOERS=/etc/sudoers.d/50-cis-hardening
sudo_default() {
  local setting=$1 key=${1%%=*} before had=0
  [[ -f $R$CIS_SUDOERS ]] && had=1
  read_file before "$R$CIS_SUDOERS"
  if ((!had)); then
    write_file "$CIS_SUDOERS" 0440 root root <<<"# CIS hardening (managed by cis-harden.sh)"
  fi
  conf_set "$CIS_SUDOERS" "Defaults $key" "Defaults $setting"
  set_mode "$CIS_SUDOERS" 0440 root root
  if [[ $setting == *=* ]]; then
    local f
    for f in "$R/etc/sudoers" "$R"/etc/sudoers.d/*; do
      [[ -f $f && ${f#"$R"} != "$CIS_SUDOERS" ]] || continue
      _sudo_comment "${f#"$R"}" "^[[:space:]]*Defaults([:@>!][^[:space:]]*)?[[:space:]].*${key}[[:space:]]*="
    done
  fi
  if ((CIS_LIVE)) && have visudo; then
    if ! visudo -c -q -f "$R$CIS_SUDOERS" >&2; then
      if ((had)); then replace_content "$CIS_SUDOERS" "$before"; else rm -f -- "$R$CIS_SUDOERS"; fi
      cis_fail "visudo rejects the sudoers change; rolled back"
    fi
  fi
}

_sudo_comment() { # FILE(target) REGEX
  local f=$R$1 before
  [[ -f $f ]] || return 0
  _file_has_active "$f" "$2" || return 0
  read_file before "$f"
  comment_out "$1" "$2" "cis:"
  if ((CIS_LIVE)) && have visudo && ! visudo -c -q -f "$f" >&2; then
    replace_content "$1" "$before"
    cis_fail "visudo rejects the change of $1; rolled back"
  fi
}

# A group (system GID) exists, with no members.
empty_group() { # NAME
  local name=$1 gid l
  if gid=$(name_to_id group "$name"); then
    set_db_field /etc/group 4 "" "$name"
    if [[ -f $R/etc/gshadow ]]; then set_db_field /etc/gshadow 4 "" "$name"; fi
    return 0
  fi
  declare -A used=()
  while IFS= read -r l || [[ -n $l ]]; do
    _split_colon "$l"
    used[${_F[2]:-x}]=1
  done <"$R/etc/group"
  for ((gid = 999; gid > 100; gid--)); do
    [[ -z ${used[$gid]:-} ]] && break
  done
  printf '%s:x:%s:\n' "$name" "$gid" >>"$R/etc/group" || cis_fail "cannot add group $name"
  if [[ -f $R/etc/gshadow ]]; then
    printf '%s:!::\n' "$name" >>"$R/etc/gshadow" || cis_fail "cannot add group $name to gshadow"
  fi
  changed
  cis_detail "created the empty group $name (gid $gid)"
}

# su only for members of an empty group (root is let through by pam_rootok before it).
su_restrict() {
  empty_group sugroup
  pam_line /etc/pam.d/su auth required pam_wheel.so "use_uid group=sugroup" after 'pam_rootok\.so'
}

# login.defs KEY VALUE
login_defs() { conf_set /etc/login.defs "$1" "$1 $2"; }

# _db_field passwd|shadow USER FIELD: field FIELD (1-based) of USER's entry (empty when none).
_db_field() {
  local l
  while IFS= read -r l || [[ -n $l ]]; do
    if [[ ${l%%:*} == "$2" ]]; then
      _split_colon "$l"
      printf '%s' "${_F[$3 - 1]:-}"
      return 0
    fi
  done <"$R/etc/$1"
}

_shadow_field() { _db_field shadow "$@"; } # USER FIELD
_passwd_field() { _db_field passwd "$@"; } # USER FIELD

# Password ageing of the users that have a password: shadow FIELD compared (le|ge) with VALUE;
# offending or empty fields are set to VALUE.
shadow_age() { # FIELD le|ge VALUE
  local field=$1 op=$2 value=$3 names=() u v
  while IFS= read -r u; do
    [[ -n $u ]] || continue
    v=$(_shadow_field "$u" "$field")
    if [[ ! $v =~ ^-?[0-9]+$ ]]; then
      names+=("$u")
    elif [[ $op == le ]] && ((v > value || v < 0)); then
      names+=("$u")
    elif [[ $op == ge ]] && ((v < value)); then
      names+=("$u")
    fi
  done < <(users_with_password)
  ((${#names[@]})) || return 0
  set_db_field /etc/shadow "$field" "$value" "${names[@]}"
}

# No user's last password change lies in the future (set to today when it does).
shadow_no_future_change() {
  local today names=() u v
  printf -v today '%(%s)T' -1
  today=$((today / 86400))
  while IFS= read -r u; do
    [[ -n $u ]] || continue
    v=$(_shadow_field "$u" 3)
    if [[ $v =~ ^[0-9]+$ ]] && ((v > today)); then names+=("$u"); fi
  done < <(users_with_password)
  ((${#names[@]})) || return 0
  set_db_field /etc/shadow 3 "$today" "${names[@]}"
}

# System accounts (UID < UID_MIN, except root, sync, shutdown, halt) have no login shell and a
# locked password.
system_accounts() {
  local min name pw uid shell nologin=/sbin/nologin shells=() locks=() e
  min=$(uid_min)
  [[ -e $R$nologin ]] || nologin=/usr/sbin/nologin
  while IFS=: read -r name _ uid _ _ _ shell || [[ -n $name ]]; do
    [[ $uid =~ ^[0-9]+$ ]] || continue
    ((uid < min)) || continue
    case $name in root | sync | shutdown | halt) continue ;; esac
    case $shell in */nologin | */false) ;; *) shells+=("$name") ;; esac
  done <"$R/etc/passwd"
  for name in "${shells[@]}"; do set_db_field /etc/passwd 7 "$nologin" "$name"; done
  while IFS=: read -r name _ uid _ || [[ -n $name ]]; do
    [[ $uid =~ ^[0-9]+$ ]] || continue
    ((uid < min)) || continue
    [[ $name == root ]] && continue
    pw=$(_shadow_field "$name" 2)
    [[ -z $pw || $pw == \!* || $pw == \** ]] && continue
    locks+=("$name:$pw")
  done <"$R/etc/passwd"
  for e in "${locks[@]}"; do set_db_field /etc/shadow 2 "!${e#*:}" "${e%%:*}"; done
}

# Accounts with an empty password field are locked.
no_empty_passwords() {
  local name pw names=()
  while IFS=: read -r name pw _ || [[ -n $name ]]; do
    [[ -n $name && -z $pw ]] && names+=("$name")
  done <"$R/etc/shadow"
  ((${#names[@]})) || return 0
  set_db_field /etc/shadow 2 '!' "${names[@]}"
}

# Every account uses a shadowed password ("x" in /etc/passwd).
shadowed_passwords() {
  local name pw bad=()
  while IFS=: read -r name pw _ || [[ -n $name ]]; do
    [[ -n $name && $pw != x ]] && bad+=("$name")
  done <"$R/etc/passwd"
  ((${#bad[@]})) || return 0
  if ((!CIS_LIVE)) || [[ -n $R ]]; then
    cis_fail "accounts without a shadowed password: ${bad[*]} (run pwconv)"
  fi
  pwconv || cis_fail "pwconv failed"
  changed
  cis_detail "pwconv: shadowed the passwords of ${bad[*]}"
}

# Checks of the account databases that only an administrator can resolve: they fail the build.
verify_groups_exist() {
  local name gid gids=" " l absent=""
  while IFS= read -r l || [[ -n $l ]]; do
    _split_colon "$l"
    gids+="${_F[2]:-} "
  done <"$R/etc/group"
  while IFS=: read -r name _ _ gid _ || [[ -n $name ]]; do
    [[ -n $name && $gids != *" $gid "* ]] && absent+=" $name(gid $gid)"
  done <"$R/etc/passwd"
  [[ -z $absent ]] || cis_fail "users whose group does not exist:$absent"
}

verify_only_root_uid0() {
  local name uid others=""
  while IFS=: read -r name _ uid _ || [[ -n $name ]]; do
    [[ $uid == 0 && $name != root ]] && others+=" $name"
  done <"$R/etc/passwd"
  [[ -z $others ]] || cis_fail "accounts other than root with UID 0:$others"
}

# The shadow group has no members and is no user's primary group.
shadow_group_empty() {
  local gid name g users=""
  gid=$(name_to_id group shadow) || return 0
  set_db_field /etc/group 4 "" shadow
  while IFS=: read -r name _ _ g _ || [[ -n $name ]]; do
    [[ $g == "$gid" ]] && users+=" $name"
  done <"$R/etc/passwd"
  [[ -z $users ]] || cis_fail "users with shadow as primary group:$users"
}

# The directories of root's PATH: root owned, not group/world writable; the directories that
# root's shell start files add ($HOME/bin, $HOME/.local/bin) exist (0700), so that PATH has no
# entry that is not a directory.
root_path() {
  local d f l
  for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [[ -d $R$d && ! -L $R$d ]] || continue
    limit_mode "$d" 0755 root -
  done
  for f in /root/.bashrc /root/.bash_profile /root/.profile; do
    [[ -f $R$f ]] || continue
    while IFS= read -r l || [[ -n $l ]]; do
      [[ $l =~ ^[[:space:]]*# ]] && continue
      # shellcheck disable=SC2016  # the literal text "$HOME/bin" in root's start files
      if [[ $l == *'$HOME/.local/bin'* ]]; then ensure_dir /root/.local/bin 0700 root root; fi
      # shellcheck disable=SC2016
      if [[ $l == *'$HOME/bin'* ]]; then ensure_dir /root/bin 0700 root root; fi
    done <"$R$f"
  done
}

# Home directories of interactive users: exist, owned by the user, mode 0750 or stricter.
home_dirs() {
  local name uid home gid
  while IFS=: read -r name uid home; do
    [[ -n $name ]] || continue
    gid=$(_passwd_field "$name" 4)
    if [[ ! -d $R$home ]]; then
      mkdir -p "$R$home" || cis_fail "cannot create $home"
      chmod 0750 "$R$home"
      chown "$uid:$gid" "$R$home" || cis_fail "cannot chown $home"
      changed
      cis_detail "created $home for $name"
    fi
    limit_mode "$home" 0750 "$name" -
  done < <(interactive_users)
}

# Dot files of interactive users: the named ones (forward, rhosts, netrc) are removed; .netrc
# and .bash_history are 0600, the other dot files not group or world writable.
dot_files() { # NAME... (without the dot) to remove
  local remove=" $* " name uid home f base
  while IFS=: read -r name uid home; do
    [[ -n $name && -d $R$home ]] || continue
    for f in "$R$home"/.[!.]*; do
      [[ -e $f && ! -L $f ]] || continue
      base=${f##*/}
      case $base in
      .forward | .rhosts | .netrc)
        if [[ $remove == *" ${base#.} "* ]]; then
          remove_file "${f#"$R"}"
        else
          limit_mode "${f#"$R"}" 0600 "$name" -
        fi
        ;;
      .bash_history) limit_mode "${f#"$R"}" 0600 "$name" - ;;
      *) if [[ -f $f ]]; then limit_mode "${f#"$R"}" 0755 "$name" -; fi ;;
      esac
    done
  done < <(interactive_users)
}

# TMOUT for interactive shells.
shell_timeout() {
  write_file /etc/profile.d/50-cis-tmout.sh 0644 <<'EOF'
# CIS: log out interactive shells after 15 minutes without input.
TMOUT=900
readonly TMOUT
export TMOUT
EOF
}

# Default umask 027: login.defs, a profile.d script, and no less restrictive umask in
# /etc/profile and /etc/bashrc.
default_umask() {
  login_defs UMASK 027
  write_file /etc/profile.d/50-cis-umask.sh 0644 <<'EOF'
# CIS: files created by users are not readable by others.
umask 027
EOF
  local f l out=() edited v
  for f in /etc/profile /etc/bashrc /etc/bash.bashrc; do
    [[ -f $R$f ]] || continue
    out=()
    edited=0
    local lines=()
    mapfile -t lines <"$R$f"
    for l in "${lines[@]}"; do
      if [[ $l =~ ^([[:space:]]*umask[[:space:]]+)([0-7]{3,4})([[:space:]]*(#.*)?)$ ]]; then
        v=$((8#${BASH_REMATCH[2]}))
        if (((v & 8#027) != 8#027)); then
          l="${BASH_REMATCH[1]}027${BASH_REMATCH[3]}"
          edited=1
        fi
      fi
      out+=("$l")
    done
    if ((edited)); then
      write_lines "$f" "${out[@]}"
      changed
      cis_detail "umask 027 in $f"
    fi
  done
}

# World-writable files lose o+w, world-writable directories get the sticky bit. The container
# paths are not searched: containerd and the kubelet need them (approved exception).
world_writable_files() {
  local p
  while IFS= read -r p; do
    [[ -n $p ]] || continue
    chmod o-w -- "$R$p" || cis_fail "cannot chmod o-w $p"
    changed
    cis_detail "chmod o-w $p"
  done < <(search -type f -perm -0002)
}

sticky_world_writable_dirs() {
  local p
  while IFS= read -r p; do
    [[ -n $p ]] || continue
    chmod a+t -- "$R$p" || cis_fail "cannot chmod +t $p"
    changed
    cis_detail "chmod +t $p"
  done < <(search -type d -perm -0002 ! -perm -1000)
}

# Files whose owner / group is not in the target's passwd / group databases get root; the
# container paths are not searched (approved exception).
_known_ids_expr() { # passwd|group -> find expression "! -uid N ! -uid M ..."
  local l flag=-uid
  [[ $1 == group ]] && flag=-gid
  while IFS= read -r l || [[ -n $l ]]; do
    [[ -n $l ]] || continue
    _split_colon "$l"
    printf '! %s %s ' "$flag" "${_F[2]}"
  done <"$R/etc/$1"
}

_unknown_ids_to_root() { # passwd|group
  local p expr=() cmd=chown what=owner
  if [[ $1 == group ]]; then cmd=chgrp what=group; fi
  read -r -a expr <<<"$(_known_ids_expr "$1")"
  while IFS= read -r p; do
    [[ -n $p ]] || continue
    "$cmd" -h 0 -- "$R$p" || cis_fail "cannot $cmd $p"
    changed
    cis_detail "$cmd root $p (its $what did not exist)"
  done < <(search "${expr[@]}")
}

unowned_files() { _unknown_ids_to_root passwd; }
ungrouped_files() { _unknown_ids_to_root group; }

# Log files under /var/log: no more permissive than CIS allows for their kind (the login
# records 0664, everything else 0640). Pod logs (containerd writes them 0640) are skipped.
log_file_permissions() {
  local mode p base max new
  [[ -d $R/var/log ]] || return 0
  while read -r mode p; do
    base=${p##*/}
    case $base in
    lastlog | lastlog.* | wtmp | wtmp.* | wtmp-* | btmp | btmp.* | btmp-*) max=0664 ;;
    *) max=0640 ;;
    esac
    new=$((8#$mode & 8#$max))
    if ((new != 8#$mode)); then
      chmod "$(printf '%o' "$new")" -- "$p" || cis_fail "cannot chmod ${p#"$R"}"
      changed
      cis_detail "chmod $(printf '%o' "$new") ${p#"$R"} (was $mode)"
    fi
  done < <(find "$R/var/log" \( -path "$R/var/log/pods" -o -path "$R/var/log/containers" \) -prune -o \
    -type f -printf '%m %p\n' 2>/dev/null)
}

# The audit log directory, from auditd.conf (log_file), default /var/log/audit.
audit_log_dir() {
  local f
  f=$(conf_get /etc/audit/auditd.conf log_file) || f=/var/log/audit/audit.log
  printf '%s' "${f%/*}"
}

# The files of the audit log directory: limit_mode MAX OWNER GROUPS for each.
audit_log_files() { # MAX OWNER GROUPS
  local dir f
  dir=$(audit_log_dir)
  [[ -d $R$dir ]] || return 0
  for f in "$R$dir"/*; do
    [[ -f $f ]] || continue
    limit_mode "${f#"$R"}" "$1" "$2" "$3"
  done
}

# Audit configuration files (/etc/audit/**/*.conf, *.rules): limit_mode MAX OWNER GROUPS.
audit_config_files() {
  local p
  [[ -d $R/etc/audit ]] || return 0
  while IFS= read -r p; do
    limit_mode "${p#"$R"}" "$1" "$2" "$3"
  done < <(find "$R/etc/audit" -type f \( -name '*.conf' -o -name '*.rules' \))
}

CIS_AUDIT_TOOLS=(/sbin/auditctl /sbin/aureport /sbin/ausearch /sbin/autrace /sbin/auditd /sbin/augenrules)
audit_tools() { # MAX OWNER GROUPS
  local t
  for t in "${CIS_AUDIT_TOOLS[@]}"; do limit_mode "$t" "$1" "$2" "$3"; done
}

# Setuid/setgid programs on the local file systems, one audit rule each.
privileged_rules() { # AUID_UNSET (unset | 4294967295)
  local min p
  min=$(uid_min)
  while IFS= read -r p; do
    [[ -n $p ]] || continue
    printf -- '-a always,exit -F path=%s -F perm=x -F auid>=%s -F auid!=%s -k privileged\n' "$p" "$min" "$1"
  done < <(search -type f \( -perm -4000 -o -perm -2000 \) | sort -u)
}

# SELinux: SELINUX= in /etc/selinux/config at least MODE (permissive < enforcing). Leaving
# "disabled" needs labels on every file: they are set now (setfiles), not by an autorelabel at
# the first boot of every node. The running mode is not changed during the build.
selinux_mode_at_least() { # permissive|enforcing
  local want=$1 cur
  cur=$(conf_get /etc/selinux/config SELINUX) || cur=disabled
  case $want:$cur in
  permissive:enforcing | permissive:permissive | enforcing:enforcing) return 0 ;;
  esac
  if [[ $cur == disabled ]]; then selinux_relabel; fi
  conf_set /etc/selinux/config SELINUX "SELINUX=$want"
}

# CIS_SELINUX_MODE is permissive or enforcing (the recommendation fails otherwise).
selinux_check_mode() {
  case $CIS_SELINUX_MODE in
  permissive | enforcing) ;;
  *) cis_fail "CIS_SELINUX_MODE=$CIS_SELINUX_MODE: expected permissive or enforcing" ;;
  esac
}

selinux_relabel() {
  local fc=/etc/selinux/targeted/contexts/files/file_contexts mounts=() mp
  if ((!CIS_LIVE)) || ! have setfiles; then
    cis_fail "SELinux is disabled: the file systems need labels (setfiles) before it can be enabled"
  fi
  while IFS= read -r mp; do mounts+=("$R$mp"); done < <(local_mounts)
  setfiles -F -e "$R/proc" -e "$R/sys" -e "$R/dev" -e "$R/run" "$R$fc" "${mounts[@]}" >&2 ||
    cis_fail "setfiles could not label the file systems"
  changed
  cis_detail "labelled the file systems for SELinux (${mounts[*]})"
}

# The system-wide crypto policy is not LEGACY.
crypto_policy_not_legacy() {
  local cur=""
  if [[ ! -f $R/etc/crypto-policies/config ]]; then
    cis_warn "no /etc/crypto-policies/config: the default policy applies"
    return 0
  fi
  read_file cur "$R/etc/crypto-policies/config"
  cur=${cur%%$'\n'*}
  [[ $cur == LEGACY* ]] || return 0
  if ((CIS_LIVE)) && [[ -z $R ]] && have update-crypto-policies; then
    update-crypto-policies --set DEFAULT >&2 || cis_fail "update-crypto-policies failed"
    changed
    cis_detail "crypto policy LEGACY -> DEFAULT"
  else
    cis_fail "the crypto policy is $cur; run update-crypto-policies --set DEFAULT"
  fi
}

# A mail transfer agent, if there is one, listens on the loopback interface only.
mta_local_only() {
  if pkg_installed postfix || [[ -f $R/etc/postfix/main.cf ]]; then
    conf_set /etc/postfix/main.cf inet_interfaces "inet_interfaces = loopback-only"
  fi
}

# cron / at: only users in <tool>.allow (root) may use it; no <tool>.deny.
allow_list() { # cron|at
  remove_file "/etc/$1.deny"
  if [[ ! -e $R/etc/$1.allow ]]; then
    write_file "/etc/$1.allow" 0600 root root <<<"root"
  fi
  limit_mode "/etc/$1.allow" 0600 root root
}

# No "Defaults !authenticate" anywhere in the sudoers files.
sudo_no_global_noauth() {
  local f
  for f in "$R/etc/sudoers" "$R"/etc/sudoers.d/*; do
    [[ -f $f ]] || continue
    _sudo_comment "${f#"$R"}" '^[[:space:]]*Defaults.*!authenticate'
  done
}

# The sudo log file configured in the sudoers files (default /var/log/sudo.log).
sudo_logfile() {
  local f l
  for f in "$R$CIS_SUDOERS" "$R/etc/sudoers" "$R"/etc/sudoers.d/*; do
    [[ -f $f ]] || continue
    while IFS= read -r l || [[ -n $l ]]; do
      if [[ $l =~ ^[[:space:]]*Defaults.*logfile[[:space:]]*=[[:space:]]*\"?([^\",[:space:]]+) ]]; then
        printf '%s' "${BASH_REMATCH[1]}"
        return 0
      fi
    done <"$f"
  done
  printf '/var/log/sudo.log'
}

# root has a password (a random one nobody knows: single-user and emergency mode then ask for
# a password instead of opening a root shell; nobody logs in as root).
root_password_set() {
  local pw secret
  pw=$(_shadow_field root 2)
  if [[ -n $pw && $pw != \!* && $pw != \** ]]; then return 0; fi
  secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n=+/') || cis_fail "no randomness"
  if [[ -n $R ]]; then
    printf 'root:%s\n' "$secret" | chpasswd -c SHA512 -R "$R" >&2 || cis_fail "chpasswd failed"
  else
    printf 'root:%s\n' "$secret" | chpasswd -c SHA512 >&2 || cis_fail "chpasswd failed"
  fi
  changed
  cis_detail "set a random root password that nobody knows"
  # the new password follows the ageing rules of the password recommendations
  shadow_age 5 le 365
  shadow_age 4 ge 1
  shadow_age 6 ge 7
  shadow_age 7 le 30
}

# No rsyslog file creation mode wider than 0640 (other than the one set by 5.1.1.4 / 4.2.1.3).
rsyslog_no_wider_filecreatemode() {
  local f
  for f in "$R"/etc/rsyslog.conf "$R"/etc/rsyslog.d/*.conf; do
    [[ -f $f ]] || continue
    local l out=() edited=0 v
    local lines=()
    mapfile -t lines <"$f"
    for l in "${lines[@]}"; do
      if [[ $l =~ ^[[:space:]]*\$FileCreateMode[[:space:]]+([0-7]+) ]]; then
        v=$((8#${BASH_REMATCH[1]}))
        if (((v & ~8#0640) != 0)); then
          l="# cis: $l"
          edited=1
        fi
      fi
      out+=("$l")
    done
    if ((edited)); then
      write_lines "${f#"$R"}" "${out[@]}"
      changed
      cis_detail "commented out a wider \$FileCreateMode in ${f#"$R"}"
    fi
  done
}

# rsyslog does not accept messages from the network.
rsyslog_no_remote_input() {
  local f re='(imtcp|imudp|imrelp|InputTCPServerRun|UDPServerRun|InputRELPServerRun)'
  for f in "$R"/etc/rsyslog.conf "$R"/etc/rsyslog.d/*.conf; do
    [[ -f $f ]] || continue
    comment_out "${f#"$R"}" "$re" "cis:"
  done
}

# systemd-journald is a static unit, started by systemd on every boot.
journald_static() {
  local state
  state=$(unit_state systemd-journald.service)
  case $state in
  static | enabled | indirect) return 0 ;;
  *) cis_fail "systemd-journald.service is '$state'" ;;
  esac
}

# authselect: a feature of the current profile is enabled.
authselect_feature() { # FEATURE
  local cur
  cur=$(authselect current 2>/dev/null) || cis_fail "authselect has no current profile"
  [[ $cur == *"- $1"* ]] && return 0
  authselect enable-feature "$1" >&2 || cis_fail "authselect enable-feature $1 failed"
  authselect apply-changes >&2 || cis_fail "authselect apply-changes failed"
  changed
  cis_detail "authselect: enabled $1"
}

# pam_* in the generated stacks (authselect): verify only.
_pam_stacks_have() { # REGEX WHAT
  local f
  for f in "${CIS_PAM_STACKS[@]}"; do
    _file_has_active "$R$(_pam_target "$f")" "$1" || cis_fail "$f has no $2 (authselect profile)"
  done
}

CIS_PAM_UNIX_AUTH='^[[:space:]]*auth[[:space:]]+[^[:space:]]+[[:space:]]+pam_unix\.so'

# Lockout after failed logins (pam_faillock) in system-auth and password-auth.
# AL2023: the thresholds are in /etc/security/faillock.conf; AL2 (pam 1.1) takes them as
# module arguments.
pam_faillock_stack() {
  local f pre="preauth silent" fail="authfail" ctl=required
  if [[ $CIS_PLATFORM == al2 ]]; then
    pre="preauth silent audit deny=5 unlock_time=900"
    fail="authfail audit deny=5 unlock_time=900"
    ctl="[default=die]"
  elif authselect_in_use; then
    authselect_feature with-faillock
    return 0
  fi
  for f in "${CIS_PAM_STACKS[@]}"; do
    pam_line "$f" auth required pam_faillock.so "$pre" before "$CIS_PAM_UNIX_AUTH"
    pam_line "$f" auth "$ctl" pam_faillock.so "$fail" after "$CIS_PAM_UNIX_AUTH"
    pam_line "$f" account required pam_faillock.so "" before '^[[:space:]]*account[[:space:]]'
  done
}

# Password quality (pam_pwquality, settings in pwquality.conf).
pam_pwquality_stack() {
  local f
  if [[ $CIS_PLATFORM == al2023 ]] && authselect_in_use; then
    _pam_stacks_have 'pam_pwquality\.so' pam_pwquality
    return 0
  fi
  for f in "${CIS_PAM_STACKS[@]}"; do
    pam_present "$f" password requisite pam_pwquality.so "try_first_pass local_users_only retry=3" \
      before '^[[:space:]]*password[[:space:]]'
    pam_arg "$f" password pam_pwquality.so try_first_pass
    pam_arg "$f" password pam_pwquality.so retry 3
  done
}

# Password reuse: the last 5 passwords are remembered (pam_pwhistory).
pam_pwhistory_stack() {
  local f
  if [[ $CIS_PLATFORM == al2023 ]] && authselect_in_use; then
    conf_set /etc/security/pwhistory.conf remember "remember = 5"
    authselect_feature with-pwhistory
    return 0
  fi
  for f in "${CIS_PAM_STACKS[@]}"; do
    pam_present "$f" password required pam_pwhistory.so "use_authtok remember=5" \
      after 'pam_pwquality\.so'
    pam_arg "$f" password pam_pwhistory.so remember 5
    pam_arg "$f" password pam_pwhistory.so use_authtok
  done
}

# New passwords are hashed with SHA-512 (pam_unix).
pam_sha512_stack() {
  local f
  if [[ $CIS_PLATFORM == al2023 ]] && authselect_in_use; then
    _pam_stacks_have '^[[:space:]]*password[[:space:]].*pam_unix\.so.*[[:space:]]sha512' "pam_unix sha512"
    return 0
  fi
  for f in "${CIS_PAM_STACKS[@]}"; do
    pam_drop_arg "$f" password pam_unix.so '^(md5|bigcrypt|sha256|blowfish|gost_yescrypt|yescrypt)$'
    pam_arg "$f" password pam_unix.so sha512
  done
}

# The boot loader configuration is readable by root only (grub.cfg, grubenv, user.cfg); a FAT
# /boot/efi has no file modes, so its mount options restrict them.
bootloader_permissions() {
  local f
  for f in /boot/grub2/grub.cfg /boot/grub2/grubenv /boot/grub2/user.cfg '/boot/efi/EFI/*/grub.cfg'; do
    limit_mode_glob 0600 root root "$f"
  done
  if fstab_has /boot/efi; then fstab_option /boot/efi fmask=0077 uid=0 gid=0; fi
}

# Removable media (CD/DVD, floppy, USB) in /etc/fstab carry OPTION. EC2 instances have none.
removable_media_option() { # OPTION
  local line spec mp type _rest mps=()
  while read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*# || -z $line ]] && continue
    read -r spec mp type _rest <<<"$line"
    case $spec:$mp:$type in
    /dev/cdrom* | /dev/sr* | /dev/fd* | *:/media/* | *:/mnt/usb* | *:*:iso9660 | *:*:udf) mps+=("$mp") ;;
    esac
  done <"$R/etc/fstab"
  for mp in "${mps[@]}"; do fstab_option "$mp" "$1"; done
}

# Single-user (rescue) and emergency mode ask for root's password (sulogin).
single_user_auth() {
  local u f l ok
  for u in rescue emergency; do
    f=""
    for l in /etc/systemd/system/$u.service /usr/lib/systemd/system/$u.service; do
      [[ -f $R$l ]] && f=$R$l && break
    done
    [[ -n $f ]] || continue
    ok=0
    while IFS= read -r l || [[ -n $l ]]; do
      [[ $l =~ ^ExecStart=.*sulogin ]] && ok=1
    done <"$f"
    for l in "$R/etc/systemd/system/$u.service.d"/*.conf; do
      [[ -f $l ]] || continue
      _file_has_active "$l" '^ExecStart=.*sulogin' && ok=1
    done
    ((ok)) && continue
    unit_dropin "$u.service" 50-cis-sulogin <<'EOF'
[Service]
ExecStart=
ExecStart=-/bin/sh -c "/usr/sbin/sulogin; /usr/bin/systemctl --fail --no-block default"
EOF
  done
}

# No wireless interface is active (EC2 instances have none).
wireless_off() {
  local d found=0
  for d in "$R"/sys/class/net/*/wireless; do
    [[ -d $d ]] && found=1
  done
  ((found)) || return 0
  have nmcli || cis_fail "wireless interfaces found and nmcli is missing"
  nmcli radio all off >&2 || cis_fail "nmcli radio all off failed"
  changed
  cis_detail "turned off the wireless interfaces"
}

# ---------------------------------------------------------------------------------------------
# EKS node requirements (not a CIS recommendation; checked by packer/scripts/node/probe.sh)
# ---------------------------------------------------------------------------------------------

# overlay and br_netfilter are loaded at boot. The EKS-optimized AL2023 AMI persists
# net.bridge.bridge-nf-call-ip{,6}tables = 1 (/etc/sysctl.d/99-kubernetes-cri.conf), keys that
# exist only while br_netfilter is loaded, and ships an empty /etc/modules-load.d/containerd.conf;
# this drop-in makes the module, and so those settings, part of every boot.
node_modules_at_boot() {
  write_file /etc/modules-load.d/cis-eks-node.conf 0644 <<'EOF'
# EKS node (cis-harden.sh): containerd's overlayfs snapshotter, and br_netfilter for the
# net.bridge.bridge-nf-call-* settings of /etc/sysctl.d/99-kubernetes-cri.conf.
overlay
br_netfilter
EOF
}

# Run after the recommendations; reports on stderr only (stdout has one line per
# recommendation). Status 1 when a requirement could not be met.
node_requirements() {
  (
    # a primitive that cannot do its job ends this subshell through cis_fail (exit 1)
    set -o nounset -o pipefail
    CIS_ID=node
    CIS_TITLE="EKS node requirements"
    node_modules_at_boot
  ) || return 1
}

# ---------------------------------------------------------------------------------------------
# End of the run
# ---------------------------------------------------------------------------------------------

# Actions that must follow every other change: the AIDE database (so that it records the
# hardened system), the merged audit rules, systemd's view of changed units.
cis_finalize() {
  local rc=0 changes
  changes=$(grep -c -E $'\t''applied$' "$CIS_STATE/results" || true)
  if ((CIS_LIVE)); then systemctl daemon-reload >/dev/null 2>&1 || true; fi
  if [[ -f $CIS_STATE/audit-rules-changed ]] && ((CIS_LIVE)) && have augenrules; then
    augenrules >/dev/null 2>&1 || {
      echo "cis-harden: augenrules could not merge /etc/audit/rules.d" >&2
      rc=1
    }
  fi
  if ((CIS_LIVE)) && pkg_installed aide; then
    if [[ ! -f $R/var/lib/aide/aide.db.gz ]] || ((changes > 0)); then
      echo "cis-harden: initialising the AIDE database (this takes a few minutes)" >&2
      if [[ -n $R ]]; then
        aide --init --config="$R/etc/aide.conf" >/dev/null 2>&1 || rc=1
      else
        aide --init >/dev/null 2>&1 || rc=1
      fi
      if [[ -f $R/var/lib/aide/aide.db.new.gz ]]; then
        mv -f "$R/var/lib/aide/aide.db.new.gz" "$R/var/lib/aide/aide.db.gz" || rc=1
      else
        echo "cis-harden: aide --init did not produce /var/lib/aide/aide.db.new.gz" >&2
        rc=1
      fi
    fi
  fi
  return "$rc"
}
