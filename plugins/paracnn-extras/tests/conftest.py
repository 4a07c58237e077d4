"""These tests need the plugin installed; without it they are left out, and the summary says so.

paracnn's own test run includes this folder (``testpaths``), and
``pip install -e ".[test]"`` alone does not install the plugin.
"""

import importlib.util

INSTALL = "pip install -e ./plugins/paracnn-extras"
MISSING = importlib.util.find_spec("paracnn_extras") is None
collect_ignore_glob = ["test_*.py"] if MISSING else []


def pytest_terminal_summary(terminalreporter):
    if MISSING:
        terminalreporter.write_line(f"paracnn-extras is not installed, so its tests did not run ({INSTALL})")
