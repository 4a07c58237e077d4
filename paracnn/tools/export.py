"""``paracnn export``: a checkpoint's weights as a safetensors file that PyTorch loads unchanged.

paracnn's parameters already have PyTorch's layouts (conv weights
``(out, in, kh, kw)``, dense weights ``(out, in)``, channel-major images), and
:meth:`~paracnn.model.Sequential.param_layout` names them as ``nn.Sequential``
numbers its modules (``0.weight``, ``3.bias``). So the file needs no
reordering: each tensor is the flat vector's slice, float64, little-endian.

:func:`torch_modules` gives the ``torch.nn`` module of each layer, as source
text; ``docs/export.md`` shows the lines that rebuild the network from them.
A layer with no built-in PyTorch counterpart (the ``residual`` block) cannot
be exported, and says so.

safetensors (0.8 and later) serialises from a raw buffer address, so the
values go from an ``array('d')`` straight into the file: no NumPy, no torch.
"""

import json
import sys
from array import array

from .. import __version__
from ..errors import ParacnnError
from ..files import CannotWrite, check_can_write, write_atomic
from ..trained import load_model
from .extras import require


class CannotExport(ParacnnError):
    """A layer has no PyTorch module to map to."""


def _pair(values):
    return f"({values[0]}, {values[1]})"


def _conv2d(layer):
    padding = layer.padding
    padding = repr(padding) if isinstance(padding, str) else _pair(padding)
    return (f"nn.Conv2d({layer.input_shape[0]}, {layer.filters}, kernel_size={_pair(layer.kernel_size)}, "
            f"stride={_pair(layer.stride)}, padding={padding}, bias={layer.bias})")


def _pool(name):
    def module(layer):
        return f"nn.{name}(kernel_size={_pair(layer.kernel_size)}, stride={_pair(layer.stride)})"
    return module


#: registry name -> function of the built layer giving its ``torch.nn`` module as source text.
MODULES = {
    "conv2d": _conv2d,
    "maxpool2d": _pool("MaxPool2d"),
    "avgpool2d": _pool("AvgPool2d"),
    "relu": lambda layer: "nn.ReLU()",
    "sigmoid": lambda layer: "nn.Sigmoid()",
    "tanh": lambda layer: "nn.Tanh()",
    "flatten": lambda layer: "nn.Flatten()",
    "dropout": lambda layer: f"nn.Dropout(p={layer.rate!r})",
    "dense": lambda layer: f"nn.Linear({layer.input_shape[0]}, {layer.units}, bias={layer.bias})",
    # paracnn-extras, the example plugin:
    "leaky_relu": lambda layer: f"nn.LeakyReLU(negative_slope={layer.alpha!r})",
    "prelu": lambda layer: f"nn.PReLU(num_parameters={layer.num_parameters}, init={layer.init!r})",
    "pointwise_conv": lambda layer: (f"nn.Conv2d({layer.input_shape[0]}, {layer.filters}, "
                                     f"kernel_size=(1, 1), bias={layer.bias})"),
}

#: why some known layers cannot be exported.
UNEXPORTABLE = {
    "residual": "PyTorch has no built-in residual module that nn.Sequential and load_state_dict "
                "could fill; rebuild the block in PyTorch by hand, or train without it",
}


def torch_modules(model):
    """The ``torch.nn`` module of every layer, as source text (``"nn.ReLU()"``), in order.

    Raises:
        CannotExport: naming the first layer with no PyTorch counterpart.
    """
    out = []
    for i, (type_name, layer) in enumerate(zip(model.types, model.layers)):
        make = MODULES.get(type_name)
        if make is None:
            why = UNEXPORTABLE.get(type_name, "paracnn export knows no PyTorch module for it "
                                              "(the built-in layers and paracnn-extras' "
                                              "leaky_relu, prelu and pointwise_conv export)")
            raise CannotExport(f"cannot export layer {i} {type_name}: {why}")
        out.append(make(layer))
    return out


def tensors(model):
    """``[(name, shape, array('d'))]`` of every parameter, named as ``nn.Sequential`` names them."""
    values = dict(model.state_dict())
    return [(name, shape, array("d", values[name])) for name, shape in model.param_layout()]


def export(checkpoint, out, *, overwrite=False):
    """Write ``checkpoint``'s weights to ``out`` (a ``.safetensors`` file); return a summary dict.

    The file's metadata holds ``format: pt``, the paracnn version, the
    checkpoint's path and ``pytorch_modules`` (a JSON list of the modules).
    An existing ``out`` is refused unless ``overwrite``; the checkpoint itself always is.

    Raises:
        CannotWrite: ``out`` exists (without ``overwrite``), is the checkpoint, or its folder is missing.
    """
    safetensors = require("safetensors", "paracnn export")
    check_can_write(out, inputs=[checkpoint], overwrite=overwrite)  # NOTE: before the model is loaded, not after
    trained = load_model(checkpoint)
    modules = torch_modules(trained.model)
    specs, buffers = {}, []
    for name, shape, values in tensors(trained.model):
        if sys.byteorder != "little":
            values.byteswap()  # NOTE: safetensors is little-endian on every machine
        buffers.append(values)  # NOTE: keeps each buffer alive while safetensors reads its address
        specs[name] = safetensors.TensorSpec(dtype="float64", shape=list(shape),
                                             data_ptr=values.buffer_info()[0],
                                             data_len=len(values) * values.itemsize)
    metadata = {"format": "pt", "paracnn_version": __version__, "paracnn_checkpoint": trained.path,
                "pytorch_modules": json.dumps(modules)}
    data = safetensors.serialize(specs, metadata)
    try:
        write_atomic(out, data, inputs=[trained.path], overwrite=overwrite)
    except OSError as e:
        raise CannotWrite(f"cannot write {out}: {e.strerror or e}") from None
    return {"path": str(out), "checkpoint": trained.path, "modules": modules,
            "tensors": [{"name": n, "shape": list(s)} for n, s in trained.model.param_layout()],
            "values": sum(len(b) for b in buffers)}


def export_from_cli(args):
    """``paracnn export --checkpoint CKPT OUT.safetensors [--overwrite]``."""
    s = export(args.checkpoint, args.out, overwrite=args.overwrite)
    print(f"wrote {s['path']}: {len(s['tensors'])} float64 tensors, {s['values']:,} values, from "
          f"{s['checkpoint']}")
    print("load it in PyTorch (docs/export.md):")
    print("    import torch, safetensors.torch\n    from torch import nn")
    print("    model = nn.Sequential(\n" + "".join(f"        {m},\n" for m in s["modules"])
          + "    ).double()")
    print(f"    model.load_state_dict(safetensors.torch.load_file({s['path']!r}))")
    return 0
