"""A small fake root file system of an EKS-optimized Amazon Linux node, for the hardening tests.

Only what the hardening scripts read or change: account databases, PAM, sshd, sysctl, audit,
cron, boot loader, banners, fstab, a few unit files, log files, and some deliberately
non-compliant files (including container paths that must stay untouched).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
operator:x:11:0:operator:/root:/bin/bash
nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin
sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin
chrony:x:994:994:chrony system user:/var/lib/chrony:/sbin/nologin
ec2-instance-connect:x:996:996::/home/ec2-instance-connect:/sbin/nologin
ec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash
alice:x:1001:1001::/home/alice:/bin/bash
"""

SHADOW = """\
root:*LOCK*:14600::::::
bin:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
adm:*:19000:0:99999:7:::
sync:*:19000:0:99999:7:::
shutdown:*:19000:0:99999:7:::
halt:*:19000:0:99999:7:::
operator:$6$abc$def:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
sshd:!!:19000::::::
chrony:!!:19000::::::
ec2-instance-connect:!!:19000::::::
ec2-user:!!:19000:0:99999:7:::
alice:$6$salt$hash:19000:0:99999:7:::
"""

GROUP = """\
root:x:0:
bin:x:1:
daemon:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
wheel:x:10:ec2-user
utmp:x:22:
ssh_keys:x:993:
sshd:x:74:
chrony:x:994:
ec2-instance-connect:x:996:
nobody:x:65534:
ec2-user:x:1000:
alice:x:1001:
"""

GSHADOW = "".join(f"{line.split(':')[0]}:!::\n" for line in GROUP.splitlines())

LOGIN_DEFS = """\
MAIL_DIR	/var/spool/mail
UMASK		022
HOME_MODE	0700
PASS_MAX_DAYS	99999
PASS_MIN_DAYS	0
PASS_WARN_AGE	7
UID_MIN                  1000
UID_MAX                 60000
GID_MIN                  1000
ENCRYPT_METHOD SHA512
"""

SYSTEM_AUTH_AL2023 = """\
auth        required      pam_env.so
auth        required      pam_faildelay.so delay=2000000
auth        sufficient    pam_unix.so try_first_pass nullok
auth        required      pam_deny.so

account     required      pam_unix.so

password    requisite     pam_pwquality.so local_users_only
password    sufficient    pam_unix.so try_first_pass use_authtok nullok yescrypt shadow
password    required      pam_deny.so

session     optional      pam_keyinit.so revoke
session     required      pam_limits.so
-session    optional      pam_systemd.so
session     required      pam_unix.so
"""

SYSTEM_AUTH_AL2 = """\
#%PAM-1.0
# This file is auto-generated.
# User changes will be destroyed the next time authconfig is run.
auth        required      pam_env.so
auth        required      pam_faildelay.so delay=2000000
auth        sufficient    pam_unix.so nullok try_first_pass
auth        requisite     pam_succeed_if.so uid >= 1000 quiet_success
auth        required      pam_deny.so

account     required      pam_unix.so
account     sufficient    pam_localuser.so
account     required      pam_permit.so

password    requisite     pam_pwquality.so try_first_pass local_users_only retry=3 authtok_type=
password    sufficient    pam_unix.so sha512 shadow nullok try_first_pass use_authtok
password    required      pam_deny.so

session     optional      pam_keyinit.so revoke
session     required      pam_limits.so
session     required      pam_unix.so
"""

PAM_SU = """\
#%PAM-1.0
auth		required	pam_env.so
auth		sufficient	pam_rootok.so
#auth		required	pam_wheel.so use_uid
auth		substack	system-auth
account		include		system-auth
password	include		system-auth
session		include		system-auth
"""

SSHD_CONFIG_AL2023 = """\
# To modify the system-wide sshd configuration, create a *.conf file under
# /etc/ssh/sshd_config.d/ which will be automatically included below
Include /etc/ssh/sshd_config.d/*.conf

#Port 22
#PermitRootLogin prohibit-password
#MaxAuthTries 6
AuthorizedKeysFile	.ssh/authorized_keys
PasswordAuthentication no
Subsystem	sftp	/usr/libexec/openssh/sftp-server
AuthorizedKeysCommand /opt/aws/bin/eic_run_authorized_keys %u %f
AuthorizedKeysCommandUser ec2-instance-connect

Ciphers aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com
"""

