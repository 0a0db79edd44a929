"""Bad inputs end before any VM starts, with exit status 2 and a one-line reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nexlab.boot.kernel import KernelFormat, choose_kernel
from nexlab.errors import ImageFormatError, InputError
from nexlab.run import run
from tests.conftest import nexlab_cli, require, scratch


@pytest.fixture(scope="module")
def small_ext4(module_tmp: Path) -> Path:
    image = scratch(module_tmp, "inputs") / "small.ext4"
    run(["mkfs.ext4", "-q", "-F", str(image), "4M"])
    return image


def test_missing_image(tmp_path: Path) -> None:
    done = nexlab_cli("boot", str(tmp_path / "nope.ext4"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert done.stderr.count("\n") == 1


def test_not_ext4(tmp_path: Path) -> None:
    import gzip
    import lzma

    junk = tmp_path / "rootfs.ext4.gz"
    junk.write_bytes(b"\x1f\x8b" + bytes(4096))
    text = tmp_path / "text.gz"
    text.write_bytes(gzip.compress(b"not a filesystem\n" * 1000))
    xz = tmp_path / "rootfs.ext4.xz"
    xz.write_bytes(lzma.compress(bytes(8192)))
    plain = tmp_path / "rootfs.ext4"
    plain.write_bytes(bytes(8192))
    for path, message in (
        (junk, "cannot decompress (gzip)"),
        (text, "decompresses to something that is not an ext2/3/4 image"),
        (xz, "decompress it first (xz -d)"),
        (plain, "not an ext2/3/4 image"),
    ):
        done = nexlab_cli("boot", str(path))
        assert done.returncode == 2
        assert message in done.stderr
        assert done.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (junk, text, xz, plain))


def test_missing_kernel(small_ext4: Path, tmp_path: Path) -> None:
    done = nexlab_cli("boot", str(small_ext4), "--kernel", str(tmp_path / "vmlinux"))
    assert done.returncode == 2
    assert "kernel" in done.stderr and "does not exist" in done.stderr


def test_not_a_kernel(small_ext4: Path) -> None:
    done = nexlab_cli("boot", str(small_ext4), "--kernel", "/etc/hostname")
    assert done.returncode == 2
    assert "neither a bzImage nor an ELF vmlinux" in done.stderr


def test_elf_without_pvh_note_is_refused(small_ext4: Path) -> None:
    # Any ordinary ELF program lacks the PVH note, like a vmlinux built without CONFIG_PVH.
    elf = Path(shutil.which("true") or "/bin/true")
    with pytest.raises(InputError, match="PVH"):
        choose_kernel(elf, None)


def test_bad_expect_regex(small_ext4: Path) -> None:
    from nexlab.boot import boot

    require(Path("/boot").is_dir() and any(Path("/boot").glob("vmlinuz-*")), "a kernel in /boot")
    with pytest.raises(InputError, match="regular expression"):
        boot(small_ext4, expect="([unclosed")


def test_image_check_rejects_a_non_ext4_file(tmp_path: Path) -> None:
    from nexlab.boot.boot import check_image

    other = tmp_path / "zeros.img"
    other.write_bytes(bytes(8192))
    with pytest.raises(ImageFormatError):
        check_image(other)


def test_default_kernel_is_a_bzimage_with_its_initrd() -> None:
    from nexlab.boot.kernel import default_kernel
    from nexlab.errors import ToolMissingError

    try:
        kernel = default_kernel()
    except ToolMissingError:
        kernel = None
    require(kernel is not None, "a Debian cloud kernel in /boot (apt-get install linux-image-cloud-amd64)")
    assert kernel is not None
    assert kernel.format is KernelFormat.BZIMAGE
    assert kernel.initrd is not None and kernel.initrd.is_file()
    assert kernel.path.name.removeprefix("vmlinuz-") == kernel.initrd.name.removeprefix("initrd.img-")
