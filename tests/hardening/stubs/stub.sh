#!/usr/bin/env bash
# Test double for the system commands the hardening scripts call. The test puts a symbolic
# link named after each command (rpm, dnf, systemctl, mount, ...) on PATH; every call is
# appended to $STUB_LOG as "<command> <args>". Commands that change state the scripts read back
# (packages, unit states, mounts, boot entries, the AIDE database, root's password) keep that
# state in $STUB_STATE or in the fake root ($CIS_ROOT), so that a second run sees the result of
# the first one. Environment: STUB_LOG, STUB_STATE, CIS_ROOT, STUB_FAIL (commands that fail).
set -u
cmd=${0##*/}
{
  printf '%s' "$cmd"
  if (($# > 0)); then printf ' %s' "$@"; fi
  printf '\n'
} >>"$STUB_LOG"
# STUB_FAIL="visudo sshd": these commands fail (after being recorded)
if [[ " ${STUB_FAIL:-} " == *" $cmd "* ]]; then
  echo "$cmd: failing on purpose (STUB_FAIL)" >&2
  exit 1
fi
root=${CIS_ROOT%/}
state=$STUB_STATE
packages=$state/packages
touch "$packages"
mkdir -p "$state/units"

installed() { grep -qxF -- "$1" "$packages"; }

# key PATH: a file name for a path (the emulated mounts' stores)
key() { printf '%s' "${1//\//%}"; }

# move_children SRC DST: move every entry of SRC (dot files included) into DST
move_children() {
  mkdir -p "$2"
  local f
  for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [[ -e $f || -L $f ]] || continue
    mv -- "$f" "$2/" || exit 1
  done
}

# positional arguments that are not options (and not the values of --root/-R)
operands() {
  local skip=0 a
  for a in "$@"; do
    if ((skip)); then
      skip=0
      continue
    fi
    case $a in
    --root | -R) skip=1 ;;
    -*) ;;
    *) printf '%s\n' "$a" ;;
    esac
  done
}

case $cmd in
rpm)
  if [[ " $* " == *" -e "* ]]; then
    [[ -z ${STUB_RPM_E_FAIL:-} ]] || exit 1
    exit 0
  fi
  rc=0
  while IFS= read -r p; do installed "$p" || rc=1; done < <(operands "$@")
  exit "$rc"
  ;;
dnf | yum)
  ops=()
  while IFS= read -r p; do ops+=("$p"); done < <(operands "$@")
  action=${ops[0]:-}
  for p in "${ops[@]:1}"; do
    case $action in
    install) installed "$p" || echo "$p" >>"$packages" ;;
    remove)
      grep -vxF -- "$p" "$packages" >"$packages.new" || true
      mv "$packages.new" "$packages"
      ;;
    esac
  done
  exit 0
  ;;
systemctl)
  ops=()
  for a in "$@"; do
    case $a in --root=* | -q | --quiet | --now | --no-reload) ;; *) ops+=("$a") ;; esac
  done
  action=${ops[0]:-}
  for u in "${ops[@]:1}"; do
    case $action in
    is-enabled)
      if [[ -f $state/units/$u ]]; then
        s=$(cat "$state/units/$u")
      elif [[ -f $root/etc/systemd/system/$u || -f $root/usr/lib/systemd/system/$u ]]; then
        f=$root/usr/lib/systemd/system/$u
        [[ -f $root/etc/systemd/system/$u ]] && f=$root/etc/systemd/system/$u
        if grep -q '^\[Install\]' "$f"; then s=disabled; else s=static; fi
      else
        echo "Failed to get unit file state for $u: No such file or directory" >&2
        exit 1
      fi
      echo "$s"
      [[ $s == enabled || $s == static ]] || exit 1
      ;;
    enable) echo enabled >"$state/units/$u" ;;
    disable | unmask) echo disabled >"$state/units/$u" ;;
    mask) echo masked >"$state/units/$u" ;;
    esac
  done
  exit 0
  ;;
sfdisk)
  dev=""
  for a in "$@"; do [[ $a == -* || $a == always ]] || dev=$a; done
  n=$(grep -c 'name=' || true)
  for ((i = 1; i <= n; i++)); do : >"$dev$i"; done
  exit 0
  ;;
blkid) exit 0 ;;
mkfs.xfs)
  # a fresh, empty file system on the device: its content lives in $STUB_STATE/fs/<device>
  dev=${*: -1}
  rm -rf "$state/fs/${dev##*/}"
  mkdir -p "$state/fs/${dev##*/}"
  exit 0
  ;;