SSHD_REDHAT_DROPIN = """\
# This system is following system-wide crypto policy.
Include /etc/crypto-policies/back-ends/opensshserver.config
SyslogFacility AUTHPRIV
ChallengeResponseAuthentication no
GSSAPIAuthentication yes
GSSAPICleanupCredentials no
UsePAM yes
X11Forwarding yes
PrintMotd no
"""

SSHD_CONFIG_AL2 = """\
#Port 22
HostKey /etc/ssh/ssh_host_rsa_key
HostKey /etc/ssh/ssh_host_ecdsa_key
HostKey /etc/ssh/ssh_host_ed25519_key
SyslogFacility AUTHPRIV
#PermitRootLogin yes
#MaxAuthTries 6
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
ChallengeResponseAuthentication no
GSSAPIAuthentication yes
UsePAM yes
X11Forwarding yes
PrintLastLog yes
UsePrivilegeSeparation sandbox
AcceptEnv LANG LC_CTYPE LC_NUMERIC LC_TIME
Subsystem sftp	/usr/libexec/openssh/sftp-server

Ciphers aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com
"""

PROFILE = """\
# /etc/profile
pathmunge () {
    case ":${PATH}:" in *:"$1":*) ;; *) PATH=$PATH:$1 ;; esac
}
if [ $UID -gt 199 ] && [ "`/usr/bin/id -gn`" = "`/usr/bin/id -un`" ]; then
    umask 002
else
    umask 022
fi
for i in /etc/profile.d/*.sh ; do
    . "$i"
done
"""

AUDITD_CONF = """\
log_file = /var/log/audit/audit.log
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
max_log_file = 8
num_logs = 5
max_log_file_action = ROTATE
space_left = 75
space_left_action = SYSLOG
action_mail_acct = root
admin_space_left = 50
admin_space_left_action = SUSPEND
disk_full_action = SUSPEND
"""

UNITS_INSTALLABLE = [
    "chronyd.service",
    "crond.service",
    "auditd.service",
    "rsyslog.service",
    "nftables.service",
    "iptables.service",
    "ip6tables.service",
    "nfs-server.service",
    "rpcbind.service",
    "rpcbind.socket",
    "containerd.service",
    "amazon-ssm-agent.service",
]
UNITS_STATIC = [
    "systemd-journald.service",
    "tmp.mount",
    "rescue.service",
    "emergency.service",
]

RESCUE_UNIT = """\
[Unit]
Description=Rescue Shell
[Service]
ExecStart=-/bin/sh -c "/usr/sbin/sulogin; /usr/bin/systemctl --fail --no-block default"
"""

# Packages "installed" in the stub rpm database of the base AMI.
BASE_PACKAGES = {
    "al2023": [
        "libselinux",
        "selinux-policy-targeted",
        "chrony",
        "nftables",
        "nfs-utils",
        "rpcbind",
        "sudo",
        "audit",
        "containerd",
        "amazon-ssm-agent",
        "telnet",
        "openldap-clients",
    ],
    "al2": [
        "libselinux",
        "selinux-policy-targeted",
        "chrony",
        "nfs-utils",
        "rpcbind",
        "sudo",
        "audit",
        "audit-libs",
        "rsyslog",
        "cronie",
        "postfix",
        "iptables",
        "containerd",
        "amazon-ssm-agent",
        "telnet",
        "rsh",
    ],
}


def _write(root: Path, rel: str, content: str, mode: int = 0o644) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    os.chmod(path, mode)
    return path


def _orphan(path: Path) -> None:
    """Give ``path`` an owner and group that no account has (only root can)."""
    if os.geteuid() == 0:
        os.chown(path, ORPHAN_ID, ORPHAN_ID)


ORPHAN_ID = 4242
CONTAINER_SNAPSHOT = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs"


