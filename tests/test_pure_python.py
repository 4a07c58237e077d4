"""The compute core is pure Python: it runs with numpy, torch and scipy unimportable."""

import subprocess
import sys
import textwrap


def test_training_step_runs_with_numeric_libraries_blocked():
    script = textwrap.dedent("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("numpy", "torch", "scipy"):
                    raise ImportError(f"{name} is blocked in this test")
                return None

        sys.meta_path.insert(0, Block())
        import random
    """)
    script += textwrap.dedent("""
        from paracnn.layers.conv2d import Conv2d
        from paracnn.layers.relu import ReLU
        from paracnn.layers.maxpool2d import MaxPool2d
        from paracnn.layers.avgpool2d import AvgPool2d
        from paracnn.layers.flatten import Flatten
        from paracnn.layers.dense import Dense
        from paracnn.layers.dropout import Dropout
        from paracnn.layers.tanh import Tanh
        from paracnn.layers.sigmoid import Sigmoid
        from paracnn.model import Sequential
        m = Sequential([Conv2d(4, 3), ReLU(), MaxPool2d(2), Conv2d(4, 3, padding="same"), Tanh(),
                        AvgPool2d(2), Flatten(), Dropout(0.2), Dense(8), Sigmoid(), Dense(10)],
                       (1, 12, 12))
        m.build(seed=0)
        rng = random.Random(0)
        loss, pred = m.train_sample([rng.random() for _ in range(144)], 3, seed=1)
        g = m.get_grads()
        assert len(g) == m.num_params() and any(g)
        for mod in ("numpy", "torch", "scipy"):
            assert mod not in sys.modules, mod
        print("ok", loss)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")
