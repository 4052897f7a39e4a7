"""Which system generations hydradeploy verified: the host ran them and they passed the
join checks (a deploy that ended `deployed`, or a rollback healthy again).

Kept on the host, in /var/lib/hydradeploy/verified, one line per verification:
`GENERATION CLOSURE RUN EPOCH`. A line counts only while the generation's link still
points at that closure (nix-env reuses numbers after generations are deleted: a new
generation is the highest existing number + 1; upstream: NixOS/nix src/libstore/
profiles.cc @2.8.0, `createGeneration`), so a
number can never inherit another closure's verdict. `rollback HOST` goes back to the
newest verified generation before the current one, never to one that failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from hydradeploy.deploy.lock import STATE_DIR
from hydradeploy.deploy.models import SYSTEM_PROFILE, Generation, HostReport, Outcome
from hydradeploy.transport import Connection as Remote
from hydradeploy.transport import RemoteError, script

VERIFIED_FILE = f"{STATE_DIR}/verified"

# Mark generation $2 verified when it is what runs: the profile's link for $2 and
# /run/current-system both resolve to closure $3.
_MARK = r"""
file=$1 gen=$2 closure=$3 run=$4 profile=$5
link=$(readlink -f "$profile-$gen-link" 2>/dev/null)
running=$(readlink -f /run/current-system 2>/dev/null)
if [ "$link" != "$closure" ] || [ "$running" != "$closure" ]; then
  echo "not-running generation $gen is $link, running $running"; exit 0
fi
mkdir -p "${file%/*}" && printf '%s %s %s %s\n' "$gen" "$closure" "$run" "$(date +%s)" >> "$file" &&
  echo marked
"""

# Print the numbers of generations whose verified closure is still their link's target.
_READ = r"""
file=$1 profile=$2
[ -e "$file" ] || exit 0
while read -r gen closure _rest; do
  [ "$(readlink -f "$profile-$gen-link" 2>/dev/null)" = "$closure" ] && echo "$gen"
done < "$file"
exit 0
"""


def verified_generation(rep: HostReport) -> tuple[int, str] | None:
    """The (generation, closure) this run verified on the host, if any."""
    if rep.generation_after is None or not rep.closure_after:
        return None
    if rep.outcome == Outcome.DEPLOYED or rep.healthy_after_rollback:
        return rep.generation_after, rep.closure_after
    return None


def mark(
    remote: Remote, rep: HostReport, run_id: str, profile: str = SYSTEM_PROFILE
) -> bool | None:
    """Record on the host that this run verified its generation; True when marked, False
    when the run verified nothing (or the host runs something else), None when the host
    could not be asked."""
    target = verified_generation(rep)
    if target is None:
        return False
    gen, closure = target
    try:
        res = remote.run(
            script(_MARK, VERIFIED_FILE, str(gen), closure, run_id, profile),
            timeout=15,
            what="record the verified generation",
        )
    except RemoteError:
        return None
    return res.stdout.strip() == "marked"


def read(remote: Remote, profile: str = SYSTEM_PROFILE) -> set[int]:
    res = remote.run(
        script(_READ, VERIFIED_FILE, profile),
        timeout=15,
        check=True,
        what="read the verified generations",
    )
    out: set[int] = set()
    for line in res.stdout.split():
        with contextlib.suppress(ValueError):
            out.add(int(line))
    return out


def rollback_target(gens: Sequence[Generation], verified: set[int]) -> int | str:
    """The newest verified generation before the current one, or why there is none."""
    current = next((g.number for g in gens if g.current), None)
    if current is None:
        return "no current generation"
    good = [g.number for g in gens if g.number < current and g.number in verified]
    if good:
        return max(good)
    older = [g.number for g in gens if g.number < current]
    if not older:
        return f"no generation before the current one ({current})"
    return (
        f"no generation before the current one ({current}) passed hydradeploy's checks "
        f"(older: {', '.join(map(str, older))}); name one with --to"
    )