def _mkdir(root: Path, rel: str, mode: int = 0o755) -> Path:
    path = root / rel.lstrip("/")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def build(root: Path, platform: str) -> None:
    """Create the fake file system of an EKS-optimized AMI of ``platform`` under ``root``."""
    al2023 = platform == "al2023"
    version = "2023" if al2023 else "2"
    _write(
        root,
        "/etc/os-release",
        f'NAME="Amazon Linux"\nVERSION="{version}"\nID="amzn"\n'
        f'VERSION_ID="{version}"\nPRETTY_NAME="Amazon Linux {version}"\n',
    )
    _write(root, "/etc/passwd", PASSWD)
    _write(root, "/etc/passwd-", PASSWD, 0o644)
    _write(root, "/etc/shadow", SHADOW, 0o000)
    _write(root, "/etc/shadow-", SHADOW, 0o600)
    _write(root, "/etc/group", GROUP)
    _write(root, "/etc/group-", GROUP, 0o664)
    _write(root, "/etc/gshadow", GSHADOW, 0o000)
    _write(root, "/etc/gshadow-", GSHADOW, 0o000)
    _write(root, "/etc/login.defs", LOGIN_DEFS)
    _write(root, "/etc/default/useradd", "GROUP=100\nHOME=/home\nINACTIVE=-1\nSHELL=/bin/bash\n")
    _write(root, "/etc/profile", PROFILE)
    _write(root, "/etc/bashrc", PROFILE.replace("/etc/profile", "/etc/bashrc"))
    _mkdir(root, "/etc/profile.d")

    # PAM
    if al2023:
        _write(root, "/etc/pam.d/system-auth", SYSTEM_AUTH_AL2023)
        _write(root, "/etc/pam.d/password-auth", SYSTEM_AUTH_AL2023)
    else:
        _write(root, "/etc/pam.d/system-auth-ac", SYSTEM_AUTH_AL2)
        _write(root, "/etc/pam.d/password-auth-ac", SYSTEM_AUTH_AL2)
        os.symlink("system-auth-ac", root / "etc/pam.d/system-auth")
        os.symlink("password-auth-ac", root / "etc/pam.d/password-auth")
    _write(root, "/etc/pam.d/su", PAM_SU)
    _write(root, "/etc/security/pwquality.conf", "# minlen = 8\n# minclass = 0\n")
    _write(root, "/etc/security/faillock.conf", "# deny = 3\n# unlock_time = 600\n")
    _write(root, "/etc/libuser.conf", "[defaults]\ncrypt_style = sha512\n")

    # sshd
    if al2023:
        _write(root, "/etc/ssh/sshd_config", SSHD_CONFIG_AL2023, 0o600)
        _write(root, "/etc/ssh/sshd_config.d/50-redhat.conf", SSHD_REDHAT_DROPIN, 0o600)
        _write(root, "/etc/sysconfig/sshd", "# CRYPTO_POLICY=\n")
    else:
        _write(root, "/etc/ssh/sshd_config", SSHD_CONFIG_AL2, 0o644)
    _write(root, "/etc/ssh/ssh_host_ed25519_key", "key\n", 0o640)
    _write(root, "/etc/ssh/ssh_host_ed25519_key.pub", "pub\n", 0o664)

    # kernel parameters and modules
    _write(
        root,
        "/etc/sysctl.d/99-kubernetes-cri.conf",
        "net.bridge.bridge-nf-call-ip6tables = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"
        "net.ipv4.ip_forward = 1\n",
    )
    _write(
        root,
        "/etc/sysctl.d/60-legacy.conf",
        "net.ipv4.conf.all.rp_filter = 2\nkernel.pid_max = 4194304\n",
    )
    _write(root, "/etc/sysctl.conf", "fs.inotify.max_user_watches=524288\n")
    _mkdir(root, "/etc/modprobe.d")
    _write(root, "/etc/modules-load.d/iptables.conf", "ip_tables\niptable_nat\n")

    # boot loader
    _write(
        root,
        "/etc/default/grub",
        'GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 selinux=1"\n',
    )
    if al2023:
        _write(
            root,
            "/boot/loader/entries/ec2.conf",
            "title Amazon Linux 2023\nlinux /boot/vmlinuz\n"
            "options root=UUID=1234 ro console=tty0 console=ttyS0,115200n8 selinux=1\n",
        )
        _write(root, "/boot/grub2/grub.cfg", "blscfg\n", 0o644)
        _write(root, "/boot/grub2/grubenv", "# GRUB Environment Block\n", 0o644)
    else:
        _write(
            root,
            "/boot/grub2/grub.cfg",
            "menuentry 'Amazon Linux 2' {\n  linux /boot/vmlinuz root=UUID=1234 ro "
            "console=tty0 console=ttyS0,115200n8 selinux=1\n}\n",
            0o644,
        )
    _write(root, "/etc/selinux/config", "SELINUX=permissive\nSELINUXTYPE=targeted\n")

    # file systems
    fstab = "UUID=1234     /           xfs    defaults,noatime  1   1\n"
    if al2023:
        fstab += (
            "UUID=ABCD     /boot/efi   vfat   "
            "defaults,noatime,uid=0,gid=0,umask=0077,shortname=winnt,x-systemd.automount 0 2\n"
        )
    _write(root, "/etc/fstab", fstab)
    _write(root, "/dev/xvdb", "")  # the second EBS volume (the stubs partition it)
    _write(root, "/proc/self/mounts", f"/dev/nvme0n1p1 {root} xfs rw,noatime 0 0\n")
    _write(root, "/proc/modules", "")

    # audit, logging, time, cron, sudo, package manager, crypto policy
    _write(root, "/etc/audit/auditd.conf", AUDITD_CONF, 0o640)
    _write(root, "/etc/audit/rules.d/audit.rules", "-D\n-b 8192\n-f 1\n", 0o644)
    _write(
        root,
        "/etc/rsyslog.conf",
        'module(load="imuxsock")\n#module(load="imtcp")\n$ModLoad imudp\n'
        'include(file="/etc/rsyslog.d/*.conf" mode="optional")\n*.info /var/log/messages\n',
    )
    _mkdir(root, "/etc/rsyslog.d")
    _write(root, "/etc/rsyslog.d/10-legacy.conf", "$FileCreateMode 0644\n")
    _write(root, "/etc/systemd/journald.conf", "[Journal]\n#Storage=auto\n#Compress=yes\n")
    _write(root, "/etc/systemd/coredump.conf", "[Coredump]\n#Storage=external\n")
    _write(
        root,
        "/etc/chrony.conf",
        "server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4\n"
        "driftfile /var/lib/chrony/drift\nmakestep 1.0 3\nrtcsync\n",
    )
    _mkdir(root, "/etc/chrony.d")
    _write(root, "/etc/sysconfig/chronyd", 'OPTIONS="-F 2"\n' if al2023 else 'OPTIONS=""\n')
    _write(root, "/etc/crontab", "SHELL=/bin/bash\n", 0o644)
    for d in ("hourly", "daily", "weekly", "monthly", "d"):
        _mkdir(root, f"/etc/cron.{d}", 0o755)
    _write(root, "/etc/cron.deny", "", 0o644)
    _write(root, "/etc/sudoers", "root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n", 0o440)
    _write(root, "/etc/sudoers.d/90-cloud-init-users", "ec2-user ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    _write(
        root,
        "/etc/sudoers.d/10-legacy",
        "Defaults timestamp_timeout=60\nDefaults:alice !authenticate\n",
        0o440,
    )
    _write(root, "/etc/aide.conf", "@@define DBDIR /var/lib/aide\n/boot NORMAL\n", 0o600)
    if al2023:
        _write(root, "/etc/dnf/dnf.conf", "[main]\ngpgcheck=1\ninstallonly_limit=3\n")
        _write(root, "/etc/crypto-policies/config", "DEFAULT\n")
        _write(root, "/etc/sysconfig/nftables.conf", "# Uncomment the include statement here\n")
    else:
        _write(root, "/etc/yum.conf", "[main]\ncachedir=/var/cache/yum\ngpgcheck=1\n")
        _write(root, "/etc/postfix/main.cf", "inet_interfaces = localhost\ninet_protocols = all\n")
    _write(root, "/etc/yum.repos.d/amazonlinux.repo", "[amzn]\nname=Amazon Linux\ngpgcheck=1\n")
    _write(root, "/etc/yum.repos.d/extra.repo", "[extra]\nname=Extra\ngpgcheck=0\n")

    # banners: a dynamic motd link, an issue with OS escapes
    _mkdir(root, "/run")
    os.symlink("../run/motd.dynamic", root / "etc/motd")
    _write(root, "/etc/issue", "\\S\nKernel \\r on an \\m\n")
    _write(root, "/etc/issue.net", "\\S\nKernel \\r on an \\m\n")

    # units
    for unit in UNITS_INSTALLABLE:
        _write(
            root,
            f"/usr/lib/systemd/system/{unit}",
            f"[Unit]\nDescription={unit}\n[Install]\nWantedBy=multi-user.target\n",
        )
    for unit in UNITS_STATIC:
        body = (
            RESCUE_UNIT
            if unit.endswith("rescue.service") or unit.startswith("emergency")
            else (f"[Unit]\nDescription={unit}\n")
        )
        _write(root, f"/usr/lib/systemd/system/{unit}", body)

    # audit tools and setuid programs (the merged /usr of both platforms)
    for tool in ("auditctl", "aureport", "ausearch", "autrace", "auditd", "augenrules"):
        _write(root, f"/usr/sbin/{tool}", "#!/bin/sh\n", 0o750)
    os.symlink("usr/sbin", root / "sbin")
    os.symlink("usr/bin", root / "bin")
    _write(root, "/usr/bin/sudo", "", 0o4111)
    _write(root, "/usr/bin/passwd", "", 0o4755)
    _write(root, "/usr/bin/write", "", 0o2755)
    _mkdir(root, "/usr/local/bin")
    _mkdir(root, "/usr/local/sbin")

    # homes
    _write(
        root,
        "/root/.bashrc",
        'if ! [[ "$PATH" =~ "$HOME/.local/bin:$HOME/bin:" ]]; then\n'
        '    PATH="$HOME/.local/bin:$HOME/bin:$PATH"\nfi\n',
        0o644,
    )
    os.chmod(root / "root", 0o700)
    _mkdir(root, "/home/ec2-user", 0o700)
    _write(root, "/home/ec2-user/.bashrc", "# .bashrc\n", 0o664)
    _write(root, "/home/ec2-user/.forward", "someone@example.com\n", 0o644)
    _write(root, "/home/ec2-user/.bash_history", "ls\n", 0o644)
    _mkdir(root, "/home/alice", 0o755)

    # logs
    _write(root, "/var/log/messages", "", 0o644)
    _write(root, "/var/log/secure", "", 0o600)
    _write(root, "/var/log/wtmp", "", 0o664)
    _write(root, "/var/log/btmp", "", 0o660)
    _mkdir(root, "/var/log/audit", 0o755)
    _write(root, "/var/log/audit/audit.log", "", 0o644)
    _mkdir(root, "/var/tmp", 0o1777)
    _mkdir(root, "/var/lib/aide", 0o700)

    # non-compliant files outside and inside the container paths
    _write(root, "/opt/app/data.txt", "", 0o666)
    _mkdir(root, "/opt/shared", 0o777)
    _orphan(_write(root, "/opt/orphan", "", 0o644))
    snapshot = CONTAINER_SNAPSHOT
    _mkdir(root, f"{snapshot}/tmp", 0o777)
    _orphan(_write(root, f"{snapshot}/etc/x", "", 0o666))
    _mkdir(root, "/var/lib/kubelet/pods/abc/volumes", 0o777)
    _mkdir(root, "/var/log/pods/ns_pod_uid/c", 0o755)
    _write(root, "/var/log/pods/ns_pod_uid/c/0.log", "", 0o644)


def snapshot(root: Path) -> dict[str, tuple[str, int, int, int, str]]:
    """Every path under ``root`` with its type, mode, owner, group and content (or link target)."""
    result: dict[str, tuple[str, int, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = "/" + str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                result[rel] = ("link", 0, st.st_uid, st.st_gid, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                result[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, "")
            else:
                result[rel] = (
                    "file",
                    stat.S_IMODE(st.st_mode),
                    st.st_uid,
                    st.st_gid,
                    path.read_text(errors="replace"),
                )
    return result
