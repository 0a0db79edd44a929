import pytest

from nexlab.errors import InputError
from nexlab.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (157286400, 157286400),
        ("157286400", 157286400),
        ("150MiB", 150 * 2**20),
        ("150M", 150 * 2**20),
        ("150MB", 150 * 10**6),
        ("1G", 2**30),
        ("1.5GiB", 3 * 2**29),
        (" 64 mib ", 64 * 2**20),
    ],
)
def test_sizes_users_write(text: int | str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "12 parsecs", "-5M", 0, -1, "0", True])
def test_bad_sizes_are_input_errors(text: object) -> None:
    with pytest.raises(InputError):
        parse_size(text)  # type: ignore[arg-type]


def test_format_size() -> None:
    assert format_size(157286400) == "150.0 MiB"
    assert format_size(512) == "512 B"
    assert format_size(3 * 2**30) == "3.0 GiB"
