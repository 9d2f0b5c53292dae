#!/bin/sh
# `make install` and the systemd integration: the staged tree (files and modes), the unit
# (ExecStart, `systemd-analyze verify`, `systemd-analyze security` exposure <= 2.0), the
# sysusers/tmpfiles entries applied offline, the no-overwrite rule of a live install,
# uninstall, and the sd_notify protocol (READY=1, STATUS=, WATCHDOG=1, STOPPING=1 from the
# main pid) over a NOTIFY_SOCKET this test listens on. The last run emulates the unit's
# sandbox without systemd as PID 1: read-only mounts, an unprivileged user reaching Redis
# through a supplementary group, and a seccomp filter built from the unit's
# SystemCallFilter=, RestrictAddressFamilies= and MemoryDenyWriteExecute=.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
skip() { echo "  skip $*"; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- staged install
D=$WORK/dest
if make -s install DESTDIR="$D" PREFIX=/usr B=build >"$WORK/install.log" 2>&1; then
    ok "make install DESTDIR=... PREFIX=/usr"
else
    fail "make install failed:"; tail -20 "$WORK/install.log"; finish; exit 1
fi
{
    for d in etc usr usr/bin usr/lib usr/lib/systemd usr/lib/systemd/system \
        usr/lib/sysusers.d usr/lib/tmpfiles.d etc/csmetrics/rules \
        usr/share usr/share/bash-completion usr/share/bash-completion/completions; do
        echo "d 755 $d"
    done
    echo "f 644 usr/share/bash-completion/completions/csmetrics"
    echo "l 777 usr/share/bash-completion/completions/csmetricsd"
    echo "f 755 usr/bin/csmetrics"
    echo "f 755 usr/bin/csmetricsd"
    echo "f 644 usr/lib/systemd/system/csmetricsd.service"
    echo "f 644 usr/lib/sysusers.d/csmetrics.conf"
    echo "f 644 usr/lib/tmpfiles.d/csmetrics.conf"
    echo "f 640 etc/csmetrics/csmetrics.yaml"
    for r in rules/examples/*.yaml; do
        case $r in *.test.yaml) continue ;; esac
        [ -e "$r" ] && echo "f 644 etc/csmetrics/rules/${r##*/}"
    done
    echo "d 750 etc/csmetrics"
} | sort -k3 >"$WORK/expected.txt"
(cd "$D" && find . -mindepth 1 -printf '%y %m %P\n') | sort -k3 >"$WORK/actual.txt"
if diff "$WORK/expected.txt" "$WORK/actual.txt" >"$WORK/files.diff"; then
    ok "installed tree: $(grep -c '^f' "$WORK/actual.txt") files, every mode as expected"
else
    fail "installed tree differs (< expected, > actual):"; cat "$WORK/files.diff"
fi
cmp -s config/csmetrics.yaml.example "$D/etc/csmetrics/csmetrics.yaml" &&
    ok "csmetrics.yaml is the shipped example" || fail "csmetrics.yaml is not config/csmetrics.yaml.example"
cmp -s build/csmetricsd "$D/usr/bin/csmetricsd" && cmp -s build/csmetrics "$D/usr/bin/csmetrics" &&
    ok "binaries are the ones in build/" || fail "installed binaries differ from build/"
