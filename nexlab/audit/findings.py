"""What is wrong with an image for Nex: the rules as records, each checked by a small function.

Each ``Rule`` is data (``code``, ``severity``, ``summary``, ``fix``, ``check``):
``RULES`` is the registry ``nexlab audit --list-rules`` prints and the README's
findings table is generated from. A check is a function of ``Facts`` that
yields the ``Finding``s of its rules (one check may serve several related
rules, e.g. ``setuid`` and ``setgid``; ``evaluate`` runs each check once).

Checks see the image only through ``Facts`` (the records, a bounded reader of
small files, the filesystem's inode size and the fsck result), so each can be
tested on a real image made to break it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from nexlab.audit.fsck import FsckResult
from nexlab.audit.inventory import FileRecord, canonical_path
from nexlab.audit.passwords import well_known_password
from nexlab.audit.table import PathMap
from nexlab.display import Summarized
from nexlab.image.elf import BOOT_PATH, Architecture
from nexlab.inits import INIT_PATHS, OPENRC_RUN_PATHS, SERVICE_PATHS, InitKind, classify

if TYPE_CHECKING:
    import pandas as pd

NEX_UID = 1000
NEX_GID = 1000
AGENT = "/usr/local/bin/agent"
AGENT_SERVICE = "/etc/init.d/agent"
#: Config files are read with this cap: a hostile image must not make us read gigabytes.
READ_LIMIT = 1 << 20


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            from nexlab.errors import InputError

            names = ", ".join(s.value for s in cls)
            raise InputError(f"unknown severity {value!r}", hint=f"use one of {names}") from None


_RANK = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True)
class Finding(Summarized):
    severity: Severity
    code: str
    message: str
    fix: str
    paths: tuple[str, ...] = ()

    def summary(self) -> str:
        # The paths go first: the message is long and is what the limit cuts.
        where = f" ({len(self.paths)} paths)" if len(self.paths) > 1 else f" ({self.paths[0]})" if self.paths else ""
        return f"{self.severity.value} {self.code}{where}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            "paths": list(self.paths),
        }


def findings_frame(findings: Iterable[Finding]) -> pd.DataFrame:
    """One row per finding, in the given order (worst first); ``severity`` an ordered category."""
    import pandas as pd

    columns = ["severity", "code", "message", "fix", "paths"]
    rows = [[f.severity.value, f.code, f.message, f.fix, list(f.paths)] for f in findings]
    frame = pd.DataFrame(rows, columns=columns)
    frame["severity"] = pd.Categorical(frame["severity"], categories=[s.value for s in Severity], ordered=True)
    return frame


@dataclass(frozen=True)
class Facts:
    records: Mapping[str, FileRecord]
    #: Reads a file of the image by its canonical path (None when absent or unreadable).
    read: Callable[[str], bytes | None]
    inode_size: int = 256
    fsck: FsckResult | None = None
    needs_recovery: bool = False
    #: What the image's binaries and package database say it runs on (``nexlab.image.elf``).
    architecture: Architecture | None = None
    cache: dict[str, bytes | None] = field(default_factory=dict, compare=False)

    def find(self, path: str) -> FileRecord | None:
        """The record ``path`` leads to, symlinks followed inside the image."""
        real = canonical_path(self.records, path)
        return self.records.get(real) if real else None

    def text(self, path: str) -> str | None:
        if path not in self.cache:
            record = self.find(path)
            self.cache[path] = self.read(record.path) if record and record.type == "file" else None
        data = self.cache[path]
        return data.decode("utf-8", "surrogateescape") if data is not None else None

    def passwd(self, name: str) -> list[str] | None:
        return _colon_entry(self.text("/etc/passwd"), name)

    def runlevel_links(self) -> list[FileRecord]:
        return [r for path, r in self.under("/etc/runlevels/") if path.count("/") == 4 and r.type != "dir"]

    def under(self, prefix: str) -> Iterable[tuple[str, FileRecord]]:
        """``(path, record)`` of the paths that start with ``prefix``.

        An audit's records are a ``PathMap`` (sorted columns): there this is one slice,
        not a record made for each of a million paths; a mounted tree's (``MountedRecords``)
        walks that directory alone. Records that know no better are filtered by key first:
        a build's records are made when read (facts._Rows), so only the matches are made.
        """
        under: Callable[[str], Iterable[tuple[str, FileRecord]]] | None = getattr(self.records, "under", None)
        if under is not None:
            return under(prefix)
        return ((path, self.records[path]) for path in self.records if path.startswith(prefix))

    def with_mode(self, kinds: tuple[str, ...], bits: int) -> list[FileRecord]:
        """The records of a type in ``kinds`` with any of the permission ``bits`` set (read from the
        columns of a ``PathMap``, so only the matches become records)."""
        if isinstance(self.records, PathMap):
            table = self.records.table
            return [table.record(row) for row in table.select(kinds, bits)]
        return [r for r in self.records.values() if r.type in kinds and r.mode & bits]


#: A check: yields the findings of one or more rules for an image.
Check = Callable[[Facts], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """One kind of finding: what it means and how to fix it, and the check that finds it."""

    code: str
    severity: Severity
    #: When it is reported (one line; the README's "when" column).
    summary: str
    #: The usual fix; a finding may give a more precise one for its case.
    fix: str
    check: Check = field(compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "severity": self.severity.value, "summary": self.summary, "fix": self.fix}


def _colon_entry(text: str | None, name: str) -> list[str] | None:
    for line in (text or "").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    return None


def _finding(rule: Rule, message: str, fix: str, paths: Iterable[str] = ()) -> Finding:
    return Finding(rule.severity, rule.code, message, fix, tuple(sorted(set(paths))))


def agent(facts: Facts) -> Iterable[Finding]:
    record = facts.find(AGENT)
    if record is None:
        yield _finding(AGENT_MISSING, f"{AGENT} does not exist", "build with --agent PATH", [AGENT])
    elif record.type != "file":
        yield _finding(
            AGENT_MISSING,
            f"{AGENT} is a {record.type}, not a file",
            "rebuild with --agent",
            [AGENT],
        )
    elif not record.mode & 0o111:
        yield _finding(
            AGENT_NOT_EXECUTABLE,
            f"{AGENT} has mode {record.mode:04o}: nobody can run it",
            f"chmod 0755 {AGENT}",
            [AGENT],
        )


def image_init(facts: Facts) -> InitKind | None:
    """The image's init, classified as the build does (``nexlab.inits.classify``, as the build does)."""
    pid1 = None
    for path in INIT_PATHS:
        real = canonical_path(facts.records, path)
        if real is not None and real in facts.records and facts.records[real].type == "file":
            pid1 = real
            break
    openrc = any((r := facts.find(p)) is not None and r.type == "file" for p in OPENRC_RUN_PATHS)
    if pid1 is None:
        return classify(None, b"", openrc=openrc)
    conclusive = posixpath.basename(pid1) in ("systemd", "busybox")
    head = b"" if conclusive else (facts.read(pid1) or b"")
    return classify(pid1, head, openrc=openrc)


