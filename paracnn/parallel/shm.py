"""Shared-memory blocks: created and unlinked by the parent, attached by name in workers.

Workers attach *without* registering the block with multiprocessing's resource
tracker: on Python < 3.13 ``SharedMemory(name)`` registers unconditionally
(CPython gh-82300), and the tracker would then unlink the block, or warn about
a "leak", when a worker exits. The parent, which creates every block, stays
registered, so the tracker still cleans up if the parent is killed.
"""

import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory


def create_block(nbytes):
    """A new shared block of at least ``nbytes`` bytes (at least 1)."""
    return SharedMemory(create=True, size=max(1, int(nbytes)))


def attach_block(name):
    """Attach to the existing block ``name`` without involving the resource tracker."""
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)
    saved = resource_tracker.register
    resource_tracker.register = _no_register
    try:
        return SharedMemory(name=name)
    finally:
        resource_tracker.register = saved


def _no_register(name, rtype):
    pass


def release_block(block, unlink):
    """Close ``block`` (best effort while views exist) and unlink it if we own it."""
    try:
        block.close()
    except BufferError:
        # NOTE: a memoryview still points into the block; the mapping goes away
        # with the process. Unlinking below still frees the memory then.
        pass
    if unlink:
        try:
            block.unlink()
        except FileNotFoundError:
            pass

