"""Magic rollback, host side.

Before anything on the host changes, the engine starts a guard process there. The guard
itself points the system profile at the new closure (switch and boot goals) and runs the
activation (`switch-to-configuration MODE` of the new closure), writes its exit status,
then waits up to `confirm_timeout` seconds for a decision:

* the engine opened a NEW SSH connection after activation and wrote `confirmed`;
* the engine asked for `rollback` (activation failed);
* nobody decided in time: the guard decides `watchdog` itself and rolls back.

A decision is the symlink `$state/decision`, created atomically by whoever decides
first, so a late confirm and the watchdog can never both win. Rolling back = point
the system profile at the old generation and activate the old closure.

The profile moves inside the guard, not in a round trip before it (issue 15): a deployer
killed at any moment leaves either an untouched host (the guard never started) or a
guard that owns both the profile and the activation and restores both unless confirmed.
The order — profile first, then `switch-to-configuration` — is nixos-rebuild's:
nixpkgs 0371879f74fd, pkgs/by-name/ni/nixos-rebuild-ng/src/nixos_rebuild/services.py,
`_activate_system`: for SWITCH and BOOT `nix.set_profile` then
`nix.switch_to_configuration`; nix.py (nixpkgs 02b943d57ff9) `set_profile` runs
`nix-env -p PROFILE --set PATH`, `switch_to_configuration` runs
`PATH/bin/switch-to-configuration ACTION`.

The guard is a transient systemd unit (`systemd-run`) on every host, the lab's too: it
lives outside the SSH session's processes, so it survives sshd being restarted by the
activation, the SSH session ending and the deployer being killed (tests/lab/
test_lab_guard.py shows each). A host without systemd is refused at `arm`, with the
reason. Everything the guard leaves in its state directory is read by one script
(STATUS) and parsed by one function (parse_status).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydradeploy.deploy.lock import RUNS_DIR
from hydradeploy.deploy.models import SYSTEM_PROFILE
from hydradeploy.deploy.remote import Remote, RemoteError, script

DEAD = -1  # wait_activated: the guard process is gone without having activated

# $1 state dir  $2 action (activate|rollback)  $3 profile  $4 new closure  $5 mode
# $6 old generation  $7 old closure  $8 confirm timeout (s, 0 = no guard)  $9 lock dir
# $10 run id  $11 the profile step: none | set (`--set $new`, a new generation) | N
# (`--switch-generation N`, an existing one)
GUARD = r"""
state=$1 action=$2 profile=$3 new=$4 mode=$5 oldgen=$6 old=$7 timeout=$8 lock=$9
shift 9; run=$1 setp=${2:-none}
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
rc=0
if [ "$setp" != none ]; then
  log "setting the system profile ($setp)"
  case $setp in
    set) nix-env -p "$profile" --set "$new" ;;
    *) nix-env -p "$profile" --switch-generation "$setp" ;;
  esac > "$state/profile.log" 2>&1 || rc=$?
  finish profile "$rc"
fi
if [ "$rc" != 0 ]; then  # nothing activated; the profile goes back where it was
  { cat "$state/profile.log"; echo "hydradeploy guard: setting the system profile failed (status $rc); nothing activated"; } > "$state/activation.log"
  finish activated "$rc $(date +%s)"
  log "setting the profile exited with status $rc"
  if [ -n "$oldgen" ] && [ "$oldgen" != 0 ]; then
    nix-env -p "$profile" --switch-generation "$oldgen" > "$state/rollback.log" 2>&1
  fi
  ln -s rollback "$state/decision" 2>/dev/null
  finish rolledback "0 profile $(date +%s)"
  exit 0
fi
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

UNIT_PREFIX = "hydradeploy-guard-"  # + the state directory's name

# The guard's arguments ($1 is its state dir); the guard script arrives on stdin.
# KillMode=process: stopping the unit must not kill the activation's children (the
# units it starts belong to systemd anyway; systemd.kill(5): "If set to process, only the
# main process itself is killed"). systemd-run(1): --collect unloads the unit once it
# ended, even when it failed (CollectMode=inactive-or-failed); --quiet, --no-ask-password,
# --unit=, --property=, --setenv=NAME=VALUE. upstream: systemd 252 man pages
# systemd-run(1), systemd.kill(5) as Debian 12 ships them (252.39-1~deb12u2).
# "Booted with systemd" is sd_booted()'s test: /run/systemd/system/ exists
# (upstream: systemd src/libsystemd/sd-daemon/sd-daemon.c @01cae7a7446e, `sd_booted`).
LAUNCH = r"""
state=$1
mkdir -p "$state" || exit 3
cat > "$state/guard.sh" || exit 3
if ! command -v systemd-run >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
  echo "systemd-run is missing or the host was not booted with systemd" >&2
  exit 4
fi
unit="hydradeploy-guard-${state##*/}"
systemd-run --quiet --collect --no-ask-password --unit="$unit" \
  --property=KillMode=process --setenv=PATH="$PATH" \
  /bin/sh "$state/guard.sh" "$@" || exit 4
echo "$unit"
"""