def agent_service(facts: Facts) -> Iterable[Finding]:
    """The agent's service, for the init the image boots with."""
    kind = image_init(facts)
    if kind is None and facts.find("/sbin/init") is None and facts.find("/usr/sbin/init") is None:
        yield _finding(
            NO_INIT,
            "no /sbin/init: the kernel finds nothing to run, nothing starts the agent",
            "build from a base with OpenRC, systemd or busybox init",
            ["/sbin/init"],
        )
    if kind == InitKind.SYSTEMD:
        yield from _systemd_service(facts)
    elif kind in (InitKind.BUSYBOX, InitKind.SYSVINIT) and _inittab_agent(facts):
        yield from _inittab_service(facts, kind)
    else:
        yield from _openrc_service(facts, kind)


#: Where systemd finds units an administrator installed (in order).
_UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")


def _systemd_service(facts: Facts) -> Iterable[Finding]:
    unit = next((r for d in _UNIT_DIRS if (r := facts.find(f"{d}/agent.service")) and r.type == "file"), None)
    if unit is None:
        openrc_script = facts.find(AGENT_SERVICE) is not None
        yield _finding(
            SERVICE_MISSING,
            "systemd is PID 1 but there is no agent.service unit"
            + (f" (only {AGENT_SERVICE}, an OpenRC script systemd does not run)" if openrc_script else "")
            + ": the agent will not start",
            "rebuild with nexlab build (it installs a unit for systemd bases)",
            [SERVICE_PATHS[InitKind.SYSTEMD]],
        )
        return
    enabled = [
        path
        for path, record in facts.under("/etc/systemd/system/")
        if posixpath.dirname(path).endswith(".wants")
        and posixpath.basename(path) == "agent.service"
        and record.type == "symlink"
        and canonical_path(facts.records, path) == unit.path
    ]
    if not enabled:
        yield _finding(
            SERVICE_NOT_ENABLED,
            "agent.service is wanted by no target: systemd will not start it at boot",
            "systemctl enable agent (a link in /etc/systemd/system/multi-user.target.wants)",
            [unit.path],
        )
    command = _unit_value(facts.text(unit.path) or "", "ExecStart")
    yield from _command_missing(facts, command, unit.path)


