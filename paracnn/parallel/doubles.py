"""A float64 view of shared memory that PyPy reads as fast as CPython does.

Under CPython a ``memoryview`` cast to ``'d'`` is the fastest way to read and
write doubles in shared memory. Under PyPy (7.3) writes through it are fast,
but reads go element by element through a generic path: copying 44,426
weights out takes about 2.2 ms, against 0.03 ms for ``array.frombytes`` on the
same bytes viewed as ``'B'``. A worker reads the weights, the gradient slots
and the optimiser's buffers every step, so :func:`paracnn.parallel.shm.double_view` hands
out this class under PyPy instead.

It supports what the engine does with a view: ``len``, indexing, slicing (a
slice is another view of the same memory, so ``view[a:b][c:d] = values``
writes through), slice assignment from an ``array('d')`` or a ``'d'``
memoryview, iteration and ``tolist`` (both read through one
``array.frombytes`` copy), ``obj`` and ``release``.

For the loops of the reduction and the optimiser, :meth:`Doubles.cdata` gives
the same memory as cffi's ``double[]`` (cffi ships with PyPy): indexing it
in a loop compiles to a plain load, where the chained ``map`` over copies
that CPython prefers measured 5x slower under PyPy (summing 8 slots of 5,553
doubles: 0.07 ms against 0.33 ms).
"""

from array import array


class Doubles:
    """Doubles in a ``'B'`` memoryview whose length is a multiple of 8.

    ``root`` and ``offset`` are for slices: the view this one was cut from,
    and where this one starts in it (in doubles), so every slice reaches the
    memory through its root's one cffi buffer.
    """

    __slots__ = ("_bytes", "_d", "_c", "_root", "_offset")

    def __init__(self, byte_view, root=None, offset=0):
        self._bytes = byte_view
        self._d = byte_view.cast("d")
        self._c = None
        self._root, self._offset = root, offset

    def cdata(self):
        """This memory as cffi's ``double[]`` (or ``double *`` for a slice); None without cffi.

        NOTE: one ``ffi.from_buffer`` per root, released with it: a buffer export per
        slice would keep the shared block from closing.
        """
        if self._root is not None:
            base = self._root.cdata()
            return None if base is None else base + self._offset
        if self._c is None:
            ffi = _ffi()
            if ffi is None:
                return None
            self._c = ffi.from_buffer("double[]", self._bytes)
        return self._c

    def __len__(self):
        return len(self._d)

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self._d))
            if step != 1:
                return self._array()[key]
            root = self._root if self._root is not None else self
            return Doubles(self._bytes[start * 8:max(start, stop) * 8], root, self._offset + start)
        return self._d[key]

    def __setitem__(self, key, values):
        c = self.cdata() if isinstance(key, slice) and isinstance(values, (array, memoryview)) else None
        if c is None:
            self._d[key] = values
            return
        start, stop, step = key.indices(len(self._d))
        if step != 1 or len(values) != stop - start:
            self._d[key] = values  # NOTE: memoryview's own checks and messages
            return
        # NOTE: one memcpy: a 'd' memoryview's slice assignment copies element by element
        # under PyPy (0.2 ms for LeNet-5's 44,426 weights, against 0.01 ms).
        _ffi().memmove(c + start, values, 8 * len(values))

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self):
        c = self.cdata()
        if c is None:
            return list(self._array())
        return _ffi().unpack(c, len(self._d))

    def _array(self):
        values = array("d")
        values.frombytes(self._bytes)
        return values

    @property
    def obj(self):
        """The object whose memory this views, as ``memoryview.obj`` gives it."""
        return self._bytes.obj

    def release(self):
        if self._c is not None:
            _ffi().release(self._c)
            self._c = None
        self._d.release()
        self._bytes.release()


_FFI = []


def _ffi():
    """The one ``cffi.FFI()``, or None where cffi is missing (imported on first use)."""
    if not _FFI:
        try:
            import cffi
        except ImportError:
            _FFI.append(None)
        else:
            _FFI.append(cffi.FFI())
    return _FFI[0]
