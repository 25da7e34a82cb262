"""Ember's formulas against PyTorch's: the same weights and rows trained a few full-batch steps by
Ember and by torch (in float64) reach the same losses and weights. Each activation, LayerNorm, Embedding,
each loss (label smoothing included), each optimizer and gradient clipping is covered; a part
registered in Ember but missing here fails the coverage test. Runs where torch is installed
(Debian's python3-torch in CI)."""
import numpy as np
import pytest

import ember

torch = pytest.importorskip("torch")


@pytest.fixture(params=["cpu", "cuda"], autouse=True)
def device(request):
    """Every test on the CPU, and on the GPU where one is usable."""
    if request.param == "cuda" and ember.cuda_unavailable_reason():
        pytest.skip(f"no usable GPU: {ember.cuda_unavailable_reason()}")
    return request.param


# float32 training against a float64 reference, over a few steps: relative error of the weights.
RTOL, ATOL = 2e-4, 2e-6

# Activations go by torch's names and defaults (torch.tanh, torch.nn.functional.leaky_relu with its
# slope 0.01, ...), so that a new one is found here by its name; these two are spelled otherwise.
SPELLED_OTHERWISE = {"linear": lambda z: z,
                     "gelu_tanh": lambda z: torch.nn.functional.gelu(z, approximate="tanh")}


def torch_activation(name):
    function = SPELLED_OTHERWISE.get(name) or getattr(torch, name, None) or getattr(torch.nn.functional, name, None)
    assert function is not None, f"activation '{name}': neither torch nor torch.nn.functional has it; map it here"
    return function


class Applied(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, z):
        return self.function(z)


# Each optimizer with settings away from its defaults, and torch's optimizer of the same meaning.
OPTIMIZERS = {
    "sgd": (ember.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam": (ember.Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=0.02),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.02)),
    "adamw": (ember.AdamW(lr=0.01, beta1=0.85, beta2=0.995, eps=1e-6, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.85, 0.995), eps=1e-6, weight_decay=0.1)),
    "rmsprop": (ember.RMSprop(lr=0.005, alpha=0.95, eps=1e-6, weight_decay=0.01, momentum=0.5),
                lambda p: torch.optim.RMSprop(p, lr=0.005, alpha=0.95, eps=1e-6, weight_decay=0.01, momentum=0.5)),
    "adagrad": (ember.Adagrad(lr=0.05, weight_decay=0.01, eps=1e-6),
                lambda p: torch.optim.Adagrad(p, lr=0.05, weight_decay=0.01, eps=1e-6)),
}


def rows(count=40, features=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, features)).astype(np.float32)
    y = (np.sin(x[:, :1] * 2) + x[:, 1:2] * x[:, 2:3] + 0.1 * rng.normal(size=(count, 1))).astype(np.float32)
    return x, y


class EmbeddingFlat(torch.nn.Module):
    """torch.nn.Embedding over the last `columns` inputs, flattened after the inputs that pass through."""

    def __init__(self, layer, inputs):
        super().__init__()
        self.columns = layer.columns or inputs
        self.table = torch.nn.Embedding(layer.input_dim, layer.output_dim)
        self.table.weight.untransposed = True  # Keras' layout is torch's: (input_dim, output_dim)

    def forward(self, z):
        passed = z.shape[1] - self.columns
        vectors = self.table(z[:, passed:].long()).flatten(1)
        return torch.cat([z[:, :passed], vectors], dim=1)


class RMSNormFormula(torch.nn.Module):
    """torch.nn.RMSNorm's formula (torch 2.4 and later have the module): x / sqrt(mean(x^2) + eps) * weight."""

    def __init__(self, width, eps):
        super().__init__()
        self.eps, self.weight = eps, torch.nn.Parameter(torch.ones(width))

    def forward(self, z):
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + self.eps) * self.weight


def torch_model(layers, inputs):
    """torch.nn.Sequential of the same layers, in float64."""
    modules, width = [], inputs
    for layer in layers:
        if isinstance(layer, ember.Dense):
            modules += [torch.nn.Linear(width, layer.units), Applied(torch_activation(layer.activation))]
            width = layer.units
        elif isinstance(layer, ember.LayerNormalization):
            modules.append(torch.nn.LayerNorm(width, eps=layer.epsilon))
        elif isinstance(layer, ember.RMSNormalization):
            rms_norm = getattr(torch.nn, "RMSNorm", RMSNormFormula)
            modules.append(rms_norm(width, eps=layer.epsilon))
        elif isinstance(layer, ember.BatchNormalization):  # Keras' momentum: torch's is 1 - it
            modules.append(torch.nn.BatchNorm1d(width, eps=layer.epsilon, momentum=1 - layer.momentum))
        elif isinstance(layer, ember.Embedding):
            modules.append(EmbeddingFlat(layer, width))
            width += modules[-1].columns * (layer.output_dim - 1)
        else:
            raise AssertionError(f"no torch module for {layer!r}")
    return torch.nn.Sequential(*modules).double()