def _unit_value(text: str, key: str) -> str:
    """The last ``key=`` of a unit file (systemd's prefixes like ``-`` or ``+`` dropped)."""
    value = ""
    for line in text.splitlines():
        name, sep, rest = line.strip().partition("=")
        if sep and name.strip() == key:
            value = rest.strip().lstrip("-+!@:")
    return value


def _inittab_agent(facts: Facts) -> list[str]:
    """The inittab ``respawn`` commands that run the agent (its wrapper or the agent itself)."""
    commands = []
    for line in (facts.text("/etc/inittab") or "").splitlines():
        fields = line.strip().split(":", 3)
        if line.lstrip().startswith("#") or len(fields) != 4 or fields[2] != "respawn":
            continue
        command = fields[3].strip()
        if "agent" in posixpath.basename(command.split(" ")[0]):
            commands.append(command)
    return commands


def _inittab_service(facts: Facts, kind: InitKind) -> Iterable[Finding]:
    for command in _inittab_agent(facts):
        yield from _command_missing(facts, command, "/etc/inittab")
        program = facts.find(command.split(" ")[0])
        if program is not None and program.type == "file":
            yield from _service_interpreter(facts, program, f"{kind.value} init")


def _command_missing(facts: Facts, command: str, where: str) -> Iterable[Finding]:
    program = command.split(" ")[0] if command else ""
    if not program.startswith("/"):
        return
    record = facts.find(program)
    if record is None or record.type != "file" or not record.mode & 0o111:
        yield _finding(
            SERVICE_COMMAND_MISSING,
            f"{where} runs {program}, which is not an executable file in the image: the agent will not start",
            "rebuild with nexlab build, or fix the path",
            [where, program],
        )


def _openrc_service(facts: Facts, kind: InitKind | None) -> Iterable[Finding]:
    service = facts.find(AGENT_SERVICE)
    if service is None or service.type != "file":
        runner = "OpenRC" if kind in (InitKind.OPENRC, None) else f"{kind.value} init (no inittab entry, no OpenRC)"
        yield _finding(
            SERVICE_MISSING,
            f"no {AGENT_SERVICE}: {runner} will not start the agent",
            "install the agent's service for the image's init (nexlab build does)",
            [AGENT_SERVICE],
        )
        return
    enabled = [
        link.path
        for link in facts.runlevel_links()
        if canonical_path(facts.records, link.path) == service.path and posixpath.basename(link.path) == "agent"
    ]
    yield from _service_interpreter(facts, service, "OpenRC")
    if not enabled:
        yield _finding(
            SERVICE_NOT_ENABLED,
            "the agent service is in no runlevel: it will not start at boot",
            "rc-update add agent boot (or ln -s /etc/init.d/agent /etc/runlevels/boot/agent)",
            [AGENT_SERVICE],
        )


