#!/usr/bin/python3
"""Conv, MaxPool and AveragePool of inferd against PyTorch on many shapes the ONNX conformance
cases do not reach: batches of small images (the batched small-plane GEMM path), same-padded
stride-1 convolutions (the masked row packing), asymmetric pads, dilations, groups, 1-D-like
and 1x1 kernels, ceil_mode, dynamic batch dims; each at 1 and 2 threads.
Usage: tests/test_conv_torch.py INFERD [THREADS...] (default threads: 1 2)
Prints PASS/FAIL per case and ends with "N passed, M failed"."""
import sys, os, subprocess, random, tempfile, shutil
import numpy as np, onnx, torch
from onnx import helper, TensorProto, numpy_helper
inferd = sys.argv[1]
thread_counts = sys.argv[2:] or ["1", "2"]
threads = thread_counts[0]
d = tempfile.mkdtemp(prefix='inferd-conv-torch-')
rng = np.random.default_rng(1)
fails = 0; n = 0
def run(model, x):
    onnx.save(model, f'{d}/m.onnx'); np.save(f'{d}/x.npy', x)
    r = subprocess.run([inferd, 'run', f'{d}/m.onnx', '-i', f'x={d}/x.npy', '-o', f'{d}/out', '--threads', threads], capture_output=True, text=True)
    if r.returncode: return None, r.stderr
    return np.load(f'{d}/out/y.npy'), ''
def check(name, model, x, ref):
    global fails, n
    n += 1
    y, err = run(model, x)
    if y is None or y.shape != ref.shape or not np.allclose(y, ref, rtol=1e-4, atol=1e-4 * max(1, np.abs(ref).max())):
        fails += 1
        diff = None if y is None or y.shape != ref.shape else np.abs(y - ref).max()
        print('FAIL', name, 'threads', threads, err.strip(), None if y is None else y.shape, ref.shape, diff)
    else:
        print('PASS', name, 'threads', threads)
def conv_case(N, C, H, W, M, k, s, p, dil, group, relu, dyn):
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C // group, k[0], k[1])).astype(np.float32) * 0.3
    b = rng.standard_normal(M).astype(np.float32)
    xp = torch.nn.functional.pad(torch.from_numpy(x), (p[1], p[3], p[0], p[2]))
    ref = torch.nn.functional.conv2d(xp, torch.from_numpy(w), torch.from_numpy(b), stride=s, dilation=dil, groups=group)
    if relu: ref = torch.relu(ref)
    ref = ref.numpy()
    nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['c' if relu else 'y'], kernel_shape=list(k), strides=list(s), pads=list(p), dilations=list(dil), group=group)]
    if relu: nodes.append(helper.make_node('Relu', ['c'], ['y']))
    xs = ['n', C, H, W] if dyn else [N, C, H, W]
    g = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, xs)],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, 'w'), numpy_helper.from_array(b, 'b')])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
    check(f'conv N{N} C{C} {H}x{W} M{M} k{k} s{s} p{p} d{dil} g{group} relu{relu} dyn{dyn}', m, x, ref)
