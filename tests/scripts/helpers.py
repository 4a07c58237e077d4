"""What the script tests share: running a script where matplotlib cannot be imported."""

import subprocess
import sys

#: the preamble that makes every import of matplotlib fail, as if the extra were not installed.
BLOCK_MATPLOTLIB = ("import sys\n"
                    "class Block:\n"
                    "    def find_spec(self, name, path=None, target=None):\n"
                    "        if name.split('.')[0] == 'matplotlib':\n"
                    "            raise ImportError('blocked')\n"
                    "sys.meta_path.insert(0, Block())\n")


def run_without_matplotlib(script, argv, cwd=None):
    """Run ``script`` as ``__main__`` with ``argv`` and matplotlib blocked; the CompletedProcess."""
    code = (BLOCK_MATPLOTLIB + f"sys.argv = [{script.name!r}, *{list(argv)!r}]\n"
            f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')\n")
    # NOTE: the timeout is a liveness bound; the scripts stop before doing any work
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=cwd)
