"""Softmax cross-entropy, the loss every paracnn model trains with."""

import math
from itertools import repeat
from operator import mul, sub


def softmax_cross_entropy(logits, label):
    """Return ``(loss, dlogits)`` for one sample with integer class ``label``.

    loss = logsumexp(z) - z[label], computed after subtracting max(z) so that
    exp never overflows; dlogits = softmax(z) - onehot(label).

    Shape:
        logits: ``(classes,)``; dlogits: ``(classes,)``.
    """
    m = max(logits)
    exps = list(map(math.exp, map(sub, logits, repeat(m))))
    total = sum(exps)
    loss = m + math.log(total) - logits[label]
    dlogits = list(map(mul, exps, repeat(1.0 / total)))
    dlogits[label] -= 1.0
    return loss, dlogits


def softmax(logits):
    """Probabilities for one sample, stable for any logits."""
    m = max(logits)
    exps = list(map(math.exp, map(sub, logits, repeat(m))))
    inv = 1.0 / sum(exps)
    return [e * inv for e in exps]
