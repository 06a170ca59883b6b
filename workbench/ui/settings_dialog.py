"""Settings: size limit, allowed formats, required sandbox layers, allowed folders, theme."""

from __future__ import annotations

import copy

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..engine.child.layers import ORDER as LAYERS
from ..engine.formats import KNOWN_NAMES
from ..policy.policy import layer_status, parse_size, possible_layers, unmeetable
from ..policy.settings import SIZE_LIMITS, THEMES, Settings
from .widgets import plain_label


def exact_size(value: int) -> str:
    """``4T`` for 4 TiB: the largest suffix that divides the value, so nothing is rounded."""
    for suffix, shift in (("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if value and value % (1 << shift) == 0:
            return f"{value >> shift}{suffix}"
    return str(value)


LAYERS_HELP = (
    "Ticked layers must be on for an image to be accepted; a requirement written a|b is met when either "
    "layer is on. Layers this machine cannot turn on are greyed out: requiring one would fail every image."
)
NAME_ROLE = Qt.ItemDataRole.UserRole


def _checklist(name: str, items: list[str], checked: set[str], notes: dict[str, str] | None = None) -> QListWidget:
    """Checkable items; ``notes`` adds a reason after an item's name, and a noted item cannot be ticked."""
    box = QListWidget()
    box.setAccessibleName(name)
    notes = notes or {}
    for text in items:
        item = QListWidgetItem(f"{text} — {notes[text]}" if text in notes else text)
        item.setData(NAME_ROLE, text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        if text in notes and text not in checked:  # a requirement already set stays, to be unticked
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
        item.setCheckState(Qt.CheckState.Checked if text in checked else Qt.CheckState.Unchecked)
        box.addItem(item)
    box.setMaximumHeight(140)
    return box


def _checked(box: QListWidget) -> list[str]:
    items = [box.item(i) for i in range(box.count())]
    return [item.data(NAME_ROLE) for item in items if item.checkState() == Qt.CheckState.Checked]


class SettingsDialog(QDialog):
    """Edits a copy of the settings; :meth:`result_settings` returns it when the dialog was accepted."""

    def __init__(
        self, settings: Settings, parent: QWidget | None = None, observed: dict[str, str] | None = None
    ) -> None:
        """``observed``: the sandbox layers an engine child reported here (``report["sandbox"]``), if any."""
        super().__init__(parent)
        self.observed = observed
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.settings = copy.deepcopy(settings)
        self.max_size = QLineEdit(exact_size(settings.max_virtual_size))
        self.max_size.setAccessibleName("Maximum logical size")
        self.max_size.setToolTip("A size with K, M, G, T or P (powers of 1024), e.g. 4T or 500G")
        self.max_size.textChanged.connect(self._validate)
        self.size_error = plain_label()
        self.budgets = {  # setting -> (its box, what it bounds)
            "guest_budget": (QLineEdit(exact_size(settings.guest_budget)), "Guest view budget"),
            "deep_budget": (QLineEdit(exact_size(settings.deep_budget)), "Deep check budget"),
        }
        for name, (box, label) in self.budgets.items():
            box.setAccessibleName(label)
            limit = exact_size(SIZE_LIMITS[name])
            box.setToolTip(f"Bytes the sandboxed child reads at most, with K, M or G (up to {limit})")
            box.textChanged.connect(self._validate)
        self.all_formats = QCheckBox("Allow every format")
        self.all_formats.setChecked(settings.allowed_formats is None)
        self.formats = _checklist("Allowed formats", list(KNOWN_NAMES), set(settings.allowed_formats or KNOWN_NAMES))
        self.all_formats.toggled.connect(lambda on: self.formats.setEnabled(not on))
        self.formats.setEnabled(settings.allowed_formats is not None)
        known_layers = sorted(set(LAYERS) | set(settings.required_layers))
        possible = possible_layers(observed)
        notes = {name: "cannot be on here" for name in unmeetable(known_layers, possible)}
        notes.update({name: why for name in known_layers if "|" not in name and (why := layer_status(name, observed))})
        self.layers = _checklist("Required sandbox layers", known_layers, set(settings.required_layers), notes)
        self.layers.itemChanged.connect(self._validate)
        self.layers_help = plain_label(LAYERS_HELP, wrap=True)
        self.layers_error = plain_label(wrap=True)
        self.layers_error.setAccessibleName("Refused sandbox requirements")
        self.roots = QListWidget()
        self.roots.setAccessibleName("Allowed folders for backing chains")
        self.roots.addItems(settings.allowed_roots)
        add_root, remove_root = QPushButton("Add folder…"), QPushButton("Remove")
        add_root.clicked.connect(self._add_root)
        remove_root.clicked.connect(lambda: self.roots.takeItem(self.roots.currentRow()))
        self.theme = QComboBox()
        self.theme.setAccessibleName("Theme")
        self.theme.addItems(list(THEMES))
        self.theme.setCurrentText(settings.theme)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        roots_buttons = QHBoxLayout()
        roots_buttons.addWidget(add_root)
        roots_buttons.addWidget(remove_root)
        roots_buttons.addStretch(1)
        roots = QVBoxLayout()
        roots.addWidget(self.roots)
        roots.addLayout(roots_buttons)
        form = QFormLayout()
        form.addRow("Maximum logical size", self.max_size)
        form.addRow("", self.size_error)
        for box, label in self.budgets.values():
            form.addRow(label, box)
        form.addRow("Formats", self.all_formats)
        form.addRow("", self.formats)
        form.addRow("Required sandbox layers", self.layers)
        form.addRow("", self.layers_help)
        form.addRow("", self.layers_error)
        form.addRow("Allowed folders\n(backing chains)", roots)
        form.addRow("Theme", self.theme)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._validate()

    def _validate(self) -> bool:
        """Refuse a bad size and requirements this machine cannot meet; each message goes once its cause does."""
        try:
            parse_size(self.max_size.text())
            for name, (box, label) in self.budgets.items():
                if not 0 < parse_size(box.text()) <= SIZE_LIMITS[name]:
                    raise ValueError(f"{label}: between 1 byte and {exact_size(SIZE_LIMITS[name])}")
            self.size_error.setText("")
        except ValueError as exc:
            self.size_error.setText(str(exc))
        refused = unmeetable(_checked(self.layers), possible_layers(self.observed))
        self.layers_error.setText(
            f"Refused: {', '.join(refused)} cannot be on here, so every image would fail. Untick to continue."
            if refused
            else ""
        )
        ok = not self.size_error.text() and not refused
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
        return ok

    def _add_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Allowed folder for backing chains")
        if folder:
            self.roots.addItem(folder)

    def result_settings(self) -> Settings:
        """The settings as edited in the dialog."""
        out = self.settings
        out.max_virtual_size = parse_size(self.max_size.text())
        out.allowed_formats = None if self.all_formats.isChecked() else _checked(self.formats)
        out.required_layers = _checked(self.layers)
        out.allowed_roots = [self.roots.item(i).text() for i in range(self.roots.count())]
        out.theme = self.theme.currentText()
        for name, (box, _) in self.budgets.items():
            setattr(out, name, parse_size(box.text()))
        return out