n=0
for r in rules/examples/*.yaml; do
    case $r in *.test.yaml) continue ;; esac
    [ -e "$r" ] || continue
    cmp -s "$r" "$D/etc/csmetrics/rules/${r##*/}" || fail "rule file ${r##*/} not installed as shipped"
    n=$((n + 1))
done
[ $n -gt 0 ] && ok "$n shipped rule files installed" || skip "no rules/examples/*.yaml to install yet"

UNIT=$D/usr/lib/systemd/system/csmetricsd.service
grep -qx 'ExecStart=/usr/bin/csmetricsd -c /etc/csmetrics/csmetrics.yaml' "$UNIT" &&
    ok "unit: ExecStart=/usr/bin/csmetricsd -c /etc/csmetrics/csmetrics.yaml" ||
    fail "unit ExecStart is: $(grep '^ExecStart=' "$UNIT")"
if grep -n '@[A-Z]*@' "$UNIT" "$D/usr/lib/tmpfiles.d/csmetrics.conf"; then
    fail "placeholders left unsubstituted"
else
    ok "no @PLACEHOLDER@ left in unit or tmpfiles entry"
fi
missing=""
# shellcheck disable=SC2016
for kv in Type=notify NotifyAccess=main 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure \
    RestartSec=2s WatchdogSec=30s TimeoutStopSec=15s User=csmetrics Group=csmetrics; do
    grep -qxF "$kv" "$UNIT" || missing="$missing '$kv'"
done
[ -z "$missing" ] && ok "unit: Type=notify, NotifyAccess=main, ExecReload, Restart, watchdog, timeouts, user" ||
    fail "unit lacks$missing"

# ---------------------------------------------------------------- systemd-analyze
if have systemd-analyze; then
    # Offline, verify resolves ExecStart= on the host: point it at the staged binary.
    mkdir -p "$WORK/verify"
    sed "s|^ExecStart=/usr/bin/|ExecStart=$D/usr/bin/|" "$UNIT" >"$WORK/verify/csmetricsd.service"
    if systemd-analyze verify "$WORK/verify/csmetricsd.service" >"$WORK/verify.log" 2>&1 &&
        [ ! -s "$WORK/verify.log" ]; then
        ok "systemd-analyze verify: no errors, no warnings"
    else
        fail "systemd-analyze verify:"; cat "$WORK/verify.log"
    fi
    systemd-analyze security --offline=yes --root="$D" csmetricsd.service >"$WORK/security.log" 2>&1
    score=$(sed -n 's/.*Overall exposure level for csmetricsd.service: \([0-9.]*\).*/\1/p' "$WORK/security.log")
    if [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
        ok "systemd-analyze security --offline=yes: exposure $score (<= $MAX_EXPOSURE)"
    else
        fail "systemd-analyze security: exposure '${score:-?}' (> $MAX_EXPOSURE or unparsed)"
        grep '✗' "$WORK/security.log"
    fi
else
    skip "systemd-analyze not installed (Debian package systemd): no verify, no security score"
fi

# ---------------------------------------------------------------- sysusers + tmpfiles, offline
if [ "$(id -u)" != 0 ]; then
    skip "sysusers/tmpfiles: not root (they set ownership)"
elif have systemd-sysusers && have systemd-tmpfiles; then
    systemd-sysusers --root="$D" >"$WORK/sysusers.log" 2>&1
    uid=$(awk -F: '$1 == "csmetrics" { print $3 }' "$D/etc/passwd" 2>/dev/null)
    gid=$(awk -F: '$1 == "csmetrics" { print $3 }' "$D/etc/group" 2>/dev/null)
    shell=$(awk -F: '$1 == "csmetrics" { print $7 }' "$D/etc/passwd" 2>/dev/null)
    if [ -n "$uid" ] && [ -n "$gid" ] && [ "$uid" -lt 1000 ] && [ "$shell" = /usr/sbin/nologin ]; then
        ok "sysusers: system user csmetrics uid=$uid gid=$gid shell=$shell"
    else
        fail "sysusers: no system user/group csmetrics"; cat "$WORK/sysusers.log"
    fi
    systemd-tmpfiles --root="$D" --create >"$WORK/tmpfiles.log" 2>&1
    got=$(stat -c '%a %u %g' "$D/etc/csmetrics" "$D/etc/csmetrics/csmetrics.yaml" \
        "$D/etc/csmetrics/rules" | tr '\n' ' ')
    want="750 0 ${gid:-?} 640 0 ${gid:-?} 755 0 0 "
    [ "$got" = "$want" ] && ok "tmpfiles: /etc/csmetrics 0750, csmetrics.yaml 0640, root:csmetrics" ||
        { fail "tmpfiles: modes/owners '$got', want '$want'"; cat "$WORK/tmpfiles.log"; }
else
    skip "systemd-sysusers/systemd-tmpfiles not installed"
fi

# ---------------------------------------------------------------- live install keeps the operator's files
# (CSM_RULES stands in for rules/examples/*.yaml: a.yaml new, b.yaml changed by the operator)
L=$WORK/live
mkdir -p "$L/etc/csmetrics/rules" "$WORK/ex"
echo "# shipped a" >"$WORK/ex/a.yaml"
echo "# shipped b" >"$WORK/ex/b.yaml"
LIVE="PREFIX=$L/usr SYSCONFDIR=$L/etc POSTINSTALL=no B=build"
echo "# the operator's own" >"$L/etc/csmetrics/csmetrics.yaml"
echo "# the operator's b" >"$L/etc/csmetrics/rules/b.yaml"
# shellcheck disable=SC2086
make -s install $LIVE CSM_RULES="$WORK/ex/a.yaml $WORK/ex/b.yaml" >"$WORK/live.log" 2>&1 || { fail "live install failed"; cat "$WORK/live.log"; }
if [ "$(cat "$L/etc/csmetrics/csmetrics.yaml")" = "# the operator's own" ] &&
    cmp -s config/csmetrics.yaml.example "$L/etc/csmetrics/csmetrics.yaml.example"; then
    ok "install without DESTDIR keeps an existing csmetrics.yaml, adds csmetrics.yaml.example"
else
    fail "install without DESTDIR overwrote csmetrics.yaml or wrote no .example"
fi
if cmp -s "$WORK/ex/a.yaml" "$L/etc/csmetrics/rules/a.yaml" &&
    [ "$(cat "$L/etc/csmetrics/rules/b.yaml")" = "# the operator's b" ] &&
    cmp -s "$WORK/ex/b.yaml" "$L/etc/csmetrics/rules/b.yaml.example"; then
    ok "install without DESTDIR adds new rule files, keeps changed ones (shipped one as .example)"
else
    fail "rule files: $(cd "$L/etc/csmetrics/rules" && ls)"
fi
grep -qx "ExecStart=$L/usr/bin/csmetricsd -c $L/etc/csmetrics/csmetrics.yaml" \
    "$L/usr/lib/systemd/system/csmetricsd.service" &&
    ok "PREFIX/SYSCONFDIR reach ExecStart" || fail "ExecStart ignores PREFIX/SYSCONFDIR"
# shellcheck disable=SC2086
make -s uninstall $LIVE CSM_RULES="$WORK/ex/a.yaml $WORK/ex/b.yaml" >>"$WORK/live.log" 2>&1
left=$( (cd "$L" && find . -type f) | sort | tr '\n' ' ')
[ "$left" = "./etc/csmetrics/csmetrics.yaml ./etc/csmetrics/rules/b.yaml " ] &&
    ok "uninstall removes everything but the operator's csmetrics.yaml and rule file" || fail "after uninstall: $left"
make -s uninstall DESTDIR="$D" PREFIX=/usr B=build >>"$WORK/install.log" 2>&1
left=$( (cd "$D" && find usr etc/csmetrics -type f 2>/dev/null) | tr '\n' ' ')
[ -z "$left" ] && [ ! -d "$D/etc/csmetrics" ] && ok "uninstall DESTDIR=...: nothing left" ||
    fail "uninstall DESTDIR=... left: $left"

# ---------------------------------------------------------------- sd_notify
got() { grep -q "^[0-9.]* [-0-9]* $2\$" "$WORK/$1.log"; } # got NAME REGEX
stop_daemon() { # stop_daemon PID: SIGTERM, then at most 10 s; sets RC
    kill -TERM "$1"; i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$1" 2>/dev/null; then RC=timeout; kill -9 "$1"; wait "$1" 2>/dev/null
    else wait "$1"; RC=$?; fi
}

start_redis r
start_kafka
mkdir -p "$WORK/rules"
conf() { # conf FILE GROUP SOCK
    cat >"$1" <<EOF
kafka:
  brokers: "$BROKERS"
  group_id: $2
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "300"}
redis:
  url: "unix://$3"
rules_dir: $WORK/rules
http: {listen: ""}
EOF
}

# 1: no READY=1 while Redis is down, READY=1 from the main pid once it is up, STATUS=,
# no watchdog pings unless asked, STOPPING=1
conf "$WORK/c1.yaml" notify1 "$WORK/late.sock"
notify_listen n1
NOTIFY_SOCKET=$WORK/n1.sock "$CSMETRICSD" -c "$WORK/c1.yaml" >"$WORK/d1.log" 2>&1 &
P=$!; PIDS="$PIDS $P"
sleep 3
got n1 'READY=1' && fail "READY=1 while Redis is unreachable" || ok "no READY=1 in 3 s while Redis is unreachable"
start_redis late
if wait_for got n1 'READY=1'; then
    ok "READY=1 once Redis is up ($(awk '/ READY=1$/ { print $1; exit }' "$WORK/n1.log")s after start)"
else
    fail "no READY=1 within 30 s"; tail -5 "$WORK/d1.log"
fi
got n1 'STATUS=.*' && ok "STATUS= sent" || fail "no STATUS="
kill -HUP "$P"; sleep 1
kill -0 "$P" 2>/dev/null && ok "SIGHUP (ExecReload) leaves the daemon running" || fail "SIGHUP killed the daemon"
stop_daemon "$P"
[ "$RC" = 0 ] && ok "SIGTERM: exit 0 within 10 s" || fail "SIGTERM: exit $RC"
sleep 0.2
got n1 'STOPPING=1' && ok "STOPPING=1 after SIGTERM" || fail "no STOPPING=1"
others=$(awk -v p="$P" '$2 != p' "$WORK/n1.log" | head -3)
[ -z "$others" ] && ok "every notification from the main pid $P (NotifyAccess=main)" ||
    fail "notifications from another pid: $others"
got n1 'WATCHDOG=1' && fail "WATCHDOG=1 without WATCHDOG_USEC" || ok "no WATCHDOG=1 without WATCHDOG_USEC"

# 2: WATCHDOG_USEC=2 s for this pid: a ping about every second (under strace when there,
# which also lists every system call made, checked against the unit's filter below)
conf "$WORK/c2.yaml" notify2 "$WORK/r.sock"
notify_listen n2
TRACE=""
have strace && TRACE="strace -f -qq -o $WORK/strace.out"
# shellcheck disable=SC2016,SC2086
NOTIFY_SOCKET=$WORK/n2.sock WATCHDOG_USEC=2000000 $TRACE \
    sh -c 'echo $$ >"$1"; export WATCHDOG_PID=$$; exec "$0" -c "$2"' \
    "$CSMETRICSD" "$WORK/d2.pid" "$WORK/c2.yaml" >"$WORK/d2.log" 2>&1 &
T=$!; PIDS="$PIDS $T"
wait_for test -s "$WORK/d2.pid"
P=$(cat "$WORK/d2.pid")
wait_for got n2 'READY=1' || fail "no READY=1 with the watchdog on"
sleep 6
stop_daemon "$P"; wait "$T" 2>/dev/null
awk '/ WATCHDOG=1$/ { n++; if (n > 1 && $1 - last > max) max = $1 - last; last = $1; if (n == 1) first = $1 }
     END { printf "%d %.3f %.3f\n", n, (n > 1 ? (last - first) / (n - 1) : 0), max }' \
    "$WORK/n2.log" >"$WORK/wd.txt"
read -r pings mean max <"$WORK/wd.txt"
if [ "$pings" -ge 5 ] && awk -v m="$mean" -v x="$max" 'BEGIN { exit !(m >= 0.8 && m <= 1.3 && x < 2.0) }'; then
    ok "WATCHDOG=1: $pings pings, every ${mean}s on average, longest gap ${max}s (< 2 s)"
else
    fail "WATCHDOG=1: $pings pings, mean ${mean}s, longest gap ${max}s"
fi
others=$(awk -v p="$P" '$2 != p' "$WORK/n2.log" | head -3)
[ -z "$others" ] || fail "watchdog notifications from another pid: $others"

# ---------------------------------------------------------------- the unit's system call filter
# allowed.txt: @default + @system-service - @privileged - @resources, as systemd expands them
if have systemd-analyze; then
    systemd-analyze syscall-filter 2>/dev/null | python3 -c '
import sys
groups, cur = {}, None
for line in sys.stdin:
    s = line.strip()
    if not s or s.startswith("#"):
        continue
    if not line[0].isspace() and s.startswith("@"):
        cur = groups.setdefault(s, [])
    elif cur is not None:
        cur.append(s)
def exp(g):
    r = set()
    for m in groups.get(g, []):
        r |= exp(m) if m.startswith("@") else {m}
    return r
allow = (exp("@default") | exp("@system-service")) - exp("@privileged") - exp("@resources")
print("\n".join(sorted(allow)))' >"$WORK/allowed.txt"
fi
if [ -s "$WORK/strace.out" ] && [ -s "$WORK/allowed.txt" ]; then
    sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$WORK/strace.out" | sort -u >"$WORK/used.txt"
    denied=$(comm -23 "$WORK/used.txt" "$WORK/allowed.txt" | tr '\n' ' ')
    [ -z "$denied" ] && ok "all $(wc -l <"$WORK/used.txt") system calls made are allowed by SystemCallFilter=" ||
        fail "system calls SystemCallFilter= would deny (EPERM): $denied"
    wx=$(grep -cE '(mmap|mprotect)\(.*PROT_(WRITE\|PROT_EXEC|EXEC\|PROT_WRITE)|mprotect\(.*PROT_EXEC' "$WORK/strace.out")
    [ "$wx" = 0 ] && ok "no writable+executable or mprotect(PROT_EXEC) mappings (MemoryDenyWriteExecute=)" ||
        fail "$wx W+X mappings: MemoryDenyWriteExecute= would break the daemon"
    fams=$(grep -o 'socket(AF_[A-Z0-9]*' "$WORK/strace.out" | sort -u | sed 's/socket(//' | tr '\n' ' ')
    echo "  (socket families asked for: $fams- AF_NETLINK is glibc's getaddrinfo probe, which copes with EAFNOSUPPORT)"
else
    skip "no strace or systemd-analyze: system calls not checked against the filter"
fi

# ---------------------------------------------------------------- 3: the sandbox, emulated
# read-only mounts (ProtectSystem=strict), uid nobody with no capabilities reaching a
# 0770 root:4242 Redis socket through supplementary group 4242 (SupplementaryGroups=redis),
# and a seccomp filter: the allow-list above (EPERM otherwise, as SystemCallErrorNumber=),
# socket() only for AF_UNIX/AF_INET/AF_INET6 (EAFNOSUPPORT otherwise, as
# RestrictAddressFamilies=) and no W+X mmap or PROT_EXEC mprotect (MemoryDenyWriteExecute=).
sandbox_ok=yes
[ "$(id -u)" = 0 ] || { skip "sandbox run: not root"; sandbox_ok=no; }
for t in unshare setpriv cc; do have $t || { skip "sandbox run: no $t"; sandbox_ok=no; }; done
[ -s "$WORK/allowed.txt" ] || { skip "sandbox run: no syscall list"; sandbox_ok=no; }
[ "$sandbox_ok" = yes ] && ! unshare -m true 2>/dev/null && { skip "sandbox run: unshare -m not permitted"; sandbox_ok=no; }
if [ "$sandbox_ok" = yes ]; then
    {
        cat <<'EOF'
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "add this architecture's AUDIT_ARCH"
#endif
static const unsigned allowed[] = {
EOF
        while read -r s; do printf '#ifdef __NR_%s\n__NR_%s,\n#endif\n' "$s" "$s"; done <"$WORK/allowed.txt"
        cat <<'EOF'
};
#define LD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define ARG(i) offsetof(struct seccomp_data, args[i]) /* low 32 bits, little endian */
#define ALLOW RET(SECCOMP_RET_ALLOW)
#define ERR(e) RET(SECCOMP_RET_ERRNO | (e))
int main(int argc, char **argv)
{
    static struct sock_filter f[4096];
    size_t n = 0;
    const struct sock_filter head[] = {
        LD(offsetof(struct seccomp_data, arch)), JEQ(ARCH, 1, 0), RET(SECCOMP_RET_KILL_PROCESS),
        LD(offsetof(struct seccomp_data, nr)),
        JEQ(__NR_socket, 0, 6), LD(ARG(0)), JEQ(AF_UNIX, 3, 0), JEQ(AF_INET, 2, 0),
        JEQ(AF_INET6, 1, 0), ERR(EAFNOSUPPORT), ALLOW,
        JEQ(__NR_mmap, 0, 5), LD(ARG(2)), BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC),
        JEQ(PROT_WRITE | PROT_EXEC, 0, 1), ERR(EPERM), ALLOW,
        JEQ(__NR_mprotect, 0, 5), LD(ARG(2)), BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_EXEC),
        JEQ(PROT_EXEC, 0, 1), ERR(EPERM), ALLOW,
    };
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
        f[n++] = head[i];
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        f[n++] = (struct sock_filter)JEQ(allowed[i], 0, 1);
        f[n++] = (struct sock_filter)ALLOW;
    }
    f[n++] = (struct sock_filter)ERR(EPERM);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp");
        return 127;
    }
    execv(argv[1], argv + 1);
    perror("execv");
    return 127;
}
EOF
    } >"$WORK/sandbox.c"
    if ! cc -O2 -o "$WORK/sandbox" "$WORK/sandbox.c" 2>"$WORK/sandbox.cc.log"; then
        fail "cannot build the seccomp wrapper:"; head -5 "$WORK/sandbox.cc.log"
    else
        start_redis rs --unixsocketperm 770
        chown root:4242 "$WORK/rs.sock"
        chmod 0711 "$WORK"
        conf "$WORK/c3.yaml" notify3 "$WORK/rs.sock"
        chmod 0644 "$WORK/c3.yaml"
        notify_listen n3
        # shellcheck disable=SC2016
        NOTIFY_SOCKET=$WORK/n3.sock WATCHDOG_USEC=2000000 unshare -m sh -c '
            for m in $(awk "{ print \$5 }" /proc/self/mountinfo); do
                case $m in /proc*|/sys*|/dev*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null ;; esac
            done
            touch "$4/rw-probe" 2>/dev/null && { echo "file system still writable"; exit 99; }
            export WATCHDOG_PID=$$
            exec setpriv --reuid=65534 --regid=65534 --groups=4242 --inh-caps=-all \
                --bounding-set=-all --no-new-privs "$1" "$2" -c "$3"' \
            sh "$WORK/sandbox" "$CSMETRICSD" "$WORK/c3.yaml" "$WORK" >"$WORK/d3.log" 2>&1 &
        P=$!; PIDS="$PIDS $P"
        if wait_for got n3 'READY=1'; then
            ok "sandboxed (ro mounts, nobody + group, seccomp): READY=1 over the unix Redis socket"
        else
            fail "sandboxed daemon never READY:"; tail -5 "$WORK/d3.log"
        fi
        sleep 3
        got n3 'WATCHDOG=1' && ok "sandboxed: WATCHDOG=1 pings" || fail "sandboxed: no WATCHDOG=1"
        stop_daemon "$P"
        [ "$RC" = 0 ] && got n3 'STOPPING=1' && ok "sandboxed: STOPPING=1, exit 0" ||
            { fail "sandboxed: exit $RC"; tail -5 "$WORK/d3.log"; }
        chmod 0700 "$WORK"
    fi
fi
finish