def _service_interpreter(facts: Facts, service: FileRecord, runner: str) -> Iterable[Finding]:
    """A service script whose ``#!`` interpreter is absent (say OpenRC's) never runs."""
    first_line = (facts.text(service.path) or "").partition("\n")[0]
    if not first_line.startswith("#!"):
        return
    interpreter = first_line[2:].strip().split(" ")[0]
    found = facts.find(interpreter) if interpreter.startswith("/") else None
    if found is None or found.type != "file":
        yield _finding(
            SERVICE_INTERPRETER_MISSING,
            f"{service.path} runs with {interpreter}, which is not in the image: the agent will not start",
            "rebuild with nexlab build (it installs the service for the base's init, --init auto)"
            if runner != "OpenRC" or service.path != AGENT_SERVICE
            else "rebuild with --init auto (the base's own init), or with --network bridge so the setup "
            "can install OpenRC",
            [service.path, interpreter],
        )


def nex_user(facts: Facts) -> Iterable[Finding]:
    entry = facts.passwd("nex")
    if entry is None or len(entry) < 4:
        yield _finding(
            NEX_USER,
            "there is no nex user in /etc/passwd",
            "add it: useradd -u 1000 -U -d /home/nex nex",
            ["/etc/passwd"],
        )
    elif (entry[2], entry[3]) != (str(NEX_UID), str(NEX_GID)):
        yield _finding(
            NEX_USER,
            f"user nex is {entry[2]}:{entry[3]}, the agent expects {NEX_UID}:{NEX_GID}",
            "usermod -u 1000 nex && groupmod -g 1000 nex",
            ["/etc/passwd"],
        )


def nex_home(facts: Facts) -> Iterable[Finding]:
    home = facts.find("/home/nex")
    if home is None or home.type != "dir":
        yield _finding(
            NEX_HOME,
            "/home/nex does not exist: the agent's working directory and logs have nowhere to go",
            "mkdir /home/nex && chown 1000:1000 /home/nex",
            ["/home/nex"],
        )
    elif home.uid != NEX_UID:
        yield _finding(
            NEX_HOME,
            f"/home/nex is owned by {home.uid}:{home.gid}, not nex",
            "chown 1000:1000 /home/nex",
            [home.path],
        )


def tmp_mode(facts: Facts) -> Iterable[Finding]:
    tmp = facts.records.get("/tmp")
    if tmp is None or tmp.type != "dir" or tmp.mode != 0o1777:
        what = "missing" if tmp is None else f"a {tmp.type}" if tmp.type != "dir" else f"mode {tmp.mode:04o}"
        yield _finding(
            TMP_MODE,
            f"/tmp is {what}, not a 1777 directory: workloads cannot write there as nex",
            "mkdir -p /tmp && chmod 1777 /tmp",
            ["/tmp"],
        )


def serial_getty(facts: Facts) -> Iterable[Finding]:
    openrc = any(
        posixpath.basename(link.path) == "agetty.ttyS0" and facts.find(link.path) is not None
        for link in facts.runlevel_links()
    )
    inittab = any(
        "ttyS0" in line and "respawn" in line and not line.lstrip().startswith("#")
        for line in (facts.text("/etc/inittab") or "").splitlines()
    )
    systemd = any(
        facts.find(f"/etc/systemd/system/{wants}serial-getty@ttyS0.service") is not None
        for wants in ("getty.target.wants/", "")
    )
    if not (openrc or inittab or systemd):
        yield _finding(
            NO_SERIAL_GETTY,
            "no getty on ttyS0: the Firecracker serial console gives no login for debugging",
            "add 'T0:2345:respawn:/sbin/getty -L 115200 ttyS0 vt100' to /etc/inittab or enable agetty.ttyS0",
            ["/etc/inittab"],
        )


