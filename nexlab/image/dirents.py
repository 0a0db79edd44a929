"""Directory entries (``ext4_dir_entry_2``), read linearly.

Hashed (htree) directories need no special case: their index blocks are valid
dirent blocks whose one entry has inode 0, and the root's index hides inside
the ``..`` entry's record.
"""

from __future__ import annotations

import struct

#: inode, rec_len, name_len: the same three fields in both layouts (with the filetype feature
#: the name length is one byte and the file type the next, unread).
_DIRENT = struct.Struct("<IHB")
_DIRENT_OLD = struct.Struct("<IHH")
_DOTS = (b".", b"..")

#: (name bytes, inode number)
Child = tuple[bytes, int]


def parse_block(
    block: memoryview, inodes_count: int, filetype: bool, out: list[Child], warnings: list[str], where: str
) -> None:
    """Append the live entries of one directory block (or inline area) to ``out``."""
    size = len(block)
    # One copy of the block, so each name is one slice of bytes (not a view, then bytes).
    data = block.tobytes()
    unpack = (_DIRENT if filetype else _DIRENT_OLD).unpack_from
    append = out.append
    pos = 0
    while pos + 8 <= size:
        inode, rec_len, name_len = unpack(data, pos)
        if size == 65536 and rec_len in (0, 65535):
            rec_len = 65536
        if rec_len < 8 or rec_len & 3 or pos + rec_len > size or 8 + name_len > rec_len:
            warnings.append(f"{where}: corrupt directory entry at offset {pos}, rest of the block skipped")
            return
        if inode and name_len:
            name = data[pos + 8 : pos + 8 + name_len]
            if name not in _DOTS:
                if inode > inodes_count:
                    warnings.append(f"{where}: entry {name!r} points at inode {inode}, beyond the inode count")
                elif b"/" in name or b"\0" in name:
                    warnings.append(f"{where}: entry name {name!r} contains '/' or NUL, skipped")
                else:
                    append((name, inode))
        pos += rec_len
