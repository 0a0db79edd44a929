"""Read ext2/3/4 images without mounting them: ``with open_image(path) as fs: ...``."""

from nexlab.errors import ImageFormatError
from nexlab.image.model import Entry, FilesystemInfo
from nexlab.image.reader import Ext4Image, open_image

__all__ = ["Entry", "Ext4Image", "FilesystemInfo", "ImageFormatError", "open_image"]
