"""Runtime hook that replaces PyInstaller's PySide6 hook (dropped in workbench.spec).

Runtime hooks run before the entry script in every process the executable starts, and PyInstaller's
PySide6 hook imports ``PySide6.QtCore``: the engine child would load Qt before it dispatches. Here the
child (``--engine-worker``) is left alone, and the window gets what it needs from that hook: Qt's
plugin folder. The PyPI wheels relocate their Qt prefix themselves, and QML and QtNetwork (whose
library paths that hook also sets) are not in the bundle.
"""

import os
import sys


def _qt_plugin_path() -> None:
    if sys.argv[1:2] == ["--engine-worker"]:
        return
    qt = os.path.join(sys._MEIPASS, "PySide6")
    if not sys.platform.startswith("win"):
        qt = os.path.join(qt, "Qt")
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt, "plugins")


_qt_plugin_path()
del _qt_plugin_path
