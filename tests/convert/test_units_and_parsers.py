"""Sizes, durations, volumes, devices, --gpus, extraOptions and interpolation."""

from __future__ import annotations

import pytest
from hydradeploy.convert.gpus import GpuError, parse_gpus_flag
from hydradeploy.convert.interpolation import (
    InterpolationError,
    interpolate,
    parse_env_file,
)
from hydradeploy.convert.model import Container, Mount
from hydradeploy.convert.options import OptionError, apply_options, parse_device
from hydradeploy.convert.units import (
    UnitError,
    cpu_quantity,
    duration_seconds,
    size_quantity,
)
from hydradeploy.convert.volumes import VolumeError, parse_tmpfs, parse_volume


@pytest.mark.parametrize(
    ("text", "quantity"),
    [
        ("512m", "512Mi"),
        ("2g", "2Gi"),
        ("2G", "2Gi"),
        ("1.5g", "1536Mi"),
        ("100", "100"),
        ("64MiB", "64Mi"),
        ("1kb", "1Ki"),
        (1024, "1024"),
    ],
)
def test_sizes(text: str | int, quantity: str) -> None:
    assert size_quantity(text) == quantity


@pytest.mark.parametrize("bad", ["", "lots", "5x", "-1m"])
def test_bad_sizes(bad: str) -> None:
    with pytest.raises(UnitError):
        size_quantity(bad)


def test_cpus_and_durations() -> None:
    assert cpu_quantity("1.5") == "1500m"
    assert cpu_quantity(2) == "2"
    assert cpu_quantity("0.25") == "250m"
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("500ms") == 1
    assert duration_seconds("2h") == 7200
    for bad in ("soon", "1x", "", "s"):
        with pytest.raises(UnitError):
            duration_seconds(bad)
    with pytest.raises(UnitError):
        cpu_quantity("0")


@pytest.mark.parametrize(
    ("text", "quantity"),
    [
        (".5g", "512Mi"),
        ("1 GiB", "1Gi"),
        ("3MB", "3Mi"),
        ("10b", "10"),
        ("1.5K", "1536"),
    ],
)
def test_sizes_as_go_units_parses_them(text: str, quantity: str) -> None:
    # docker/go-units v0.5.0 size.go parseSize (compose-go e70e961's go.mod): ParseFloat
    # number, one optional space, b | k/m/g/t/p [b|ib], binary whatever the spelling
    assert size_quantity(text) == quantity


@pytest.mark.parametrize("bad", ["100ib", "1  g", " 1g", "1gbb", "1kib b"])
def test_sizes_go_units_refuses(bad: str) -> None:
    with pytest.raises(UnitError):
        size_quantity(bad)


def test_durations_as_go_parses_them() -> None:
    # golang/go src/time/format.go ParseDuration (08d24035), which compose-go's schema
    # check (schema.go durationFormatChecker, e70e961) and podman's --health-* use
    assert duration_seconds(".5s") == 1
    assert duration_seconds("1.5m") == 90
    assert duration_seconds("1500\u00b5s") == 1
    # a zero duration is "the default" to the engines (moby daemon/health.go)
    assert duration_seconds("0") == 0 and duration_seconds("0s") == 0
    # a number without a unit is refused ("missing unit in duration"); compose's schema
    # wants a string, so a YAML int is refused too
    for bad in ("45", "1.5", 30, 2.5):
        with pytest.raises(UnitError):
            duration_seconds(bad)


def test_stop_timeout_is_whole_seconds() -> None:
    # podman docs/source/markdown/options/stop-timeout.md (c6580b4a): --stop-timeout=seconds
    c = Container("x", "f")
    apply_options(c, ["--stop-timeout", "45"])
    assert c.stop_grace_s == 45
    with pytest.raises(OptionError, match="--stop-timeout"):
        apply_options(Container("x", "f"), ["--stop-timeout=10s"])


