import sys

sys.exit(0)  # a plugin whose import ends the interpreter

