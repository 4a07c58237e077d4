"""Doubles: the float64 view of shared memory that PyPy reads fast, on any interpreter."""

from array import array

from paracnn.parallel.doubles import Doubles
from paracnn.parallel.shm import create_block, release_block


def test_a_slice_of_a_slice_writes_through_and_reads_back_what_was_written():
    block = create_block(8 * 10)
    try:
        view = Doubles(block.buf[:80])
        view[:] = array("d", range(10))
        part = view[2:8]
        part[1:3] = array("d", [-1.5, 2.5])
        assert len(view) == 10 and len(part) == 6
        assert list(view) == [0.0, 1.0, 2.0, -1.5, 2.5, 5.0, 6.0, 7.0, 8.0, 9.0]
        assert part.tolist() == [2.0, -1.5, 2.5, 5.0, 6.0, 7.0]
        assert view[3] == -1.5 and view[-1] == 9.0
        assert view[::3] == array("d", [0.0, -1.5, 6.0, 9.0])
        assert view[8:2].tolist() == []
        for v in (part, view):
            v.release()
    finally:
        release_block(block, unlink=True)