# Everything known about a guard, as key=value lines; waits up to $3 s for the file $2
# (activated | rolledback) first.
STATUS = r"""
state=$1 want=$2 n=$(( $3 * 5 ))
while [ ! -e "$state/$want" ] && [ "$n" -gt 0 ]; do sleep 0.2; n=$((n - 1)); done
for f in activated rolledback; do
  [ -e "$state/$f" ] && echo "$f=$(cat "$state/$f")"
done
[ -L "$state/decision" ] && echo "decision=$(readlink "$state/decision")"
[ -e "$state/done" ] && echo "done=yes"
echo "unit=$(systemctl is-active "hydradeploy-guard-${state##*/}" 2>/dev/null)"
echo "activation_last=$(tail -n 1 "$state/activation.log" 2>/dev/null)"
echo "rollback_last=$(tail -n 1 "$state/rollback.log" 2>/dev/null)"
exit 0
"""

# Decide `confirmed` (or `rollback`); print the decision that stands.
DECIDE = r"""
state=$1 want=$2
ln -s "$want" "$state/decision" 2>/dev/null
readlink "$state/decision"
"""


@dataclass(frozen=True)
class GuardStatus:
    """What a guard's state directory and its unit say, at one moment."""

    activated: tuple[int, float | None] | None = None  # exit status, when (host clock)
    rolledback: str | None = None  # "rc who epoch"
    decision: str | None = None  # confirmed | rollback | watchdog
    done: bool = False
    unit: str = ""  # systemctl is-active of the guard's unit
    last: dict[str, str] = field(default_factory=dict)  # activation / rollback: last line

    @property
    def alive(self) -> bool:
        # Unit active states: active reloading inactive failed activating deactivating
        # maintenance (upstream: systemd src/basic/unit-def.c @017fbb710180,
        # `unit_active_state_table`); "maintenance" is a unit being cleaned, not running.
        return not self.done and self.unit in ("active", "activating", "deactivating", "reloading")


def parse_status(text: str) -> GuardStatus:
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            kv[key] = value.strip()
    activated = None
    if "activated" in kv:
        rc, _, when = kv["activated"].partition(" ")
        try:
            activated = (int(rc), float(when) if when.strip().isdigit() else None)
        except ValueError:
            activated = None
    return GuardStatus(
        activated=activated,
        rolledback=kv.get("rolledback") or None,
        decision=kv.get("decision") or None,
        done=kv.get("done") == "yes",
        unit=kv.get("unit", ""),
        last={
            "activation": kv.get("activation_last", ""),
            "rollback": kv.get("rollback_last", ""),
        },
    )


def status(remote: Remote, state_dir: str, wait_for: str, seconds: int) -> GuardStatus:
    res = remote.run(
        script(STATUS, state_dir, wait_for, str(seconds)),
        timeout=seconds + 5,  # no answer this soon: the activation probably cut us off
        check=True,
        what=f"read the guard ({wait_for})",
    )
    return parse_status(res.stdout)


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
    #: what the guard does to the profile before activating: "none" (test goal),
    #: "set" (a new generation of `new`) or a generation number to switch to
    set_profile: str = "none"

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
            self.set_profile,
        ]


def arm(remote: Remote, args: GuardArgs) -> str:
    """Start the guard (which activates) as a transient systemd unit; returns how it runs,
    for the progress line: "systemd-run unit hydradeploy-guard-…"."""
    what = "arm the rollback watchdog (systemd-run)"
    res = remote.run(script(LAUNCH, *args.argv()), stdin=GUARD.encode(), timeout=30, what=what)
    if res.rc != 0:
        reason = (res.stderr.strip().splitlines() or [f"exit status {res.rc}"])[-1]
        raise RemoteError(f"{remote.name}: {what}: {reason}")
    unit = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "?"
    return f"systemd-run unit {unit}"


def wait_activated(
    remote: Remote, state_dir: str, seconds: int
) -> tuple[int | None, float | None, str]:
    """(exit status: None while running, DEAD if the guard is gone without having
    activated; when it ended, in the host's clock; last output line)."""
    st = status(remote, state_dir, "activated", seconds)
    last = st.last["activation"]
    if st.activated is not None:
        return st.activated[0], st.activated[1], last
    if not st.alive:
        return DEAD, None, last
    return None, None, last


def decide(remote: Remote, state_dir: str, want: str) -> str:
    """Try to decide `want` ("confirmed" or "rollback"); return the decision that stands."""
    res = remote.run(
        script(DECIDE, state_dir, want), timeout=15, check=True, what=f"{want} the watchdog"
    )
    return res.stdout.strip() or "?"


def wait_rolled_back(remote: Remote, state_dir: str, seconds: int) -> tuple[str | None, str]:
    """("rc who epoch" once the rollback finished, else None; last line of its output)."""
    st = status(remote, state_dir, "rolledback", seconds)
    return st.rolledback, st.last["rollback"]
