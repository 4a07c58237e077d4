"""Which backend a run uses: :func:`backend_spec` reads ``train.backend``; :class:`RaySpec` opens Ray's.

The :class:`~paracnn.parallel.engine.Engine` takes the spec and calls its
``open`` once it has laid out the shared state; None means this machine's
worker pool.
"""

from .ray_actor import import_ray
from .ray_backend import RayBackend


def backend_spec(config, workers, backend=None, address=None):
    """The ``backend`` argument of :class:`~paracnn.parallel.engine.Engine` for a resolved config.

    ``backend`` and ``address`` override ``train.backend`` and ``train.ray_address``.
    None (the local pool) unless the backend is ``ray`` with workers.
    """
    tc = config["train"]
    if (backend or tc.get("backend", "local")) != "ray" or not workers:
        return None
    return RaySpec(config, address or tc.get("ray_address"))


class RaySpec:
    """What :class:`~paracnn.parallel.engine.Engine` needs to open a :class:`RayBackend`.

    Args:
        config: the resolved config mapping (``Config.data``), for the actors.
        address: ``auto``, ``HOST:PORT`` or None (start a local Ray sized to the workers).
    """

    def __init__(self, config, address=None):
        self.config, self.address = config, address
        import_ray()  # NOTE: fail on a missing extra before loading any data

    def open(self, model, datasets, layout, optimizer, **options):
        return RayBackend(self, model, datasets, layout, optimizer, **options)
