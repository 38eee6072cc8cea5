"""Networks whose Linear and Conv2d weights are stored in crossbars.

Weights are initialized from a seeded ``torch.Generator`` and dropout masks come from a
generator too, so training never touches torch's global random state.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from faultreg.crossbar import matrix_shape
from faultreg.faults import LayerGeometry

# Every dataset faultreg reads is 28x28 grey-scale with ten classes.
IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


class SeededDropout(nn.Module):
    """Inverted dropout whose masks come from a generator set with :meth:`set_generator`."""

    def __init__(self, probability: float) -> None:
        super().__init__()
        if not 0.0 <= probability < 1.0:
            raise ValueError(f"dropout probability {probability} is outside [0, 1)")
        self.probability = probability
        self.generator: torch.Generator | None = None

    def set_generator(self, generator: torch.Generator) -> None:
        """Use ``generator`` for every later mask."""
        self.generator = generator

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or self.probability == 0.0:
            return inputs
        if self.generator is None:
            raise RuntimeError("SeededDropout needs a generator before training; call set_generator first")
        keep = 1.0 - self.probability
        mask = torch.bernoulli(torch.full_like(inputs, keep), generator=self.generator)
        return inputs * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.probability}"


class MLP(nn.Module):
    """Fully connected ReLU network with dropout on the inputs of every hidden-to-next layer."""

    def __init__(self, hidden_units: list[int], dropout: float = 0.0, image_shape: tuple[int, ...] = IMAGE_SHAPE, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        widths = [math.prod(image_shape), *hidden_units]
        layers: list[nn.Module] = [nn.Flatten()]
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            if index > 0:
                layers.append(SeededDropout(dropout))
            layers.extend([nn.Linear(fan_in, fan_out), nn.ReLU()])
        layers.extend([SeededDropout(dropout), nn.Linear(widths[-1], num_classes)])
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class LeNet5(nn.Module):
    """LeNet-5-style CNN: conv 5x5 (6), pool, conv 5x5 (16), pool, FC 120, FC 84, FC classes.

    The first convolution pads by 2 so a 28x28 image gives the classic 5x5x16 feature map.
    Dropout acts on the inputs of the second and third fully connected layers.
    """

    def __init__(self, dropout: float = 0.0, image_shape: tuple[int, ...] = IMAGE_SHAPE, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        feature_size = 16 * ((height // 2 - 4) // 2) * ((width // 2 - 4) // 2)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(feature_size, 120),
            nn.ReLU(),
            SeededDropout(dropout),
            nn.Linear(120, 84),
            nn.ReLU(),
            SeededDropout(dropout),
            nn.Linear(84, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


class BasicBlock(nn.Module):
    """Residual block of two 3x3 convolutions with batch normalization (He et al., CVPR 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.bn1(self.conv1(inputs)))
        return torch.relu(self.bn2(self.conv2(hidden)) + self.shortcut(inputs))


class ResNet18(nn.Module):
    """ResNet-18 (11.2 million weights) with a 3x3 stem for small images, as used for CIFAR-10.

    Dropout acts on the pooled features before the classifier.
    """

    def __init__(self, dropout: float = 0.0, image_shape: tuple[int, ...] = IMAGE_SHAPE, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(image_shape[0], 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        blocks: list[nn.Module] = []
        in_channels = 64
        for out_channels, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels, 1)]
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), SeededDropout(dropout), nn.Linear(512, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(images)))


ARCHITECTURES = ("mlp", "lenet5", "resnet18")


def build_model(model_settings: dict[str, Any], dropout: float = 0.0) -> nn.Module:
    """Build the network named in the ``model`` config section, with unset weights."""
    architecture = model_settings["architecture"]
    if architecture == "mlp":
        return MLP(list(model_settings["hidden_units"]), dropout=dropout)
    if architecture == "lenet5":
        return LeNet5(dropout=dropout)
    if architecture == "resnet18":
        return ResNet18(dropout=dropout)
    raise ValueError(f"unknown model architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}")


def crossbar_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Return the (name, module) of every Linear and Conv2d layer, in forward order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]


def layer_geometries(model: nn.Module) -> list[LayerGeometry]:
    """Return the crossbar layout of every weight the model stores on chip."""
    geometries = []
    for name, module in crossbar_layers(model):
        rows, columns = matrix_shape(tuple(module.weight.shape))
        geometries.append(LayerGeometry(name=name, rows=rows, columns=columns))
    return geometries


def initialize_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Initialize every Linear and Conv2d layer from ``generator``.

    Uses the same distributions as PyTorch's default layer initialization (Kaiming-uniform
    weights with a = sqrt(5), biases uniform in +-1/sqrt(fan_in)) but draws from the given
    generator instead of the global one.
    """
    with torch.no_grad():
        for _, module in crossbar_layers(model):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                fan_in = math.prod(module.weight.shape[1:])
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)


def set_dropout_generator(model: nn.Module, generator: torch.Generator) -> None:
    """Give every SeededDropout module of ``model`` the same mask generator."""
    for module in model.modules():
        if isinstance(module, SeededDropout):
            module.set_generator(generator)