def test_volumes() -> None:
    assert parse_volume("/srv/a:/a")[0] == Mount("bind", "/a", "/srv/a")
    assert parse_volume("/srv/a:/a:ro")[0] == Mount(
        "bind", "/a", "/srv/a", read_only=True
    )
    assert parse_volume("data:/var/lib/x")[0] == Mount("volume", "/var/lib/x", "data")
    assert parse_volume("/cache")[0] == Mount("anonymous", "/cache")
    mount, notes = parse_volume("/srv/a:/a:Z,ro")
    assert mount.read_only and notes and "SELinux" in notes[0]
    assert parse_volume("./data:/d", base_dir="/srv/app")[0].source == "/srv/app/data"
    # tmpfs sizes are binary (kernel tmpfs.rst); a quantity's `m` would be milli
    assert parse_tmpfs("/run:size=64m") == Mount("tmpfs", "/run", size="64Mi")
    assert parse_tmpfs("/run:rw,size=787448k,mode=1777").size == "787448Ki"
    assert parse_tmpfs("/run:size=50%").size is None
    c = Container("x", "f")
    apply_options(
        c, ["--tmpfs", "/t:size=50%", "--mount", "type=tmpfs,dst=/m,tmpfs-size=64MB"]
    )
    assert [m.size for m in c.mounts] == [None, "64Mi"]
    assert any("% of the host's RAM" in n.message for n in c.notes)
    for bad in ("a:b:c:d", "/srv:relative", "/srv:/x:bogus", "./rel:/x", "b@d:/x"):
        with pytest.raises(VolumeError):
            parse_volume(bad)


def test_devices_and_gpus_flag() -> None:
    assert parse_device("/dev/dri").container_path == "/dev/dri"
    assert parse_device("/dev/ttyUSB0:/dev/zigbee:rwm").container_path == "/dev/zigbee"
    assert parse_device("nvidia.com/gpu=all").host_path == "nvidia.com/gpu=all"
    with pytest.raises(OptionError):
        parse_device("dri")
    assert parse_gpus_flag("all") is None
    assert parse_gpus_flag("2") == 2
    assert parse_gpus_flag('"device=0,1"') == 2
    assert parse_gpus_flag("count=3,capabilities=compute") == 3


def test_gpus_flag_as_docker_and_podman_read_it() -> None:
    # docker/cli opts/gpus.go GpuOpts.Set (29e34aba): without count or devices, one GPU
    assert parse_gpus_flag('"capabilities=compute,utility"') == 1
    assert parse_gpus_flag("driver=nvidia") == 1
    assert parse_gpus_flag("count=all") is None
    for bad in (
        "count=2,count=3",
        "device=0,1",
        "bogus=1",
        "0",
    ):  # unquoted: count 1 + device
        with pytest.raises(GpuError):
            parse_gpus_flag(bad)
    # podman libpod/util.go gpusToCDIDevices (c6580b4a): entries are CDI device names,
    # so `2` is the GPU with index 2 and `0,1` two GPUs
    assert parse_gpus_flag("2", podman=True) == 1
    assert parse_gpus_flag("0,1", podman=True) == 2
    assert parse_gpus_flag("all", podman=True) is None
    with pytest.raises(GpuError, match="podman takes GPU IDs"):
        parse_gpus_flag('"device=0,1"', podman=True)
    c = Container("x", "f")
    apply_options(c, ["--gpus", "2"])  # oci-containers' default backend: podman
    assert [g.count for g in c.gpus] == [1]
    c = Container("x", "f")
    apply_options(c, ["--gpus", "2"], podman=False)
    assert [g.count for g in c.gpus] == [2]


