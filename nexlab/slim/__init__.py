"""Slimming: remove what the audit calls reclaimable (docs, man pages, locales, caches, logs).

``slim(tree, "docs,man")`` works on a populated tree (a mounted image, a staging
directory); ``nexlab build --slim`` runs it in both build paths. The categories
are defined once, in ``nexlab.slim.categories``, and read by the audit's budget
and the diff's causes too.
"""

from nexlab.slim.categories import CATEGORIES, DEFAULT, Category, category_of, parse_categories
from nexlab.slim.result import Saving, SlimResult
from nexlab.slim.slim import DPKG_FILTERS, RECORD, slim

__all__ = [
    "CATEGORIES",
    "DEFAULT",
    "DPKG_FILTERS",
    "RECORD",
    "Category",
    "Saving",
    "SlimResult",
    "category_of",
    "parse_categories",
    "slim",
]