mount)
  # Mounts are emulated on the fake root: mounting device D on T moves T's content aside to
  # $STUB_STATE/under/<T> (what the mount hides) and D's content (fs/<D>) into T; umount moves
  # it back. A non-recursive bind mount of / shows what the mounts hide (the root file system
  # underneath them), as it does on a real system.
  bind=0
  args=()
  for a in "$@"; do
    case $a in --bind | -B) bind=1 ;; -*) ;; *) args+=("$a") ;; esac
  done
  ((${#args[@]} == 2)) || exit 0
  src=${args[0]}
  target=${args[1]%/}
  mkdir -p "$root/proc/self"
  touch "$root/proc/self/mounts"
  if ((bind)); then
    [[ ${src%/} == "$root" ]] || exit 0
    mkdir -p "$target"
    : >"$state/bind.$(key "$target")"
    while read -r _ mp _; do
      [[ $mp == "$root"/* ]] || continue
      top=1
      while read -r _ other _; do
        [[ $other == "$root"/* && $other != "$mp" && $mp == "$other"/* ]] && top=0
      done <"$root/proc/self/mounts"
      ((top)) || continue
      [[ -d $state/under/$(key "$mp") ]] || continue
      mkdir -p "$target${mp#"$root"}"
      move_children "$state/under/$(key "$mp")" "$target${mp#"$root"}"
      echo "$mp" >>"$state/bind.$(key "$target")"
    done < <(grep -v ' bind ' "$root/proc/self/mounts")
    printf '%s %s none bind 0 0\n' "$src" "$target" >>"$root/proc/self/mounts"
    exit 0
  fi
  if [[ $src == "$root"/dev/* && -d $state/fs/${src##*/} ]]; then
    mkdir -p "$target" "$state/under/$(key "$target")"
    move_children "$target" "$state/under/$(key "$target")"
    move_children "$state/fs/${src##*/}" "$target"
  fi
  printf '%s %s xfs rw 0 0\n' "$src" "$target" >>"$root/proc/self/mounts"
  exit 0
  ;;
umount)
  target=${*: -1}
  target=${target%/}
  [[ -f $root/proc/self/mounts ]] || exit 0
  line=$(awk -v t="$target" '$2 == t' "$root/proc/self/mounts" | tail -n1)
  read -r src _ type _ <<<"$line"
  if [[ ${type:-} == bind ]]; then
    while read -r mp; do
      move_children "$target${mp#"$root"}" "$state/under/$(key "$mp")"
    done <"$state/bind.$(key "$target")"
    rm -f "$state/bind.$(key "$target")"
    find "$target" -mindepth 1 -depth -type d -empty -delete
  elif [[ -n ${src:-} && -d $state/fs/${src##*/} ]]; then
    move_children "$target" "$state/fs/${src##*/}"
    move_children "$state/under/$(key "$target")" "$target"
    rmdir "$state/under/$(key "$target")"
  fi
  awk -v t="$target" '$2 != t' "$root/proc/self/mounts" >"$root/proc/self/mounts.new"
  mv "$root/proc/self/mounts.new" "$root/proc/self/mounts"
  exit 0
  ;;
grubby)
  for a in "$@"; do
    case $a in
    --args=*)
      for e in "$root"/boot/loader/entries/*.conf; do
        sed -i -E "s|^(options .*)$|\\1 ${a#--args=}|" "$e"
      done
      ;;
    --remove-args=*)
      for e in "$root"/boot/loader/entries/*.conf; do
        sed -i -E "s| ${a#--remove-args=}( \|$)|\\1|" "$e"
      done
      ;;
    esac
  done
  exit 0
  ;;
grub2-mkconfig)
  out=${*: -1}
  cmdline=$(sed -n -E 's/^GRUB_CMDLINE_LINUX="(.*)"$/\1/p' "$root/etc/default/grub")
  printf 'menuentry "Amazon Linux" {\n  linux /boot/vmlinuz root=UUID=0000 ro %s\n}\n' "$cmdline" >"$root$out"
  exit 0
  ;;
aide)
  mkdir -p "$root/var/lib/aide"
  echo "aide database" >"$root/var/lib/aide/aide.db.new.gz"
  exit 0
  ;;
chpasswd)
  IFS=: read -r user _
  sed -i -E "s|^$user:[^:]*:|$user:\$6\$stub\$hash:|" "$root/etc/shadow"
  exit 0
  ;;
authselect)
  conf=$root/etc/authselect/authselect.conf
  case ${1:-} in
  current)
    printf 'Profile ID: %s\nEnabled features:\n' "$(head -n1 "$conf")"
    tail -n +2 "$conf" | sed 's/^/- /'
    ;;
  enable-feature) grep -qxF "$2" "$conf" || echo "$2" >>"$conf" ;;
  esac
  exit 0
  ;;
selinuxenabled) exit 0 ;;
*) exit 0 ;;
esac
