#!/usr/bin/env bash
# Node-readiness probe of a hardened Amazon EKS node (Amazon Linux 2023), run by `validate`
# over SSM Run Command (AWS-RunShellScript). Read-only: it starts, stops, loads and writes
# nothing (modprobe only with -n, systemctl only is-enabled/is-active, iptables only -S and
# --version, curl only to the instance metadata service, with a PUT for the IMDSv2 token).
#
# Output (stdout, ASCII), one NODE line per check, in the order of the catalogue
# pipeline/data/node/amazon-linux-2023.json:
#   NODE-PROBE|1|<number of checks>
#   NODE|<check id>|PASS|<observed>      or      NODE|<check id>|FAIL|<observed>
#   NODE-PROBE-END|<number of NODE lines printed>
# <observed> is what was seen: printable ASCII, no "|", at most 200 characters. A check that
# errors is a FAIL with what it saw. Exit status 0, whatever the checks found.
#
# Tests only: NODE_PROBE_ROOT (default empty) is prefixed to every file the probe reads
# (/etc, /usr, /proc, /sys); the commands (modprobe, systemctl, iptables, chronyc, curl) are
# found through PATH, so that tests can put stubs first.

# The checks are called by name (check_<id with "_" for ".">), which shellcheck cannot follow.
# shellcheck disable=SC2317

# SSM's AWS-RunShellScript runs the commands with sh (bash on Amazon Linux 2023); under another
# shell, run the script file with bash.
if [ -z "${BASH_VERSION:-}" ] && [ -r "$0" ]; then exec bash "$0" "$@"; fi

