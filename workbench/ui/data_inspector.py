"""The data inspector: the bytes at the hex cursor read as every common type (ImHex's, Wireshark's habit).

:func:`decode` is pure (bytes in, rows out) so every type is tested without a window; :class:`DataInspector`
shows its rows beside the bytes pane. Values are numbers and dates computed here, never image text, except
the ASCII row, which shows printable characters only.
"""

from __future__ import annotations

import datetime
import struct

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from ..engine.fields import uuid_text  # the uuid module would bring platform

READ = 16  # bytes the inspector needs at most (a GUID)
_INTEGERS: tuple[tuple[str, str, int], ...] = (
    ("u8", "B", 1),
    ("i8", "b", 1),
    ("u16", "H", 2),
    ("i16", "h", 2),
    ("u32", "I", 4),
    ("i32", "i", 4),
)
_INTEGERS += (("u64", "Q", 8), ("i64", "q", 8))
_FLOATS = (("float32", "f", 4), ("float64", "d", 8))
_EPOCH_1601 = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)


def _time(seconds: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "out of range"


def _filetime(value: int) -> str:
    try:
        moment = _EPOCH_1601 + datetime.timedelta(microseconds=value // 10)
    except OverflowError:
        return "out of range"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def decode(data: bytes) -> list[tuple[str, str]]:
    """``(type, value)`` rows for the bytes at the cursor; a type needing more bytes than given is left out."""
    rows: list[tuple[str, str]] = []
    for name, code, size in _INTEGERS + _FLOATS:
        if len(data) < size:
            continue
        for order, prefix in (("LE", "<"), ("BE", ">")) if size > 1 else (("", "<"),):
            value = struct.unpack(prefix + code, data[:size])[0]
            shown = f"{value:g}" if code in "fd" else f"{value} (0x{value & ((1 << 8 * size) - 1):0{2 * size}x})"
            rows.append((f"{name} {order}".strip(), shown))
    if len(data) >= 4:
        rows.append(("time_t u32 LE", _time(struct.unpack("<I", data[:4])[0])))
    if len(data) >= 8:
        rows.append(("time_t i64 LE", _time(struct.unpack("<q", data[:8])[0])))
        rows.append(("FILETIME", _filetime(struct.unpack("<Q", data[:8])[0])))
    if len(data) >= 16:
        rows.append(("GUID", uuid_text(data[:16], mixed_endian=True).upper()))
        rows.append(("UUID BE", uuid_text(data[:16])))
    if data:
        rows.append(("ASCII", "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data[:READ])))
    return rows


class DataInspector(QTreeWidget):
    """Type and value of the bytes at the cursor, updated as it moves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Data inspector")
        self.setHeaderLabels(["Type", "Value at the cursor"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.setColumnWidth(0, self.fontMetrics().horizontalAdvance("0") * 14)
        self.setToolTip(
            "time_t: seconds since 1970; FILETIME: 100 ns since 1601; GUID: Microsoft's mixed-endian layout"
        )

    def show_bytes(self, offset: int | None, data: bytes) -> None:
        self.clear()
        if offset is None:
            return
        for name, value in decode(data):
            item = QTreeWidgetItem(self, [name, value])
            item.setToolTip(1, value)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    def values(self) -> dict[str, str]:
        items = (self.topLevelItem(n) for n in range(self.topLevelItemCount()))
        return {item.text(0): item.text(1) for item in items if item is not None}
