"""The examples and notes under each subcommand's ``--help`` (its argparse epilog)."""

EPILOGS = {
    "main": """examples:
  paracnn layers                              list the layer types (built-in and plugins)
  paracnn summary configs/lenet.yaml          shapes, parameters and MACs per layer
  paracnn check configs/lenet.yaml            validate, build and gradient-check a model
  paracnn train configs/lenet.yaml --workers auto
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json
  paracnn profile configs/lenet.yaml --workers 1,2 --synthetic
  paracnn new-layer my_layer --dir plugins    scaffold a layer-plugin package

Set PARACNN_DISABLE_PLUGINS=1 to use the built-in layers only.""",
    "layers": """examples:
  paracnn layers
  paracnn layers --json | python -m json.tool
  PARACNN_DISABLE_PLUGINS=1 paracnn layers      built-in layers only""",
    "summary": """examples:
  paracnn summary configs/lenet.yaml
  paracnn summary configs/lenet.yaml --set model.layers.0.filters=8
  paracnn summary configs/tiny.yaml --json""",
    "check": """Validates the config, builds the model, checks every layer's contract (output
and dx lengths, gradients added rather than assigned), runs one forward/backward
pass and a finite-difference gradient check of the whole model on one sample.
Exit status 0 only if everything passes; 1 if a check fails (naming the layer's
line); 2 for a config error.

examples:
  paracnn check configs/lenet.yaml
  paracnn check configs/simple.yaml --set train.lr=0.01""",
    "train": """--workers, --start-method and --data-dir are shorthands for --set
train.workers=N, --set train.start_method=M and --set data.dir=D.
--workers auto (recommended) starts min(usable CPUs, micro-batches per step)
workers; more than either only wait, and a warning says so. --backend B and
--address A are shorthands for --set train.backend=B and --set train.ray_address=A.

examples:
  paracnn train configs/lenet.yaml --workers auto
  paracnn train configs/lenet.yaml --workers auto --set data.train_limit=2000 --set data.test_limit=500
  paracnn train configs/lenet.yaml --workers auto --run-dir runs/lenet
  paracnn train configs/tiny.yaml --set train.epochs=3 --set train.lr=0.1
  paracnn train configs/lenet.yaml --resume runs/lenet
  paracnn train configs/lenet.yaml --backend ray --workers 8 --address auto    on a Ray cluster
  paracnn train --resume runs/lenet              continue with the run's saved config
  paracnn train --resume runs/lenet --set train.epochs=3   ...and train for longer
  paracnn train configs/lenet.yaml --run-dir runs/lenet --overwrite   start afresh there

A --run-dir that already holds a run is refused (exit 2): continue it with
--resume, or start afresh with --overwrite, which moves the old folder aside.
Each epoch prints an ML line (losses, accuracies, lr, time) and a systems line
(samples/s, compute/wait/tail/reduce+update seconds, memory, CPU); --quiet
leaves out the systems line. Without a terminal, a progress line appears every
train.log_every steps (at most every 2 s, at least every 30 s).""",
    "evaluate": """Evaluates on the checkpoint's own validation and test sets; --set changes its
data: (or train:) settings, for instance the full test set after training on a
subset, or another dataset of the same image shape and classes. --workers
defaults to auto, whatever the run trained with.

examples:
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json
  paracnn evaluate runs/lenet-20261122-101500 --set data.test_limit=null
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json --set data.dataset=fashion-mnist
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json --workers 2 --json""",
    "compare": """Per parameter tensor and overall: the L2 distance ||A - B||, the relative change
||A - B|| / ||B|| (B is the reference) and the cosine similarity, plus both
runs' test accuracy and loss. The runs must have the same architecture.

examples:
  paracnn compare runs/jitter-10 runs/clean
  paracnn compare runs/a runs/b --checkpoint-name best.json
  paracnn compare runs/a/checkpoints/last.json runs/b --json""",
    "profile": """Times the in-process serial step, then the step on each worker count, and
calibrates what the hardware delivers before, during and after each run: the
model's own training step (forward and backward on fixed inputs, no
communication) in 1 and in as many processes at once. Reports speedup,
efficiency, Karp-Flatt, relative efficiency (speedup over that calibration)
and an Amdahl fit with predicted speedups. A fixed pure-CPU burn, the same for
every model, is measured too, as a yardstick for comparing machines.

examples:
  paracnn profile configs/lenet.yaml --workers 1,2 --synthetic
  paracnn profile configs/lenet.yaml --workers 1,auto --synthetic
  paracnn profile configs/lenet.yaml --workers 1,2,4,8 --steps 10 --json p.json --plot p.png
  paracnn profile configs/tiny.yaml --workers 1,2 --layers --csv p.csv""",
    "plot": """Writes PNG figures of a run and RUN/report.html, one self-contained page with
the config, the metrics and every figure: per-step and per-epoch curves, the
test confusion matrix, every conv layer's filters, feature maps and saliency
of chosen test images, a grid of test predictions and the most confident
mistakes. The model runs in-process from checkpoints/best.json (last.json
when there is no best.json). Needs matplotlib: pip install "paracnn[plot]".

examples:
  paracnn plot runs/lenet-20261122-101500
  paracnn plot runs/lenet --images 6 --out figures
  paracnn plot runs/lenet --checkpoint runs/lenet/checkpoints/last.json""",
    "predict": """Prepares each picture as MNIST was made (grayscale, inverted when the
background is light, cropped to the ink, scaled into a 20x20 box, centred by
its centre of mass in 28x28) and prints the most likely classes. Reads PNG,
JPEG, BMP and PGM. Needs Pillow: pip install "paracnn[image]".

examples:
  paracnn predict --checkpoint runs/lenet/checkpoints/best.json my_seven.png
  paracnn predict --checkpoint runs/lenet/checkpoints/best.json *.png --top 1 --json""",
    "export": """Writes the weights as float64 tensors named as PyTorch's nn.Sequential of the
same layers names them (0.weight, 0.bias, 3.weight, ...), and prints the
nn.Sequential that load_state_dict fills (docs/export.md). Needs safetensors:
pip install "paracnn[export]".

An existing OUT is refused unless --overwrite is given; the checkpoint itself
always is.

examples:
  paracnn export --checkpoint runs/lenet/checkpoints/best.json lenet.safetensors""",
}