def torch_tensors(module):
    """The module's tensors in get_weights' order: each layer's parameters, then a BatchNorm1d's
    running figures (buffers in torch, state in Ember)."""
    tensors = []
    for layer in module.modules():
        tensors += list(layer.parameters(recurse=False))
        if isinstance(layer, torch.nn.BatchNorm1d):
            tensors += [layer.running_mean, layer.running_var]
    return tensors


def set_torch_weights(module, weights):
    """Ember's get_weights (Keras' layout: a Dense kernel is (inputs, units)) into torch's."""
    parameters = torch_tensors(module)
    assert len(parameters) == len(weights)
    with torch.no_grad():
        for parameter, value in zip(parameters, weights):
            transpose = value.ndim == 2 and not getattr(parameter, "untransposed", False)
            parameter.copy_(torch.from_numpy(np.asarray(value, dtype=np.float64).T.copy()
                                             if transpose else np.asarray(value, dtype=np.float64)))


def torch_weights(module):
    return [p.detach().numpy().T if p.ndim == 2 and not getattr(p, "untransposed", False) else p.detach().numpy()
            for p in torch_tensors(module)]


def train_both(device, layers, x, y, loss, torch_loss, optimizer=None, torch_optimizer=None, steps=4,
               clip_norm=0.0, seed=1, link=lambda z: z):
    """Full-batch steps by Ember (no shuffling, no normalization) and by torch from the same random
    weights; returns both (losses per step, weights after the steps, predictions before: link of
    torch's outputs, what predict returns for them)."""
    if optimizer is None:
        optimizer, torch_optimizer = ember.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)
    model = ember.Sequential(layers, seed=seed).compile(optimizer=optimizer, loss=loss, device=device,
                                                        clip_norm=clip_norm)
    model.build(x.shape[1])
    # Random weights everywhere, LayerNorm's gamma and beta too, so that no term is trivially 1 or 0.
    rng = np.random.default_rng(seed)
    start = [(rng.normal(size=w.shape) * (0.6 if w.ndim == 2 else 0.3)).astype(np.float32)
             for w in model.get_weights()]
    names = [name for _, tensors in model._model._get_weights() for name, _ in tensors]
    start = [np.abs(w) + 0.5 if name == "running_var" else w for name, w in zip(names, start)]  # a variance
    model.set_weights(start)
    before = model.predict(x)
    history = model.fit(x, y, epochs=steps, batch_size=len(x), shuffle=False, normalize=False, verbose=0)

    reference = torch_model(layers, x.shape[1])
    set_torch_weights(reference, start)
    inputs = torch.from_numpy(x.astype(np.float64))
    reference.eval()  # predict's mode (a BatchNorm's running figures), then training's
    with torch.no_grad():
        torch_before = link(reference(inputs)).numpy()
    reference.train()
    update = torch_optimizer(reference.parameters())
    losses = []
    for _ in range(steps):
        update.zero_grad()
        value = torch_loss(reference(inputs))
        value.backward()
        if clip_norm:
            torch.nn.utils.clip_grad_norm_(reference.parameters(), clip_norm)
        update.step()
        losses.append(value.item())
    return ((history.history["loss"], model.get_weights(), before),
            (losses, torch_weights(reference), torch_before))


def assert_same(ours, theirs):
    (losses, weights, before), (torch_losses, torch_weights_, torch_before) = ours, theirs
    np.testing.assert_allclose(before, torch_before, rtol=RTOL, atol=ATOL, err_msg="predictions before training")
    np.testing.assert_allclose(losses, torch_losses, rtol=RTOL, atol=ATOL, err_msg="losses per step")
    assert len(weights) == len(torch_weights_)
    for index, (mine, reference) in enumerate(zip(weights, torch_weights_)):
        np.testing.assert_allclose(mine, reference, rtol=RTOL, atol=ATOL, err_msg=f"weights array {index}")


def mse(y):
    target = torch.from_numpy(y.astype(np.float64))
    return lambda z: torch.nn.functional.mse_loss(z, target)


@pytest.mark.parametrize("activation", ember.activation_names())
def test_each_activation_is_torchs(activation, device):
    x, y = rows()
    layers = [ember.Dense(7, activation), ember.Dense(6, activation), ember.Dense(1)]
    assert_same(*train_both(device, layers, x, y, "mse", mse(y)))


def test_layer_norm_is_torchs(device):
    x, y = rows(features=6)
    x = 3 * x + 2  # rows with a mean and a scale of their own
    layers = [ember.LayerNormalization(), ember.Dense(8, "gelu"), ember.LayerNormalization(1e-3), ember.Dense(2)]
    y2 = np.hstack([y, -y])
    assert_same(*train_both(device, layers, x, y2, "mse", mse(y2)))


def test_rms_norm_is_torchs(device):
    x, y = rows(features=6)
    x = 3 * x + 2
    layers = [ember.RMSNormalization(), ember.Dense(8, "silu"), ember.RMSNormalization(1e-3), ember.Dense(2)]
    y2 = np.hstack([y, -y])
    assert_same(*train_both(device, layers, x, y2, "mse", mse(y2)))