def root_password(facts: Facts) -> Iterable[Finding]:
    shadow = _colon_entry(facts.text("/etc/shadow"), "root")
    passwd = facts.passwd("root")
    where, hashed = "/etc/shadow", shadow[1] if shadow and len(shadow) > 1 else None
    if hashed is None or (passwd and len(passwd) > 1 and passwd[1] not in ("x", "*", "!")):
        # No shadow entry: the hash (or nothing) is in /etc/passwd itself.
        where, hashed = "/etc/passwd", passwd[1] if passwd and len(passwd) > 1 else None
    if hashed is None:
        return
    if hashed == "":
        yield _finding(
            ROOT_PASSWORD_EMPTY,
            f"root has an empty password in {where}: anyone on the console is root",
            "lock it: usermod -p '*' root",
            [where],
        )
        return
    match, _checked = well_known_password(hashed)
    if match is not None:
        yield _finding(
            ROOT_PASSWORD_KNOWN,
            f"root's password is the well-known {match!r}",
            "lock it: usermod -p '*' root",
            [where],
        )


def setuid(facts: Facts) -> Iterable[Finding]:
    for bit, rule in ((0o4000, SETUID), (0o2000, SETGID)):
        name = rule.code
        paths = [r.path for r in facts.with_mode(("file",), bit)]
        if paths:
            yield _finding(
                rule,
                f"{len(paths)} {name} file(s): each is a way to gain privileges if it has a bug",
                f"remove the {name} bit where the workload does not need it (chmod {'u' if bit == 0o4000 else 'g'}-s)",
                paths,
            )


def world_writable(facts: Facts) -> Iterable[Finding]:
    paths = [
        r.path for r in facts.with_mode(("file", "dir", "fifo"), 0o002) if not (r.type == "dir" and r.mode & 0o1000)
    ]
    if paths:
        yield _finding(
            WORLD_WRITABLE,
            f"{len(paths)} world-writable path(s) without the sticky bit",
            "chmod o-w (or +t for shared directories)",
            paths,
        )


def _boot_files(facts: Facts) -> set[str]:
    """Canonical paths root runs (or reads as code) at boot."""
    wanted = [AGENT, AGENT_SERVICE, "/etc/inittab", "/etc/rc.local", "/sbin/init"]
    wanted += [link.path for link in facts.runlevel_links()]
    wanted += [p for p, _ in facts.under("/etc/local.d/") if p.count("/") == 3]
    found = set()
    for path in wanted:
        real = canonical_path(facts.records, path)
        if real is not None and real in facts.records:
            found.add(real)
    return found


def _nex_can_write(record: FileRecord) -> bool:
    if record.type == "symlink":
        return False  # a link's own mode means nothing; its directory is checked
    if record.uid == NEX_UID:
        return True  # the owner can chmod it whatever the mode says
    if record.gid == NEX_GID and record.mode & 0o020:
        return True
    # In a sticky directory nex cannot replace entries it does not own.
    return bool(record.mode & 0o002) and not (record.type == "dir" and record.mode & 0o1000)


def boot_writable(facts: Facts) -> Iterable[Finding]:
    files = _boot_files(facts)
    checked = set(files)
    for path in files:
        parent = posixpath.dirname(path)
        while True:
            checked.add(parent)
            if parent == "/":
                break
            parent = posixpath.dirname(parent)
    paths = [p for p in checked if p in facts.records and _nex_can_write(facts.records[p])]
    if paths:
        yield _finding(
            BOOT_WRITABLE,
            f"{len(paths)} file(s) or directories that root runs at boot are writable by nex: "
            "a workload can become root at the next boot",
            "chown root:root and chmod go-w them",
            paths,
        )


def small_inodes(facts: Facts) -> Iterable[Finding]:
    if facts.inode_size < 256:
        yield _finding(
            SMALL_INODES,
            f"{facts.inode_size}-byte inodes cannot store dates after 2038-01-19 (nor nanoseconds, crtime)",
            "mkfs.ext4 -I 256 (the default for ext4)",
        )