def pool_case(kind, N, C, H, W, k, s, p, ceil, dil=(1, 1)):
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    xt = torch.from_numpy(x)
    if kind == 'MaxPool':
        ref = torch.nn.functional.max_pool2d(xt, k, s, (p[0], p[1]), dilation=dil, ceil_mode=ceil).numpy()
        attrs = dict(dilations=list(dil))
    else:
        ref = torch.nn.functional.avg_pool2d(xt, k, s, (p[0], p[1]), ceil_mode=ceil, count_include_pad=False).numpy()
        attrs = {}
    node = helper.make_node(kind, ['x'], ['y'], kernel_shape=list(k), strides=list(s), pads=[p[0], p[1], p[0], p[1]], ceil_mode=int(ceil), **attrs)
    g = helper.make_graph([node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [N, C, H, W])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
    check(f'{kind} N{N} C{C} {H}x{W} k{k} s{s} p{p} ceil{ceil} d{dil}', m, x, ref)

def conv_cases():
    for (N, C, H, W, M) in [(360, 16, 8, 8, 32), (7, 16, 8, 8, 32), (5, 3, 7, 5, 20), (3, 8, 1, 9, 64), (2, 4, 13, 3, 17), (9, 16, 4, 4, 48), (2, 32, 14, 14, 64), (1, 5, 9, 11, 33), (40, 1, 8, 8, 16)]:
        for (k, p, dil) in [((3, 3), (1, 1, 1, 1), (1, 1)), ((5, 5), (2, 2, 2, 2), (1, 1)), ((3, 3), (2, 2, 2, 2), (2, 2)), ((3, 1), (1, 0, 1, 0), (1, 1)), ((3, 3), (0, 1, 2, 1), (1, 1)), ((3, 3), (1, 0, 1, 0), (1, 1)), ((1, 1), (0, 0, 0, 0), (1, 1))]:
            if H + p[0] + p[2] < (k[0]-1)*dil[0]+1 or W + p[1] + p[3] < (k[1]-1)*dil[1]+1: continue
            conv_case(N, C, H, W, M, k, (1, 1), p, dil, 1, random.Random(N*H+M).random() < 0.5, (N % 2) == 1)
        conv_case(N, C, H, W, M, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, True, False)
        if C % 4 == 0 and M % 4 == 0: conv_case(N, C, H, W, M, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4, False, False)
def depthwise_cases():
    # group == C: the direct depthwise kernel (flattened small planes, tiled rows R x B blocks
    # for column stride 1 and 2 incl. partial row groups and blocks, the row kernel otherwise)
    for (N, C, H, W, mult) in [(1, 3, 112, 112, 1), (2, 5, 57, 61, 1), (1, 4, 30, 200, 2), (1, 6, 14, 14, 1),
                               (3, 2, 9, 33, 1), (1, 3, 7, 7, 2), (1, 2, 5, 70, 1), (2, 3, 20, 17, 1)]:
        for (k, s, p, dil) in [((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
                               ((3, 3), (2, 2), (0, 1, 2, 1), (1, 1)), ((5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),
                               ((3, 3), (1, 1), (2, 2, 2, 2), (2, 2)), ((3, 3), (2, 1), (1, 0, 1, 3), (1, 1)),
                               ((3, 3), (1, 2), (1, 1, 1, 1), (2, 2)), ((7, 7), (1, 1), (3, 3, 3, 3), (1, 1))]:
            if H + p[0] + p[2] < (k[0]-1)*dil[0]+1 or W + p[1] + p[3] < (k[1]-1)*dil[1]+1: continue
            conv_case(N, C, H, W, C * mult, k, s, p, dil, C, random.Random(N*H+W+k[0]+s[0]).random() < 0.5, False)
def pointwise_cases():
    # 1x1 stride-1 convolutions on small planes (MobileNetV2's 14x14 and 7x7 layers): at 2+
    # threads these split output channels over the threads, on the packed weights' column
    # blocks when the count allows (384, 960, 1280), positions otherwise (36, 100, 576, 96)
    for (N, C, H, W, M) in [(1, 64, 14, 14, 384), (1, 160, 7, 7, 960), (1, 96, 14, 14, 576),
                            (2, 320, 7, 7, 1280), (1, 24, 7, 7, 100), (1, 64, 14, 14, 36),
                            (1, 32, 7, 7, 96), (3, 48, 5, 5, 200)]:
        for relu in (False, True):
            conv_case(N, C, H, W, M, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, relu, False)
def pool_cases():
    for kind in ['MaxPool', 'AveragePool']:
        for (N, C, H, W) in [(360, 32, 8, 8), (3, 5, 7, 9), (2, 3, 17, 33), (1, 2, 112, 112), (4, 7, 1, 40), (2, 64, 2, 2), (3, 4, 5, 5), (1, 3, 40, 3)]:
            for (k, s, p) in [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 3), (1, 1), (1, 1)), ((2, 2), (1, 1), (0, 0)), ((3, 3), (3, 3), (0, 0)), ((2, 3), (2, 1), (1, 1)), ((5, 5), (2, 2), (2, 2)), ((3, 3), (3, 3), (1, 1))]:
                if k[0] > H + 2*p[0] or k[1] > W + 2*p[1]: continue
                for ceil in [False, True]:
                    pool_case(kind, N, C, H, W, k, s, p, ceil)
        if kind == 'MaxPool':
            pool_case(kind, 2, 3, 12, 12, (3, 3), (2, 2), (1, 1), False, (2, 2))
            pool_case(kind, 2, 3, 12, 31, (2, 2), (1, 1), (1, 1), True, (3, 2))

for threads in thread_counts:
    rng = np.random.default_rng(1)
    conv_cases()
    depthwise_cases()
    pointwise_cases()
    pool_cases()
shutil.rmtree(d, ignore_errors=True)
print(f'{n - fails} passed, {fails} failed')
sys.exit(1 if fails else 0)
