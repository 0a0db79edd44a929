"""Extended attributes: the in-inode area and the external EA block.

Both use the same entry format; only the header and the base of value offsets
differ. POSIX ACLs are converted from ext4's compact on-disk form to the
``getxattr(2)`` form so values compare equal to what the kernel returns.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from nexlab.errors import ImageFormatError

EA_MAGIC = 0xEA020000
#: The kernel's XATTR_SIZE_MAX: no value may be larger.
MAX_VALUE = 65536
MAX_ENTRIES = 4096

PREFIXES = {
    1: "user.",
    2: "system.posix_acl_access",
    3: "system.posix_acl_default",
    4: "trusted.",
    5: "lustre.",
    6: "security.",
    7: "system.",
    8: "system.richacl",
}
_ACL_NAMES = (2, 3)

_ENTRY = struct.Struct("<BBHIII")
_U32 = struct.Struct("<I")
_ACL_SHORT = struct.Struct("<HH")
_ACL_FULL = struct.Struct("<HHI")
_ACL_TAGS_WITH_ID = (0x02, 0x08)  # ACL_USER, ACL_GROUP

#: Reads the value of an ``ea_inode`` xattr: (inode number, size) -> bytes.
InodeValueReader = Callable[[int, int], bytes]


def parse_entries(
    area: memoryview,
    entries_start: int,
    value_base: int,
    warnings: list[str],
    where: str,
    read_inode_value: InodeValueReader | None = None,
) -> dict[str, bytes]:
    """Entries from ``entries_start`` in ``area``; value offsets are relative to ``value_base``."""
    result: dict[str, bytes] = {}
    pos = entries_start
    end = len(area)
    for _ in range(MAX_ENTRIES):
        if pos + 4 > end or _U32.unpack_from(area, pos)[0] == 0:
            return result
        if pos + _ENTRY.size > end:
            warnings.append(f"{where}: xattr entry runs past its area")
            return result
        name_len, index, value_offs, value_inum, value_size, _hash = _ENTRY.unpack_from(area, pos)
        name_end = pos + _ENTRY.size + name_len
        if name_end > end:
            warnings.append(f"{where}: xattr name runs past its area")
            return result
        suffix = bytes(area[pos + _ENTRY.size : name_end]).decode("utf-8", "surrogateescape")
        prefix = PREFIXES.get(index)
        pos = (name_end + 3) & ~3
        if prefix is None:
            warnings.append(f"{where}: xattr with unknown name index {index} skipped")
            continue
        name = prefix if index in _ACL_NAMES or index == 8 else prefix + suffix
        if value_size > MAX_VALUE:
            warnings.append(f"{where}: xattr {name} claims {value_size} bytes, over the {MAX_VALUE} limit")
            continue
        if value_inum:
            if read_inode_value is None:
                warnings.append(f"{where}: xattr {name} lives in inode {value_inum}, not read")
                continue
            try:
                value = read_inode_value(value_inum, value_size)
            except ImageFormatError as exc:
                warnings.append(f"{where}: xattr {name} value unreadable: {exc}")
                continue
        else:
            start = value_base + value_offs
            if start + value_size > end or start < 0:
                warnings.append(f"{where}: xattr {name} value runs past its area")
                continue
            value = bytes(area[start : start + value_size])
        if index in _ACL_NAMES:
            value = acl_to_xattr(value)
        result[name] = value
    warnings.append(f"{where}: more than {MAX_ENTRIES} xattrs, the rest skipped")
    return result


def in_inode(
    raw: memoryview, extra_end: int, warnings: list[str], where: str, read_inode_value: InodeValueReader | None = None
) -> dict[str, bytes]:
    """The xattrs stored after ``i_extra_isize`` in an inode record ``raw``."""
    if extra_end + 4 > len(raw) or _U32.unpack_from(raw, extra_end)[0] != EA_MAGIC:
        return {}
    area = raw[extra_end + 4 :]
    return parse_entries(area, 0, 0, warnings, where, read_inode_value)


def in_block(
    block: memoryview, warnings: list[str], where: str, read_inode_value: InodeValueReader | None = None
) -> dict[str, bytes]:
    """The xattrs of an external EA block."""
    if len(block) < 32 or _U32.unpack_from(block, 0)[0] != EA_MAGIC:
        warnings.append(f"{where}: external xattr block has a bad magic number")
        return {}
    if _U32.unpack_from(block, 8)[0] != 1:
        warnings.append(f"{where}: external xattr block spans more than one block")
        return {}
    return parse_entries(block, 32, 0, warnings, where, read_inode_value)


def acl_to_xattr(value: bytes) -> bytes:
    """ext4's on-disk ACL (version 1, short entries) to the VFS xattr form (version 2)."""
    if len(value) < 4 or _U32.unpack_from(value, 0)[0] != 1:
        return value
    out = bytearray(_U32.pack(2))
    pos = 4
    while pos + 4 <= len(value):
        tag, perm = _ACL_SHORT.unpack_from(value, pos)
        if tag in _ACL_TAGS_WITH_ID:
            if pos + 8 > len(value):
                return value
            _tag, _perm, ident = _ACL_FULL.unpack_from(value, pos)
            pos += 8
        else:
            ident = 0xFFFFFFFF
            pos += 4
        out += _ACL_FULL.pack(tag, perm, ident)
    return bytes(out)
