"""The line above the report: verdict badge, the image's name (cut in the middle), its declared format
and Inspect again. Narrower than :data:`NARROW` pixels, the format controls go under the name."""

from __future__ import annotations

from PySide6.QtWidgets import QBoxLayout, QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from .widgets import ElidedLabel

NARROW = 720  # pixels below which the header takes two rows


class ReportHeader(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.badge = QLabel()
        self.badge.setAccessibleName("Verdict badge")
        self.title = ElidedLabel()
        self.title.setAccessibleName("Selected image")
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # cut in the middle
        self.declared_box = QComboBox()
        self.declared_box.setAccessibleName("Declared format")
        self.declared_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        # "from the extension (qcow2)" whole; a narrow window puts the box on a row of its own (fit)
        self.declared_box.setMinimumContentsLength(26)
        self.declared_box.setToolTip("The format this image must have; changing it inspects the image again (F2)")
        self.declared_label = QLabel("&Declared:")
        self.declared_label.setBuddy(self.declared_box)
        self.reinspect_button = QPushButton("Inspect again")
        named, controls = QHBoxLayout(), QHBoxLayout()
        named.addWidget(self.badge)
        named.addWidget(self.title, 1)
        controls.addWidget(self.declared_label)
        controls.addWidget(self.declared_box, 1)
        controls.addWidget(self.reinspect_button)
        self.rows = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.rows.setContentsMargins(0, 0, 0, 0)
        self.rows.addLayout(named, 1)
        self.rows.addLayout(controls)

    def fit(self, width: int) -> None:
        """One row for a report ``width`` pixels wide, or two below :data:`NARROW`."""
        narrow = width < NARROW
        self.rows.setDirection(QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight)