def test_extra_options_both_spellings_and_unknown_flags() -> None:
    c = Container("x", "f")
    apply_options(
        c,
        ["--network", "host", "--cap-add=NET_ADMIN", "--cap-drop", "CAP_MKNOD", "-e", "A=1", "--memory=1g",
         "--cpus", "0.5", "--add-host=db:10.0.0.5", "--dns", "1.1.1.1", "--sysctl", "net.ipv4.tcp_syncookies=1",
         "--tmpfs", "/scratch:size=1g", "--label", "k=v", "--privileged", "--read-only", "--frobnicate"],
    )  # fmt: skip
    assert c.host_network and c.privileged and c.read_only_root
    assert c.cap_add == ["NET_ADMIN"] and c.cap_drop == ["MKNOD"]
    assert c.environment == {"A": "1"}
    assert (c.resources.memory_limit, c.resources.cpu_limit) == ("1Gi", "500m")
    assert c.add_hosts == [("db", "10.0.0.5")] and c.dns == ["1.1.1.1"]
    assert c.sysctls == {"net.ipv4.tcp_syncookies": "1"} and c.labels == {"k": "v"}
    assert c.mounts == [Mount("tmpfs", "/scratch", size="1Gi")]
    assert any("--frobnicate" in n.message and n.kind == "lost" for n in c.notes)


def test_health_cmd_and_entrypoint_as_podman_reads_them() -> None:
    # containers/podman pkg/specgenutil/specgen.go (c6580b4a): MakeHealthCheckFromCli
    # and the --entrypoint JSON check; docs/source/markdown/options/health-cmd.md
    def run(*flags: str) -> Container:
        c = Container("x", "f")
        apply_options(c, list(flags))
        return c

    hc = run("--health-cmd", '["curl", "-f", "http://localhost/"]').healthcheck
    assert hc is not None and hc.command == ("curl", "-f", "http://localhost/")
    hc = run("--health-cmd=CMD pg_isready -U app").healthcheck
    assert hc is not None and hc.command == ("pg_isready", "-U", "app")
    hc = run("--health-cmd", "curl -f http://x || exit 1").healthcheck
    assert hc is not None and hc.command == (
        "/bin/sh",
        "-c",
        "curl -f http://x || exit 1",
    )
    assert run("--health-cmd=true", "--health-cmd=NONE").healthcheck is None
    # podman health-interval.md: "disable" sets up no timer; the check never runs
    assert run("--health-interval=disable", "--health-cmd=true").healthcheck is None
    # a JSON array is the whole entrypoint; anything else is one executable, not split
    assert run("--entrypoint", '["/bin/sh", "-c"]').entrypoint == ("/bin/sh", "-c")
    assert run("--entrypoint", "/usr/bin/my app").entrypoint == ("/usr/bin/my app",)


def test_oci_containers_entrypoint_json_array_with_podman_only() -> None:
    # nixpkgs oci-containers.nix (035a24e7) passes `--entrypoint=<entrypoint>`; podman
    # reads a JSON array there, docker (`podman = null`) takes the string as it is
    from hydradeploy.convert.oci_containers import load_podman

    spec = {"image": "x", "entrypoint": '["/bin/sh", "-c"]'}
    (c,) = load_podman({"a": spec}, "c.json", None).containers
    assert c.entrypoint == ("/bin/sh", "-c")
    (c,) = load_podman({"a": {**spec, "podman": None}}, "c.json", None).containers
    assert c.entrypoint == ('["/bin/sh", "-c"]',)


def test_add_host_takes_several_names_as_podman_does() -> None:
    # containers/podman docs/source/markdown/options/add-host.md (c6580b4a):
    # --add-host=hostname[;hostname[;...]]:ip
    c = Container("x", "f")
    apply_options(c, ["--add-host=db;db.local:10.0.0.5", "--add-host", "v6:fd00::1"])
    assert c.add_hosts == [
        ("db", "10.0.0.5"),
        ("db.local", "10.0.0.5"),
        ("v6", "fd00::1"),
    ]


def test_mount_readonly_as_docker_parses_it() -> None:
    # docker/cli opts/mount.go (02cae2f7): bare ro/readonly, or strconv.ParseBool
    def ro(spec: str) -> bool:
        c = Container("x", "f")
        apply_options(c, ["--mount", spec])
        return c.mounts[0].read_only

    assert ro("type=bind,src=/srv,dst=/d,ro")
    assert ro("type=bind,src=/srv,dst=/d,readonly=TRUE")
    assert not ro("type=bind,src=/srv,dst=/d,ro=false")
    assert not ro("type=BIND,src=/srv,dst=/d,readonly=0")
    with pytest.raises(OptionError, match="invalid value for ro"):
        ro("type=bind,src=/srv,dst=/d,ro=maybe")


