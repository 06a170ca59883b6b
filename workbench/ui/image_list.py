"""The left pane: opened images, with a combo box to change an image's declared format."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QWidget,
)

from ..policy.formats import FormatNames, format_from_extension
from .qtmodels.image_list_model import (
    DECLARED,
    ENTRY_ROLE,
    FORMAT,
    FROM_EXTENSION,
    NAME,
    SIZE,
    VERDICT,
    Entry,
    ImageListModel,
    file_name,
)
from .widgets import fit_columns, tree_view

Index = QModelIndex | QPersistentModelIndex
NAME_CHARS = 20  # the Image column never gets narrower than this many characters


def declared_choices(path: str) -> list[tuple[str, str]]:
    """``(label, value)`` pairs for a declared-format box; value ``""`` means "from the extension"."""
    guessed = format_from_extension(file_name(path))  # a URL's query is no extension
    first = f"from the extension ({guessed})" if guessed else "none: probe (not recommended)"
    return [(first, FROM_EXTENSION), *((name, name) for name in FormatNames())]  # the parsers load on first use


def fill_declared_box(box: QComboBox, entry: Entry) -> None:
    box.blockSignals(True)
    box.clear()
    for label, value in declared_choices(entry.path):
        box.addItem(label, value)
    box.setCurrentIndex(max(0, box.findData(entry.declared or FROM_EXTENSION)))
    box.blockSignals(False)


class DeclaredDelegate(QStyledItemDelegate):
    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:  # noqa: N802
        box = QComboBox(parent)
        box.setAccessibleName("Declared format")
        return box

    def setEditorData(self, editor: QWidget, index: Index) -> None:  # noqa: N802
        entry = index.data(ENTRY_ROLE)
        if isinstance(editor, QComboBox) and entry is not None:
            fill_declared_box(editor, entry)

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: Index) -> None:  # noqa: N802
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentData(), Qt.ItemDataRole.EditRole)


def image_list_view(model: ImageListModel) -> QTreeView:
    view = tree_view("Opened images", model)
    view.setRootIsDecorated(False)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setEditTriggers(
        QAbstractItemView.EditTrigger.DoubleClicked
        | QAbstractItemView.EditTrigger.EditKeyPressed
        | QAbstractItemView.EditTrigger.SelectedClicked
    )
    view.setItemDelegateForColumn(DECLARED, DeclaredDelegate(view))
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    header = view.header()
    header.setStretchLastSection(False)
    width = view.fontMetrics().horizontalAdvance("0")
    for column, chars in ((NAME, 22), (VERDICT, 7), (FORMAT, 6), (DECLARED, 15), (SIZE, 8)):
        header.resizeSection(column, chars * width + 16)
    header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
    timer = QTimer(view)  # the columns follow their content, at most every 100 ms
    timer.setSingleShot(True)
    timer.setInterval(100)
    timer.timeout.connect(lambda: fit_list_columns(view))
    for signal in (model.rowsInserted, model.dataChanged, model.modelReset):
        signal.connect(timer.start)
    fit_list_columns(view)
    return view


def fit_list_columns(view: QTreeView) -> None:
    """Size the short columns to their text; the Image column stretches, and the list keeps it at least
    :data:`NAME_CHARS` characters wide (a splitter cannot squeeze it below that)."""
    fit_columns(view, widest=24 * view.fontMetrics().horizontalAdvance("0"))
    header = view.header()
    others = sum(header.sectionSize(c) for c in range(header.count()) if c != NAME and not header.isSectionHidden(c))
    name = NAME_CHARS * view.fontMetrics().horizontalAdvance("0") + view.iconSize().width() + 24
    view.setMinimumWidth(others + name + 2 * view.frameWidth() + view.verticalScrollBar().sizeHint().width())