def test_batch_norm_is_torchs(device):
    # Training normalizes by the batch and moves the running figures (compared after the steps);
    # the predictions before training use the random running figures, as torch's eval mode.
    x, y = rows(features=6)
    x = 3 * x + 2  # columns with a mean and a scale of their own
    layers = [ember.BatchNormalization(0.8), ember.Dense(8, "gelu"), ember.BatchNormalization(0.9, 1e-3),
              ember.Dense(2)]
    y2 = np.hstack([y, -y])
    assert_same(*train_both(device, layers, x, y2, "mse", mse(y2)))


def test_embedding_is_torchs(device):
    # Two index columns into one table (some categories unused, others repeated), one value passing through.
    x, y = rows(features=3)
    x[:, 1:] = np.random.default_rng(5).integers(0, 7, size=(len(x), 2))
    layers = [ember.Embedding(9, 4, columns=2), ember.Dense(8, "tanh"), ember.Dense(1)]
    assert_same(*train_both(device, layers, x, y, "mse", mse(y)))


@pytest.mark.parametrize("delta", [0.3, 1.0])
def test_huber_is_torchs(delta, device):
    x, y = rows()
    target = torch.from_numpy(3 * y.astype(np.float64))
    assert_same(*train_both(device, [ember.Dense(8, "tanh"), ember.Dense(1)], x, 3 * y, ember.Huber(delta),
                            lambda z: torch.nn.functional.huber_loss(z, target, delta=delta)))


def test_mean_absolute_error_is_torchs_l1_loss(device):
    x, y = rows()
    target = torch.from_numpy(3 * y.astype(np.float64))
    assert_same(*train_both(device, [ember.Dense(8, "tanh"), ember.Dense(1)], x, 3 * y, ember.MeanAbsoluteError(),
                            lambda z: torch.nn.functional.l1_loss(z, target)))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_over_classes_is_torchs(smoothing, device):
    x, y = rows(count=60)
    labels = np.digitize(y[:, 0], np.quantile(y[:, 0], [1 / 3, 2 / 3])).astype(np.float32)
    assert set(labels) == {0, 1, 2}
    target = torch.from_numpy(labels.astype(np.int64))
    assert_same(*train_both(device, [ember.Dense(8, "silu"), ember.Dense(3)], x, labels[:, None],
                            ember.CrossEntropy(label_smoothing=smoothing),
                            lambda z: torch.nn.functional.cross_entropy(z, target, label_smoothing=smoothing),
                            link=lambda z: torch.softmax(z, dim=1)))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_of_two_classes_is_torchs_logistic_loss(smoothing, device):
    x, y = rows(count=50)
    labels = (y[:, 0] > np.median(y)).astype(np.float32)
    # Keras' BinaryCrossentropy(label_smoothing): targets pulled halfway toward 1/2 by the factor.
    target = torch.from_numpy(labels.astype(np.float64)[:, None] * (1 - smoothing) + smoothing / 2)
    assert_same(*train_both(device, [ember.Dense(8, "relu"), ember.Dense(1)], x, labels[:, None],
                            ember.CrossEntropy(label_smoothing=smoothing),
                            lambda z: torch.nn.functional.binary_cross_entropy_with_logits(z, target),
                            link=lambda z: torch.cat([1 - torch.sigmoid(z), torch.sigmoid(z)], dim=1)))


@pytest.mark.parametrize("name", ember.optimizer_names())
def test_each_optimizer_is_torchs(name, device):
    x, y = rows()
    optimizer, torch_optimizer = OPTIMIZERS[name]
    layers = [ember.Dense(8, "tanh"), ember.LayerNormalization(), ember.Dense(1)]
    assert_same(*train_both(device, layers, x, y, "mse", mse(y), optimizer, torch_optimizer, steps=6))


def test_clip_norm_is_torchs_clip_grad_norm(device):
    x, y = rows()
    y = 10 * y  # gradients far above the bound, so that every step clips
    assert_same(*train_both(device, [ember.Dense(8, "relu"), ember.Dense(1)], x, y, "mse", mse(y), clip_norm=0.5))


def test_every_registered_part_is_covered_here():
    """A part registered in Ember has its torch counterpart in this file."""
    for name in ember.activation_names():  # test_each_activation_is_torchs runs each
        torch_activation(name)
    assert set(ember.optimizer_names()) == set(OPTIMIZERS)
    assert set(ember.loss_names()) == {"mse", "huber", "mae", "crossentropy"}  # one test each above
    # Layers: those below have their torch twins in this file. Dropout draws its own masks (torch's
    # generator is not Ember's): tests/layers_test.cpp checks its masks; in inference it is
    # the identity (test_api.py). Each kind's float64 form is in its tests/layers/NAME_test.cpp.
    assert {"dense", "dropout", "layernorm", "embedding", "batchnorm", "rmsnorm"} <= set(ember.layer_names())