def fsck_errors(facts: Facts) -> Iterable[Finding]:
    result = facts.fsck
    if result is None:
        return
    if result.clean is False:
        head = "; ".join(result.errors[:3]) or "see e2fsck -fn"
        yield _finding(
            FSCK_ERRORS,
            f"e2fsck -fn found errors{' (then aborted)' if 'aborted' in result.note else ''}: {head}",
            "rebuild the image (or run e2fsck -fy on a copy)",
        )
    elif not result.finished:
        # A check that never ends is itself a sign of a corrupt image (e2fsck restarting in a loop).
        yield _finding(
            FSCK_UNFINISHED,
            result.note or "e2fsck did not finish",
            "run e2fsck -fn IMAGE by hand to see where it loops, or give it more time (--fsck-timeout)",
        )
    elif result.clean is None:
        yield _finding(FSCK_SKIPPED, result.note or "e2fsck did not run", "apt-get install e2fsprogs")


def journal_recovery(facts: Facts) -> Iterable[Finding]:
    if facts.needs_recovery:
        yield _finding(
            NEEDS_RECOVERY,
            "the journal needs recovery: the image was not cleanly unmounted, recent writes may be missing here",
            "unmount cleanly before shipping (or e2fsck -fy on a copy)",
        )


def package_files(facts: Facts) -> Iterable[Finding]:
    from nexlab.audit.missing import missing_files

    missing = missing_files(facts.read, facts.records)
    if missing:
        names = sorted({package for package, _path in missing})
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        yield _finding(
            PACKAGE_FILES_MISSING,
            f"{len(missing)} files the package databases list are missing ({shown})",
            PACKAGE_FILES_MISSING.fix,
            [path for _package, path in missing],
        )


def foreign_binaries(facts: Facts) -> Iterable[Finding]:
    """Binaries built for another machine than the image's: the agent, the boot path, the rest."""
    arch = facts.architecture
    if arch is None or arch.main is None:
        return
    main = arch.main
    foreign = arch.foreign()
    if AGENT in foreign:
        yield _finding(
            AGENT_FOREIGN_ARCH,
            f"{AGENT} is an {foreign[AGENT]} ELF in an {main} image: it cannot run there",
            f"build the agent for {main} (GOARCH={main}), or build the image with --arch {foreign[AGENT]}",
            [AGENT],
        )
    boot = sorted(p for p in foreign if p in BOOT_PATH)
    if boot:
        kinds = ", ".join(sorted({foreign[p] for p in boot}))
        yield _finding(
            BOOT_FOREIGN_ARCH,
            f"{len(boot)} boot-path binaries are {kinds} in an {main} image"
            + (" (the image mixes architectures)" if arch.mixed else "")
            + ": the kernel cannot run them",
            "rebuild from a base of one architecture (nexlab base ... --arch)",
            boot,
        )
    rest = sorted(p for p in foreign if p not in BOOT_PATH and p != AGENT)
    if rest:
        kinds = ", ".join(sorted({foreign[p] for p in rest}))
        yield _finding(
            FOREIGN_BINARY,
            f"{len(rest)} executable(s) are {kinds} ELF in an {main} image: they fail with 'Exec format error'",
            "remove them or replace them with the image's architecture",
            rest,
        )


def _rule(code: str, severity: Severity, check: Check, summary: str, fix: str) -> Rule:
    return Rule(code, severity, summary, fix, check)


