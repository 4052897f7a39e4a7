"""Magic rollback, host side.

Before anything live changes, the engine starts a guard process on the host. The guard
runs the activation (`switch-to-configuration MODE` of the new closure) itself, writes
its exit status, then waits up to `confirm_timeout` seconds for a decision:

* the engine opened a NEW SSH connection after activation and wrote `confirmed`;
* the engine asked for `rollback` (activation failed);
* nobody decided in time: the guard decides `watchdog` itself and rolls back.

A decision is the symlink `$state/decision`, created atomically by whoever decides
first, so a late confirm and the watchdog can never both win. Rolling back = point
the system profile at the old generation and activate the old closure.

On NixOS the guard is a transient systemd unit (`systemd-run`): it survives sshd being
restarted by the activation and the SSH session ending. Without systemd (the lab, or a
host not booted with systemd) it is a detached `setsid` process with output in a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydradeploy.deploy.lock import RUNS_DIR
from hydradeploy.deploy.models import SYSTEM_PROFILE
from hydradeploy.deploy.remote import Remote, script

DEAD = -1  # wait_activated: the guard process is gone without having activated

# $1 state dir  $2 action (activate|rollback)  $3 profile  $4 new closure  $5 mode
# $6 old generation  $7 old closure  $8 confirm timeout (s, 0 = no guard)  $9 lock dir
# $10 run id
GUARD = r"""
state=$1 action=$2 profile=$3 new=$4 mode=$5 oldgen=$6 old=$7 timeout=$8 lock=$9
shift 9; run=$1
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >> "$state/guard.log"; }
finish() { printf '%s\n' "$2" > "$state/$1.tmp" && mv -f "$state/$1.tmp" "$state/$1"; }
rollback() {
  log "rolling back to generation $oldgen ($1)"
  rc=0
  if [ -n "$oldgen" ] && [ "$oldgen" != 0 ]; then
    nix-env -p "$profile" --switch-generation "$oldgen" >> "$state/rollback.log" 2>&1 || rc=$?
  fi
  "$old/bin/switch-to-configuration" switch >> "$state/rollback.log" 2>&1 || rc=$?
  finish rolledback "$rc $1 $(date +%s)"
  log "rollback finished with status $rc"
}
echo $$ > "$state/pid"
trap 'touch "$state/done"' EXIT
case $action in
  rollback) ln -s rollback "$state/decision" 2>/dev/null; rollback tool; exit 0 ;;
esac
log "activating $new ($mode)"
"$new/bin/switch-to-configuration" "$mode" > "$state/activation.log" 2>&1
rc=$?
finish activated "$rc $(date +%s)"
log "activation exited with status $rc"
[ "$timeout" = 0 ] && exit 0
deadline=$(( $(date +%s) + timeout ))
while :; do
  if [ -L "$state/decision" ]; then
    case $(readlink "$state/decision") in
      confirmed) log "confirmed"; exit 0 ;;
      rollback) rollback tool; exit 0 ;;
      *) exit 0 ;;
    esac
  fi
  if [ -z "$extended" ] && [ -e "$state/reached" ]; then  # armed.py: stay armed through the checks
    extended=$(cat "$state/reached"); case $extended in ''|*[!0-9]*) extended=0 ;; esac
    deadline=$(( $(date +%s) + extended )); log "reached; waiting ${extended}s for the checks"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    if ln -s watchdog "$state/decision" 2>/dev/null; then
      log "no confirmation within ${timeout}s"
      rollback watchdog
      exit 0
    fi
    continue
  fi
  sleep 0.2
done
"""

# The guard's arguments ($1 is its state dir); the guard script arrives on stdin.
LAUNCH = r"""
state=$1
mkdir -p "$state" || exit 3
cat > "$state/guard.sh" || exit 3
if command -v systemd-run >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  unit="hydradeploy-guard-${state##*/}"
  systemd-run --quiet --collect --no-ask-password --unit="$unit" \
    --property=KillMode=process --setenv=PATH="$PATH" \
    /bin/sh "$state/guard.sh" "$@" || exit 4
  echo "systemd $unit"
else
  setsid nohup /bin/sh "$state/guard.sh" "$@" > "$state/guard.out" 2>&1 < /dev/null &
  echo "setsid $!"
