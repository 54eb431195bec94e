"""The reference's ResNet-12 (resnet12_ssl: LeakyReLU 0.1, 1x1 shortcut, max-pool, dropout / DropBlock) and
Conv-4 in PyTorch, for side-by-side timings and cross-checks only; skd does not depend on PyTorch."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DropBlock(nn.Module):
    def __init__(self, block_size):
        super().__init__()
        self.block_size = block_size

    def forward(self, x, gamma):
        if not self.training or gamma <= 0:
            return x
        n, c, h, w = x.shape
        bs = self.block_size
        if h - bs + 1 <= 0:
            return x
        seeds = torch.bernoulli(torch.full((n, c, h - bs + 1, w - bs + 1), gamma, device=x.device))
        blocks = F.max_pool2d(F.pad(seeds, (bs - 1,) * 4), bs, stride=1)
        mask = 1 - blocks
        return x * mask * mask.numel() / mask.sum().clamp(min=1)


class Block(nn.Module):
    def __init__(self, inp, out, drop_rate, drop_block, block_size):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.conv3 = nn.Conv2d(out, out, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = nn.Sequential(nn.Conv2d(inp, out, 1, bias=False), nn.BatchNorm2d(out))
        self.drop_rate = drop_rate
        self.drop_block = drop_block
        self.dropblock = DropBlock(block_size)

    def forward(self, x):
        out = F.leaky_relu(self.bn1(self.conv1(x)), 0.1)
        out = F.leaky_relu(self.bn2(self.conv2(out)), 0.1)
        out = self.bn3(self.conv3(out))
        out = F.max_pool2d(F.leaky_relu(out + self.downsample(x), 0.1), 2)
        if self.drop_rate > 0:
            if self.drop_block:
                fs = out.shape[2]
                keep = 1 - self.drop_rate
                gamma = (1 - keep) / self.dropblock.block_size ** 2 * fs ** 2 / (fs - self.dropblock.block_size + 1) ** 2
                out = self.dropblock(out, gamma)
            else:
                out = F.dropout(out, self.drop_rate, self.training)
        return out


class ResNet12(nn.Module):
    def __init__(self, widths=(64, 160, 320, 640), n_cls=64, drop_rate=0.1, block_size=2):
        super().__init__()
        layers, inp = [], 3
        for i, w in enumerate(widths):
            layers.append(Block(inp, w, drop_rate, i >= 2, block_size))
            inp = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.classifier = nn.Linear(inp, n_cls)
        self.rot_classifier = nn.Linear(n_cls, 4)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        z = self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return z, self.rot_classifier(z)


class Conv4(nn.Module):
    def __init__(self, width=64, n_cls=64):
        super().__init__()
        blocks, inp = [], 3
        for _ in range(4):
            blocks.append(nn.Sequential(nn.Conv2d(inp, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)))
            inp = width
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks
        self.classifier = nn.Linear(width, n_cls)
        self.rot_classifier = nn.Linear(n_cls, 4)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        z = self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return z, self.rot_classifier(z)


def gen0_loss(z, r, y4, gamma=2.0):
    rot = torch.arange(4, device=z.device).repeat_interleave(z.shape[0] // 4)
    return F.cross_entropy(z, y4) + gamma * F.binary_cross_entropy_with_logits(r, F.one_hot(rot, 4).float())
