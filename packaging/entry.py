"""PyInstaller's entry script: the frozen executable does what ``python -m workbench`` does.

A script outside the package keeps ``workbench/`` off the analysis path (its modules are not top-level).
"""

from workbench.__main__ import main

main()