# Worst first within each check; the README's findings table is generated from this order.
AGENT_MISSING = _rule(
    "agent-missing",
    Severity.CRITICAL,
    agent,
    f"`{AGENT}` missing or not a regular file",
    "build with --agent PATH",
)
AGENT_NOT_EXECUTABLE = _rule(
    "agent-not-executable", Severity.CRITICAL, agent, "the agent has no x bit", f"chmod 0755 {AGENT}"
)
NO_INIT = _rule(
    "no-init",
    Severity.HIGH,
    agent_service,
    "no `/sbin/init` (nor `/usr/sbin/init`)",
    "build from a base with OpenRC, systemd or busybox init",
)
SERVICE_MISSING = _rule(
    "service-missing",
    Severity.HIGH,
    agent_service,
    "no service for the image's init: `/etc/init.d/agent` (OpenRC, or busybox/sysvinit without an inittab "
    "agent entry), `agent.service` (systemd as PID 1)",
    "install the agent's service for the image's init (nexlab build does)",
)
SERVICE_NOT_ENABLED = _rule(
    "service-not-enabled",
    Severity.HIGH,
    agent_service,
    "OpenRC: no `/etc/runlevels/*/agent` link to it; systemd: no `*.wants/agent.service` link",
    "rc-update add agent boot, or systemctl enable agent",
)
SERVICE_INTERPRETER_MISSING = _rule(
    "service-interpreter-missing",
    Severity.HIGH,
    agent_service,
    "the service script's `#!` interpreter (e.g. `/sbin/openrc-run`) is not in the image",
    "rebuild with nexlab build (it installs the service for the base's init, --init auto)",
)
SERVICE_COMMAND_MISSING = _rule(
    "service-command-missing",
    Severity.HIGH,
    agent_service,
    "the unit's `ExecStart=` or the inittab entry's program is not an executable file",
    "rebuild with nexlab build, or fix the path",
)
NEX_USER = _rule(
    "nex-user",
    Severity.HIGH,
    nex_user,
    "no `nex` in `/etc/passwd`, or not 1000:1000",
    "useradd -u 1000 -U -d /home/nex nex",
)
NEX_HOME = _rule(
    "nex-home",
    Severity.MEDIUM,
    nex_home,
    "`/home/nex` missing or not owned by uid 1000",
    "mkdir /home/nex && chown 1000:1000 /home/nex",
)
TMP_MODE = _rule(
    "tmp-mode", Severity.HIGH, tmp_mode, "`/tmp` missing or not mode 1777", "mkdir -p /tmp && chmod 1777 /tmp"
)
NO_SERIAL_GETTY = _rule(
    "no-serial-getty",
    Severity.MEDIUM,
    serial_getty,
    "no OpenRC `agetty.ttyS0` in a runlevel, no active `ttyS0` respawn line in `/etc/inittab` and no systemd "
    "`serial-getty@ttyS0.service` of its own",
    "add 'T0:2345:respawn:/sbin/getty -L 115200 ttyS0 vt100' to /etc/inittab or enable agetty.ttyS0",
)
ROOT_PASSWORD_EMPTY = _rule(
    "root-password-empty",
    Severity.CRITICAL,
    root_password,
    "root's password field is empty",
    "lock it: usermod -p '*' root",
)
ROOT_PASSWORD_KNOWN = _rule(
    "root-password-known",
    Severity.CRITICAL,
    root_password,
    "root's hash matches a well-known password (root, toor, password, …), any crypt method libcrypt knows "
    "(yescrypt included)",
    "lock it: usermod -p '*' root",
)
SETUID = _rule("setuid", Severity.LOW, setuid, "files with the setuid bit (listed)", "chmod u-s where not needed")
SETGID = _rule("setgid", Severity.LOW, setuid, "files with the setgid bit (listed)", "chmod g-s where not needed")
WORLD_WRITABLE = _rule(
    "world-writable",
    Severity.MEDIUM,
    world_writable,
    "world-writable files, FIFOs or directories without the sticky bit",
    "chmod o-w (or +t for shared directories)",
)
BOOT_WRITABLE = _rule(
    "boot-writable",
    Severity.CRITICAL,
    boot_writable,
    "a file root runs at boot (runlevel services, inittab, rc.local, local.d, /sbin/init's target, the agent "
    "and its service) or any directory above it is writable by uid/gid 1000 or everyone",
    "chown root:root and chmod go-w them",
)
SMALL_INODES = _rule(
    "small-inodes",
    Severity.LOW,
    small_inodes,
    "128-byte inodes: no dates after 2038",
    "mkfs.ext4 -I 256 (the default for ext4)",
)
FSCK_ERRORS = _rule(
    "fsck-errors",
    Severity.HIGH,
    fsck_errors,
    "`e2fsck -fn` (read-only) found errors (exit status with bit 4; also when it then aborted, exit 12)",
    "rebuild the image (or run e2fsck -fy on a copy)",
)
FSCK_UNFINISHED = _rule(
    "fsck-unfinished",
    Severity.MEDIUM,
    fsck_errors,
    "`e2fsck -fn` did not finish within `--fsck-timeout` seconds (default 60; corrupt images can make it "
    "restart for ever)",
    "run e2fsck -fn IMAGE by hand to see where it loops, or give it more time (--fsck-timeout)",
)
FSCK_SKIPPED = _rule(
    "fsck-skipped",
    Severity.INFO,
    fsck_errors,
    "e2fsck missing or could not run (the note names the package)",
    "apt-get install e2fsprogs",
)
PACKAGE_FILES_MISSING = _rule(
    "package-files-missing",
    Severity.LOW,
    package_files,
    "files a dpkg/apk package lists are missing, and neither dpkg's `path-exclude` nor nexlab slim's "
    "record (`/etc/nexlab/slim.json`) leaves them out on purpose",
    "reinstall the package (apt-get install --reinstall, apk fix); remove files with nexlab build --slim",
)
NEEDS_RECOVERY = _rule(
    "needs-recovery",
    Severity.MEDIUM,
    journal_recovery,
    "the journal needs recovery",
    "unmount cleanly before shipping (or e2fsck -fy on a copy)",
)