fi
"""

# Wait up to $2 seconds for the activation to end; print "rc" or "running", then the
# last line of the activation output.
WAIT_ACTIVATED = r"""
state=$1 n=$(( $2 * 5 ))
while [ ! -e "$state/activated" ] && [ "$n" -gt 0 ]; do sleep 0.2; n=$((n - 1)); done
if [ -e "$state/activated" ]; then cat "$state/activated"
elif [ -e "$state/done" ]; then echo dead
elif [ -e "$state/pid" ] && ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then echo dead
elif [ ! -e "$state/pid" ] && [ "$2" -gt 0 ]; then echo dead
else echo running; fi
tail -n 1 "$state/activation.log" 2>/dev/null || tail -n 1 "$state/guard.out" 2>/dev/null
exit 0
"""

# Decide `confirmed` (or `rollback`); print the decision that stands.
DECIDE = r"""
state=$1 want=$2
ln -s "$want" "$state/decision" 2>/dev/null
readlink "$state/decision"
"""

# Wait up to $2 s for a rollback to finish; print "rc who" or "running", then its last line.
WAIT_ROLLEDBACK = r"""
state=$1 n=$(( $2 * 5 ))
while [ ! -e "$state/rolledback" ] && [ "$n" -gt 0 ]; do sleep 0.2; n=$((n - 1)); done
if [ -e "$state/rolledback" ]; then cat "$state/rolledback"; else echo running; fi
tail -n 1 "$state/rollback.log" 2>/dev/null
exit 0
"""


@dataclass(frozen=True)
class GuardArgs:
    run_id: str
    action: str  # "activate" | "rollback"
    new: str
    mode: str
    old_generation: int | None
    old: str
    confirm_timeout: int
    lock_dir: str
    profile: str = SYSTEM_PROFILE

    @property
    def state_dir(self) -> str:
        return f"{RUNS_DIR}/{self.run_id}-{self.action}"

    def argv(self) -> list[str]:
        return [
            self.state_dir,
            self.action,
            self.profile,
            self.new,
            self.mode,
            str(self.old_generation or 0),
            self.old,
            str(self.confirm_timeout),
            self.lock_dir,
            self.run_id,
        ]


def arm(remote: Remote, args: GuardArgs) -> str:
    """Start the guard (which activates). Returns how it runs: "systemd UNIT" or "setsid PID"."""
    res = remote.run(
        script(LAUNCH, *args.argv()),
        stdin=GUARD.encode(),
        timeout=30,
        check=True,
        what="arm the rollback watchdog",
    )
    return res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "?"


def wait_activated(
    remote: Remote, state_dir: str, seconds: int
) -> tuple[int | None, float | None, str]:
    """(exit status: None while running, DEAD if the guard vanished; when it ended, in the
    host's clock; last output line)."""
    res = remote.run(
        script(WAIT_ACTIVATED, state_dir, str(seconds)),
        timeout=seconds + 3,  # no answer this soon: the activation probably cut us off
        check=True,
        what="wait for activation",
    )
    lines = res.stdout.splitlines() or ["running"]
    last = lines[1] if len(lines) > 1 else ""
    if lines[0] == "running":
        return None, None, last
    if lines[0] == "dead":
        return DEAD, None, last
    rc, _, when = lines[0].partition(" ")
    return int(rc), float(when) if when.strip().isdigit() else None, last


def decide(remote: Remote, state_dir: str, want: str) -> str:
    """Try to decide `want` ("confirmed" or "rollback"); return the decision that stands."""
    res = remote.run(
        script(DECIDE, state_dir, want), timeout=15, check=True, what=f"{want} the watchdog"
    )
    return res.stdout.strip() or "?"


def wait_rolled_back(remote: Remote, state_dir: str, seconds: int) -> tuple[str | None, str]:
    """("rc who epoch" once the rollback finished, else None; last line of its output)."""
    res = remote.run(
        script(WAIT_ROLLEDBACK, state_dir, str(seconds)),
        timeout=seconds + 10,
        check=True,
        what="wait for the rollback",
    )
    lines = res.stdout.splitlines() or ["running"]
    last = lines[1] if len(lines) > 1 else ""
    return (None if lines[0] == "running" else lines[0]), last
