"""Putting image sets into shared memory once, and re-attaching them in workers.

The train and validation sets are index subsets of the same buffers, so
buffers are shared by identity: each distinct buffer is copied into one
shared block, however many sets use it.
"""

from .shm import attach_block, create_block


class SharedImageSet:
    """A picklable handle: an ImageSet without buffers plus the names of its blocks."""

    def __init__(self, template, images_name, images_len, labels_name, labels_len):
        self.template = template
        self.images = (images_name, images_len)
        self.labels = (labels_name, labels_len)

    def attach(self, blocks, attach=attach_block):
        """The ImageSet over the shared blocks; attached blocks are appended to / reused from ``blocks``."""
        by_name = {b.name: b for b in blocks}
        views = []
        for name, length in (self.images, self.labels):
            block = by_name.get(name)
            if block is None:
                block = attach(name)
                blocks.append(block)
                by_name[name] = block
            views.append(block.buf[:length])
        return self.template.with_buffers(*views)


def share_datasets(datasets):
    """Copy the buffers of ``{split: ImageSet}`` into shared memory.

    Returns ``(handles, local, blocks)``: picklable :class:`SharedImageSet`
    handles for the workers, the same sets re-attached in this process (so the
    original ``bytes`` can be freed), and the blocks the caller must release
    and unlink.
    """
    blocks, by_buffer, handles = [], {}, {}
    try:
        for split, ds in datasets.items():
            names = []
            for buf in (ds.images, ds.labels):
                key = id(buf)
                if key not in by_buffer:
                    block = create_block(len(buf))
                    block.buf[:len(buf)] = buf
                    blocks.append(block)
                    by_buffer[key] = (block.name, len(buf), buf)  # keep buf alive: ids stay unique
                names.append(by_buffer[key][:2])
            handles[split] = SharedImageSet(ds.with_buffers(None, None), *names[0], *names[1])
        local = {split: h.attach(list(blocks)) for split, h in handles.items()}
    except BaseException:
        for block in blocks:
            block.close()
            block.unlink()
        raise
    return handles, local, blocks