export LC_ALL=C
# modprobe and iptables live in sbin; a caller's PATH comes first (tests put stubs there).
PATH=${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin:/usr/bin:/bin
R=${NODE_PROBE_ROOT:-}
R=${R%/}
IMDS=http://169.254.169.254
MAX_OBSERVED=200

CHECKS=(
  node.nodeadm.installed
  node.nodeadm.enabled
  node.kubelet.installed
  node.containerd.installed
  node.kernel.overlay
  node.kernel.br_netfilter
  node.sysctl.ip_forward
  node.sysctl.bridge_nf_call_iptables
  node.sysctl.bridge_nf_call_ip6tables
  node.mounts.exec
  node.netfilter.usable
  node.time.sync
  node.fstab.nofail
  node.imds.v2
)

# ---------------------------------------------------------------------------------------------
# Helpers: a check prints "PASS|<observed>" or "FAIL|<observed>" (pass / fail below).
# ---------------------------------------------------------------------------------------------

pass() { printf 'PASS|%s' "$*"; }
fail() { printf 'FAIL|%s' "$*"; }

# One line of printable ASCII: other characters become "?", "|" becomes "/", capped.
clean() {
  local s=$1
  s=${s//$'\n'/; }
  s=${s//[^[:print:]]/?}
  s=${s//|//}
  if ((${#s} > MAX_OBSERVED)); then s="${s:0:MAX_OBSERVED-3}..."; fi
  printf '%s' "$s"
}

# Run a command with a time limit when timeout(1) exists; stderr joins stdout.
run() {
  if command -v timeout >/dev/null 2>&1; then
    timeout 20 "$@" 2>&1
  else
    "$@" 2>&1
  fi
}

# The first line of a command's output, without trailing blanks.
first_line() {
  local s=$1
  s=${s%%$'\n'*}
  printf '%s' "${s%"${s##*[![:space:]]}"}"
}

# The arguments joined with "; ".
join() {
  local out=$1
  shift
  while (($#)); do
    out+="; $1"
    shift
  done
  printf '%s' "$out"
}

executable() { [[ -f $R$1 && -x $R$1 ]]; }

# systemctl is-enabled UNIT -> its state ("not-found" when systemctl names none).
unit_state() {
  local out
  out=$(run systemctl is-enabled "$1")
  out=$(first_line "$out")
  case $out in
  enabled | enabled-runtime | linked | linked-runtime | alias | masked | masked-runtime | static | \
    indirect | disabled | generated | transient | bad | not-found) printf '%s' "$out" ;;
  *) printf 'not-found' ;;
  esac
}

# Configuration files of DIRS (highest priority first) with suffix .conf: a file name in an
# earlier directory hides the same name in the later ones (a link to /dev/null hides it and
# adds nothing); printed sorted by file name.
conf_files() {
  local d f name seen=" " names=() paths=()
  for d in "$@"; do
    for f in "$R$d"/*.conf; do
      [[ -e $f || -L $f ]] || continue
      name=${f##*/}
      [[ $seen == *" $name "* ]] && continue
      seen+="$name "
      [[ -f $f ]] || continue
      names+=("$name")
      paths+=("$f")
    done
  done
  local i j
  # sort by file name (a handful of files: insertion order by comparison)
  for ((i = 1; i < ${#names[@]}; i++)); do
    for ((j = i; j > 0; j--)); do
      if [[ ${names[j]} < ${names[j - 1]} ]]; then
        local tn=${names[j]} tp=${paths[j]}
        names[j]=${names[j - 1]}
        paths[j]=${paths[j - 1]}
        names[j - 1]=$tn
        paths[j - 1]=$tp
      else
        break
      fi
    done
  done
  for f in "${paths[@]}"; do printf '%s\n' "$f"; done
}

MODPROBE_DIRS=(/etc/modprobe.d /run/modprobe.d /usr/local/lib/modprobe.d /usr/lib/modprobe.d /lib/modprobe.d)
MODULES_LOAD_DIRS=(/etc/modules-load.d /run/modules-load.d /usr/local/lib/modules-load.d /usr/lib/modules-load.d /lib/modules-load.d)
SYSCTL_DIRS=(/etc/sysctl.d /run/sysctl.d /usr/local/lib/sysctl.d /usr/lib/sysctl.d /lib/sysctl.d)

same_module() { [[ ${1//-/_} == "${2//-/_}" ]]; }

# Why MODULE cannot be loaded by name or at boot (blacklist, install to false/true/null, kernel
# command line), or nothing.
module_blocked() {
  local mod=$1 f line word1 word2 rest cmd files cmdline w
  files=$(conf_files "${MODPROBE_DIRS[@]}")
  while IFS= read -r f; do
    [[ -n $f ]] || continue
    while IFS= read -r line || [[ -n $line ]]; do
      read -r word1 word2 rest <<<"$line"
      [[ -n $word2 ]] || continue
      same_module "$word2" "$mod" || continue
      case $word1 in
      blacklist)
        printf 'blacklisted in %s' "${f#"$R"}"
        return 0
        ;;
      install)
        read -r cmd _ <<<"$rest"
        case ${cmd##*/} in
        false | true | null | nologin)
          printf 'install %s %s in %s' "$word2" "$cmd" "${f#"$R"}"
          return 0
          ;;
        esac
        ;;
      esac
    done <"$f"
  done <<<"$files"
  if [[ -r $R/proc/cmdline ]]; then
    read -r cmdline <"$R/proc/cmdline"
    for w in $cmdline; do
      case $w in
      modprobe.blacklist=* | module_blacklist=*)
        local list=,${w#*=},
        if [[ ${list//-/_} == *",${mod//-/_},"* ]]; then
          printf 'kernel command line %s' "$w"
          return 0
        fi
        ;;
      esac
    done
  fi
  return 1
}

# Is MODULE loaded (or built in) in the running kernel?
module_loaded() {
  local mod=${1//-/_} name _rest
  [[ -d $R/sys/module/$mod ]] && return 0
  if [[ -r $R/proc/modules ]]; then
    while read -r name _rest; do
      [[ $name == "$mod" ]] && return 0
    done <"$R/proc/modules"
  fi
  return 1
}

# modprobe -n -v MODULE: what loading would do (dry run). Prints the observation; status 1
# when the module cannot be loaded.
module_loadable() {
  local mod=$1 out rc blocked
  if blocked=$(module_blocked "$mod"); then
    printf '%s' "$blocked"
    return 1
  fi
  out=$(run modprobe -n -v "$mod")
  rc=$?
  if ((rc != 0)); then
    printf 'modprobe -n -v %s: exit %s: %s' "$mod" "$rc" "$(first_line "$out")"
    return 1
  fi
  if [[ $out =~ (^|$'\n')install[[:space:]]+([^[:space:]]*/)?(false|true)([[:space:]]|$) ]]; then
    printf 'modprobe -n -v %s: %s' "$mod" "$(first_line "$out")"
    return 1
  fi
  if [[ -z $out ]]; then
    if module_loaded "$mod"; then out="already loaded"; else out="no action"; fi
  fi
  printf 'loadable (%s)' "$(first_line "$out")"
}

# The modules-load.d file that lists MODULE, or nothing (status 1).
module_listed_at_boot() {
  local mod=$1 f line files
  files=$(conf_files "${MODULES_LOAD_DIRS[@]}")
  while IFS= read -r f; do
    [[ -n $f ]] || continue
    while IFS= read -r line || [[ -n $line ]]; do
      line=${line%%#*}
      line=${line//[[:space:]]/}
      [[ -n $line && $line != \;* ]] || continue
      if same_module "$line" "$mod"; then
        printf '%s' "${f#"$R"}"
        return 0
      fi
    done <"$f"
  done <<<"$files"
  return 1
}

# The value of sysctl KEY set at boot (systemd-sysctl order: files sorted by name, the last
# assignment wins), as "value (file)"; status 1 when no file sets it. /etc/sysctl.conf counts
# where /etc/sysctl.d/99-sysctl.conf links to it, else last (as `sysctl --system` reads it).
sysctl_persisted() {
  local key=$1 f line k v found="" files
  files=$(conf_files "${SYSCTL_DIRS[@]}")
  if [[ -f $R/etc/sysctl.conf && ! $R/etc/sysctl.d/99-sysctl.conf -ef $R/etc/sysctl.conf ]]; then
    files+=$'\n'"$R/etc/sysctl.conf"
  fi
  while IFS= read -r f; do
    [[ -n $f ]] || continue
    while IFS= read -r line || [[ -n $line ]]; do
      line=${line#"${line%%[![:space:]]*}"}
      [[ -n $line && $line != \#* && $line != \;* && $line == *=* ]] || continue
      k=${line%%=*}
      v=${line#*=}
      k=${k#-}
      k=${k//[[:space:]]/}
      k=${k//\//.}
      v=${v//[[:space:]]/}
      [[ $k == "$key" ]] && found="$v (${f#"$R"})"
    done <"$f"
  done <<<"$files"
  [[ -n $found ]] || return 1
  printf '%s' "$found"
}

# The running value of sysctl KEY (/proc/sys), status 1 when the key does not exist.
sysctl_runtime() {
  local path=$R/proc/sys/${1//.//} v
  [[ -r $path ]] || return 1
  read -r v <"$path" || [[ -n $v ]] || return 1
  printf '%s' "$v"
}

sysctl_is_one() {
  local key=$1 rt pers
  if ! rt=$(sysctl_runtime "$key"); then
    rt="missing"
  fi
  if ! pers=$(sysctl_persisted "$key"); then
    pers="not set"
  fi
  if [[ $rt == 1 && $pers == "1 ("* ]]; then
    pass "$key=1 at runtime; persisted $pers"
  else
    fail "$key=$rt at runtime (want 1); persisted: $pers (want 1)"
  fi
}

# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------

check_node_nodeadm_installed() {
  if executable /usr/bin/nodeadm; then
    pass "/usr/bin/nodeadm is an executable file"
  elif [[ -e $R/usr/bin/nodeadm ]]; then
    fail "/usr/bin/nodeadm exists but is not an executable file"
  else
    fail "/usr/bin/nodeadm not found"
  fi
}

check_node_nodeadm_enabled() {
  local config run
  config=$(unit_state nodeadm-config.service)
  run=$(unit_state nodeadm-run.service)
  if [[ $config == enabled && $run == enabled ]]; then
    pass "nodeadm-config.service enabled; nodeadm-run.service enabled"
  else
    fail "nodeadm-config.service $config; nodeadm-run.service $run (want enabled, enabled)"
  fi
}

# BINARY UNIT: the binary is executable, the unit exists and is not masked.
installed_with_unit() {
  local bin=$1 unit=$2 state what
  state=$(unit_state "$unit")
  if executable "$bin"; then what="$bin executable"; else what="$bin missing or not executable"; fi
  case $state in
  masked | masked-runtime | not-found | bad)
    fail "$what; $unit $state"
    ;;
  *)
    if executable "$bin"; then pass "$what; $unit $state"; else fail "$what; $unit $state"; fi
    ;;
  esac
}

check_node_kubelet_installed() { installed_with_unit /usr/bin/kubelet kubelet.service; }

check_node_containerd_installed() { installed_with_unit /usr/bin/containerd containerd.service; }

check_node_kernel_overlay() {
  local seen
  if seen=$(module_loadable overlay); then
    pass "overlay $seen"
  else
    fail "overlay not loadable: $seen"
  fi
}

check_node_kernel_br_netfilter() {
  local seen listed loaded=no
  module_loaded br_netfilter && loaded=yes
  if ! seen=$(module_loadable br_netfilter); then
    fail "br_netfilter not loadable: $seen; loaded: $loaded"
    return
  fi
  if listed=$(module_listed_at_boot br_netfilter); then
    pass "br_netfilter $seen; loaded at boot by $listed; loaded: $loaded"
  elif [[ $loaded == yes ]]; then
    pass "br_netfilter $seen; loaded: yes (no modules-load.d entry)"
  else
    fail "br_netfilter $seen; not loaded and in no modules-load.d file"
  fi
}

check_node_sysctl_ip_forward() { sysctl_is_one net.ipv4.ip_forward; }
check_node_sysctl_bridge_nf_call_iptables() { sysctl_is_one net.bridge.bridge-nf-call-iptables; }
check_node_sysctl_bridge_nf_call_ip6tables() { sysctl_is_one net.bridge.bridge-nf-call-ip6tables; }

# The mount (point and options) that holds PATH: the longest mount point that is PATH or one
# of its parents; of equal ones, the last mounted. Printed as "<mount point> <options>".
mount_of() {
  local path=$1 _dev mp _type opts _rest best="" bestopts="" mpd
  [[ -r $R/proc/mounts ]] || return 1
  while read -r _dev mp _type opts _rest; do
    mpd=${mp//\\040/ }
    if [[ $path == "$mpd" || $mpd == / || $path == "$mpd"/* ]]; then
      if ((${#mpd} >= ${#best})); then
        best=$mpd
        bestopts=$opts
      fi
    fi
  done <"$R/proc/mounts"
  [[ -n $best ]] || return 1
  printf '%s %s' "$best" "$bestopts"
}

check_node_mounts_exec() {
  local p m mp opts bad=() fine=()
  for p in /var/lib/containerd /var/lib/kubelet /opt/cni/bin /run/containerd; do
    if ! m=$(mount_of "$p"); then
      bad+=("$p: no mount found in /proc/mounts")
      continue
    fi
    mp=${m%% *}
    opts=${m#* }
    if [[ ,$opts, == *,noexec,* ]]; then
      bad+=("$p on $mp noexec")
    else
      fine+=("$p on $mp")
    fi
  done
  if ((${#bad[@]})); then
    fail "$(join "${bad[@]}")"
  else
    pass "exec: $(join "${fine[@]}")"
  fi
}

check_node_netfilter_usable() {
  local version rc out n=0 line
  version=$(run iptables --version)
  rc=$?
  version=$(first_line "$version")
  if ((rc != 0)); then
    fail "iptables --version: exit $rc: $version"
    return
  fi
  if [[ $version != *nf_tables* ]]; then
    fail "$version (want the nf_tables backend)"
    return
  fi
  out=$(run iptables -S)
  rc=$?
  if ((rc != 0)); then
    fail "$version; iptables -S: exit $rc: $(first_line "$out")"
    return
  fi
  while IFS= read -r line; do
    [[ $line == -* ]] && n=$((n + 1))
  done <<<"$out"
  pass "$version; iptables -S lists $n rules and chains"
}

check_node_time_sync() {
  local enabled active out rc leap="" ref="" line ok=1
  enabled=$(unit_state chronyd.service)
  active=$(run systemctl is-active chronyd.service)
  active=$(first_line "$active")
  out=$(run chronyc tracking)
  rc=$?
  while IFS= read -r line; do
    case $line in
    "Leap status"*) leap=${line#*: } ;;
    "Reference ID"*) ref=${line#*: } ;;
    esac
  done <<<"$out"
  [[ $enabled == enabled && $active == active ]] || ok=0
  ((rc == 0)) && [[ $leap == Normal ]] || ok=0
  local seen="chronyd.service $enabled, ${active:-unknown}; "
  if ((rc != 0)); then
    seen+="chronyc tracking: exit $rc: $(first_line "$out")"
  else
    seen+="leap status ${leap:-unknown}; reference ${ref:-unknown}"
  fi
  if ((ok)); then pass "$seen"; else fail "$seen (want enabled, active, leap status Normal)"; fi
}

# fstab entries of separate data volumes: every entry but the root file system, /boot,
# /boot/efi, /usr, swap-less pseudo file systems and bind mounts.
check_node_fstab_nofail() {
  local line spec mp type opts _rest bad=() good=()
  if [[ ! -r $R/etc/fstab ]]; then
    fail "/etc/fstab not readable"
    return
  fi
  while IFS= read -r line || [[ -n $line ]]; do
    read -r spec mp type opts _rest <<<"$line"
    [[ -n $spec && $spec != \#* ]] || continue
    case $mp in / | /boot | /boot/efi | /usr) continue ;; esac
    case $type in
    tmpfs | proc | sysfs | devpts | devtmpfs | cgroup | cgroup2 | securityfs | debugfs | \
      mqueue | hugetlbfs | efivarfs | bpf | tracefs | configfs | pstore | none) continue ;;
    esac
    [[ ,$opts, == *,bind,* || ,$opts, == *,rbind,* ]] && continue
    if [[ ,$opts, == *,nofail,* ]]; then
      good+=("$mp")
    else
      bad+=("$mp ($spec $type $opts)")
    fi
  done <"$R/etc/fstab"
  if ((${#bad[@]})); then
    fail "without nofail: ${bad[*]}"
  elif ((${#good[@]})); then
    pass "nofail: ${good[*]}"
  else
    pass "no separate data volume in /etc/fstab"
  fi
}

# IMDSv2: a token from a PUT, a request with it answered; a request without it refused (401).
check_node_imds_v2() {
  local token rc out code_v2 code_v1
  token=$(curl -sS --noproxy '*' --connect-timeout 2 --max-time 5 -X PUT \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$IMDS/latest/api/token" 2>&1)
  rc=$?
  if ((rc != 0)) || [[ -z $token || $token == *[![:alnum:]_=+/-]* ]]; then
    fail "IMDSv2 token PUT: curl exit $rc: $(first_line "$token")"
    return
  fi
  out=$(curl -sS --noproxy '*' --connect-timeout 2 --max-time 5 -o /dev/null -w '%{http_code}' \
    -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/instance-id" 2>&1)
  code_v2=$(first_line "$out")
  out=$(curl -sS --noproxy '*' --connect-timeout 2 --max-time 5 -o /dev/null -w '%{http_code}' \
    "$IMDS/latest/meta-data/instance-id" 2>&1)
  code_v1=$(first_line "$out")
  local seen="token PUT ok; GET with token: HTTP $code_v2; GET without token: HTTP $code_v1"
  if [[ $code_v2 == 200 && $code_v1 == 401 ]]; then
    pass "$seen"
  else
    fail "$seen (want 200 and 401)"
  fi
}

# ---------------------------------------------------------------------------------------------
# Main: each check runs in a subshell, so that nothing it does can stop the others.
# ---------------------------------------------------------------------------------------------

printf 'NODE-PROBE|1|%s\n' "${#CHECKS[@]}"
printed=0
for id in "${CHECKS[@]}"; do
  fn=check_${id//./_}
  result=$("$fn" </dev/null 2>/dev/null)
  rc=$?
  case $result in
  PASS\|* | FAIL\|*)
    status=${result%%|*}
    observed=${result#*|}
    ;;
  *)
    status=FAIL
    observed="the check did not report a result (exit $rc): ${result}"
    ;;
  esac
  printf 'NODE|%s|%s|%s\n' "$id" "$status" "$(clean "$observed")"
  printed=$((printed + 1))
done
printf 'NODE-PROBE-END|%s\n' "$printed"
exit 0
