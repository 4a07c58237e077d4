"""Naive nested-loop references, independent of paracnn.kernels, for checking the layers."""


def conv2d(x, shape, weight, bias, filters, kernel, stride, pad_before, pad_after):
    c_in, h, w = shape
    kh, kw = kernel
    out_h = (h + pad_before[0] + pad_after[0] - kh) // stride[0] + 1
    out_w = (w + pad_before[1] + pad_after[1] - kw) // stride[1] + 1
    out = []
    for f in range(filters):
        for oy in range(out_h):
            for ox in range(out_w):
                total = bias[f] if bias else 0.0
                for c in range(c_in):
                    for ky in range(kh):
                        for kx in range(kw):
                            y = oy * stride[0] + ky - pad_before[0]
                            xx = ox * stride[1] + kx - pad_before[1]
                            if 0 <= y < h and 0 <= xx < w:
                                wi = ((f * c_in + c) * kh + ky) * kw + kx
                                total += weight[wi] * x[(c * h + y) * w + xx]
                out.append(total)
    return out, (filters, out_h, out_w)


def pool2d(x, shape, kernel, stride, reduce):
    c, h, w = shape
    out_h = (h - kernel[0]) // stride[0] + 1
    out_w = (w - kernel[1]) // stride[1] + 1
    out = []
    for ch in range(c):
        for oy in range(out_h):
            for ox in range(out_w):
                window = [x[(ch * h + oy * stride[0] + ky) * w + ox * stride[1] + kx]
                          for ky in range(kernel[0]) for kx in range(kernel[1])]
                out.append(reduce(window))
    return out