AGENT_FOREIGN_ARCH = _rule(
    "agent-foreign-arch",
    Severity.HIGH,
    foreign_binaries,
    "the agent is an ELF for another machine than the image's (from its boot path's ELF headers, "
    "else its package database)",
    "build the agent for the image's architecture, or the image with --arch",
)
BOOT_FOREIGN_ARCH = _rule(
    "boot-foreign-arch",
    Severity.HIGH,
    foreign_binaries,
    "a binary on the boot path (init, OpenRC/systemd, sh, busybox, getty, the libc loader) is for another "
    "machine than the image's: the kernel cannot exec it",
    "rebuild from a base of one architecture",
)
FOREIGN_BINARY = _rule(
    "foreign-binary",
    Severity.LOW,
    foreign_binaries,
    "another executable is an ELF for another machine: it fails when run, but the boot and the agent do not "
    "need it (it may be a cross tool or data on purpose)",
    "remove it or rebuild it for the image's architecture",
)

#: Every rule, in the order the README's table lists them.
RULES: tuple[Rule, ...] = (
    AGENT_MISSING,
    AGENT_NOT_EXECUTABLE,
    AGENT_FOREIGN_ARCH,
    BOOT_FOREIGN_ARCH,
    FOREIGN_BINARY,
    NO_INIT,
    SERVICE_MISSING,
    SERVICE_NOT_ENABLED,
    SERVICE_INTERPRETER_MISSING,
    SERVICE_COMMAND_MISSING,
    NEX_USER,
    NEX_HOME,
    TMP_MODE,
    NO_SERIAL_GETTY,
    ROOT_PASSWORD_EMPTY,
    ROOT_PASSWORD_KNOWN,
    SETUID,
    SETGID,
    WORLD_WRITABLE,
    BOOT_WRITABLE,
    SMALL_INODES,
    FSCK_ERRORS,
    FSCK_UNFINISHED,
    FSCK_SKIPPED,
    NEEDS_RECOVERY,
    PACKAGE_FILES_MISSING,
)
BY_CODE: Mapping[str, Rule] = {rule.code: rule for rule in RULES}


def checks(rules: Iterable[Rule | Check]) -> list[Check]:
    """The distinct checks behind ``rules`` (records or check functions), in first-seen order."""
    found: list[Check] = []
    for item in rules:
        check = item.check if isinstance(item, Rule) else item
        if check not in found:
            found.append(check)
    return found


def evaluate(facts: Facts, rules: Iterable[Rule | Check] = RULES) -> list[Finding]:
    """Every finding of ``rules`` (records, or checks such as ``agent``), worst first, then by code.

    A check serving several rules runs once; when only some of its rules are asked for,
    only their findings are kept.
    """
    wanted = list(rules)
    codes = {r.code for r in wanted if isinstance(r, Rule)}
    whole = [r for r in wanted if not isinstance(r, Rule)]
    findings = [
        finding for check in checks(wanted) for finding in check(facts) if check in whole or finding.code in codes
    ]
    return sorted(findings, key=lambda f: (-f.severity.rank, f.code, f.paths))