def test_extra_options_errors_name_the_flag() -> None:
    with pytest.raises(OptionError, match="--memory"):
        apply_options(Container("x", "f"), ["--memory=lots"])
    with pytest.raises(OptionError, match="needs a value"):
        apply_options(Container("x", "f"), ["--device"])


def test_interpolation() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("$A ${A} $$A", env) == "1 1 $A"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${NOPE-d}", env) == "d  d"
    assert interpolate("${A:+yes} ${NOPE:+yes}", env) == "yes "
    assert interpolate("${NOPE:-${A}}", env) == "1"
    missing: set[str] = set()
    assert interpolate("x${NOPE}y", env, missing) == "xy" and missing == {"NOPE"}
    with pytest.raises(InterpolationError, match="required variable NOPE: tell me"):
        interpolate("${NOPE:?tell me}", env)
    for bad in ("${A", "${1A}", "${}", "${A!}"):
        with pytest.raises(InterpolationError):
            interpolate(bad, env)


def test_interpolation_leaves_a_lone_dollar_as_compose_does() -> None:
    # compose-go template/template_test.go TestUnescaped (e70e961): a `$` that starts
    # neither `$$`, a name nor `${` is kept, e.g. a regex in a healthcheck command
    env = {"A": "1"}
    for text in ("a $ string", "^REGEX$", "$}", "$", "$-", "cost: 5$"):
        assert interpolate(text, env) == text
    assert interpolate("grep -E '^ok$' && echo $A", env) == "grep -E '^ok$' && echo 1"


def test_interpolation_braces_in_a_default_nest_as_compose_counts_them() -> None:
    # template.go getFirstBraceClosingIndex (e70e961) counts every `{`: the default of
    # ${A:-{x}} is `{x}`, and with A set nothing of it is left behind
    assert interpolate("${A:-{x}}", {"A": "1"}) == "1"
    assert interpolate("${A:-{x}}", {}) == "{x}"


def test_env_file_format() -> None:
    text = "# c\nexport A=1\nB='x y'\nC=\"a\\nb\"\nD=v # comment\n\nE="
    assert parse_env_file(text, ".env") == {
        "A": "1",
        "B": "x y",
        "C": "a\nb",
        "D": "v",
        "E": "",
    }
    with pytest.raises(InterpolationError, match="line 2: key cannot contain a space"):
        parse_env_file("A=1\nnot a line\n", ".env")


def test_env_file_as_compose_go_parses_it() -> None:
    # compose-go dotenv/parser.go and env.go GetEnvFromFile (e70e961)
    text = (
        '\ufeffMULTI="line one\nline two"\n'  # quoted values span lines
        "URL=http://${HOST}:${PORT:-80}/x\n"  # unquoted values interpolate, shell first
        "PORT=81\n"
        "AFTER=${PORT}\n"  # ...then the keys above
        "LIT='${PORT} \\n'\n"  # single quotes: literal
        'ESC="tab\\there \\$PORT \\0101"\n'  # double quotes: Go escapes, `\$` is `$`
        "YAML: style\n"  # `:` separates like `=`
        "FROM_SHELL\n"  # a bare name takes the shell's value
        "NOT_IN_SHELL\n"  # ...or sets nothing
        "HASH=a\t#b\n"  # an inline comment needs a space before `#`
    )
    assert parse_env_file(text, ".env", {"HOST": "h", "FROM_SHELL": "s"}) == {
        "MULTI": "line one\nline two",
        "URL": "http://h:80/x",
        "PORT": "81",
        "AFTER": "81",
        "LIT": "${PORT} \\n",
        "ESC": "tab\there $PORT A",
        "YAML": "style",
        "FROM_SHELL": "s",
        "HASH": "a\t#b",
    }
    with pytest.raises(InterpolationError, match="line 1: unterminated quoted value"):
        parse_env_file('A="open\n', ".env")
