"""Can this host run another CPU's binaries (binfmt_misc + qemu-user-static)? Asked before an arm64
base or build on an amd64 host, so the answer is one line and a hint rather than a container's
``exec format error``."""

from __future__ import annotations

from pathlib import Path

from nexlab.errors import ArchitectureError

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

#: Docker's architecture name -> the binfmt_misc entry qemu-user-static registers for it.
_ENTRIES = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}

HINT = "run: make binfmt (installs qemu-user-static and registers it with binfmt_misc)"


def probe(arch: str, directory: Path = BINFMT_DIR) -> str | None:
    """None when ``arch``'s binaries run here through an emulator; else why not (one line).

    The F flag matters: without it the interpreter is looked up inside each container, where it is not.
    """
    entry = _ENTRIES.get(arch)
    if entry is None:
        return f"no emulator is known for {arch}"
    path = directory / entry
    try:
        text = path.read_text()
    except FileNotFoundError:
        return f"{path} is missing: no emulator is registered for {arch} binaries"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    lines = text.splitlines()
    if not lines or lines[0].strip() != "enabled":
        return f"{path} is disabled"
    flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
    if "F" not in flags:
        return f"{path} lacks the F flag, so containers cannot find its interpreter"
    return None


def require(arch: str, directory: Path = BINFMT_DIR) -> None:
    """Raise ArchitectureError (one line + hint) when ``arch``'s binaries cannot run here."""
    reason = probe(arch, directory)
    if reason is not None:
        raise ArchitectureError(f"cannot run {arch} binaries on this host: {reason}", hint=HINT)
