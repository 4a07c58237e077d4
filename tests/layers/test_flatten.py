from paracnn.layers.flatten import Flatten
from paracnn.testing import check_layer


def test_shape_and_identity():
    f = Flatten()
    assert f.build((16, 4, 4)) == (256,)
    x = [float(i) for i in range(256)]
    assert f.forward(x) == x
    assert f.backward(x) == x
    check_layer(Flatten, {}, (2, 3, 3))
