"""PyTorch side of `npm run bench -- train-step`: Gen-0 steps (64 images -> 256 with the four rotations,
forward in train mode, CE + 2 * BCE, backward, SGD momentum 0.9 wd 5e-4) of the reference's networks on CPU.
Usage: python3 bench/train_step_torch.py MODEL REPEATS THREADS. Prints one JSON line (wall and CPU seconds per
timed step after one warm-up, peak RSS). For comparison only: skd does not depend on PyTorch."""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import Conv4, ResNet12, gen0_loss  # noqa: E402

MODELS = {
    'conv4': (lambda: Conv4(64, 64), 32),
    'resnet12-16-40-80-160': (lambda: ResNet12((16, 40, 80, 160), 64, block_size=2), 32),
    'resnet12': (lambda: ResNet12((64, 160, 320, 640), 64, block_size=2), 32),
    'resnet12-84px': (lambda: ResNet12((64, 160, 320, 640), 64, block_size=5), 84),
}


def main():
    name, repeats, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    make, size = MODELS[name]
    model = make().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(64, 3, size, size)
    y = torch.arange(64) % 64
    wall, cpu = [], []
    for r in range(repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        batch = torch.cat([x, torch.rot90(x, 1, (2, 3)), torch.rot90(x, 2, (2, 3)), torch.rot90(x, 3, (2, 3))])
        z, rot = model(batch)
        loss = gen0_loss(z, rot, y.repeat(4))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if r > 0:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f'  torch {name} step {r}: {time.perf_counter() - t0:.2f} s', file=sys.stderr)
    print(json.dumps({'wall': wall, 'cpu': cpu, 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                      'engine': f'PyTorch {torch.__version__}, {threads} threads'}))


if __name__ == '__main__':
    main()
