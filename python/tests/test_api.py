"""The Keras-style API from Python: arrays in and out, errors, the GIL, Ctrl-C, checkpoints."""
import json
import os
import pickle
import re
import signal
import subprocess
import threading
import time
import _thread

import numpy as np
import pytest

import ember


def seed_model(**compile_settings):
    model = ember.Sequential([ember.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", device="cpu", **compile_settings)
    return model


def regression_data(rows=200, features=4, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(rows, features).astype(np.float32)
    y = (x @ rng.randn(features) + 0.5).astype(np.float32)
    return x, y


def test_seed_example_predicts_five():
    model = seed_model()
    history = model.fit(np.array([[1], [2], [3], [4]]), np.array([1, 2, 3, 4]), epochs=1000, verbose=0)
    assert model.predict(np.array([[5]]))[0, 0] == pytest.approx(5, abs=0.01)
    assert len(history.history["loss"]) == 1000 and history.epoch == list(range(1000))  # Keras numbers epochs from 0
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_float32_c_arrays_are_read_in_place_and_others_converted_once():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert ember._matrix(x, "x") is x
    assert ember._core._address(x) == x.__array_interface__["data"][0]
    for other in (x.astype(np.float64), np.asfortranarray(x), x[:, ::2], x.astype(np.int64), x.tolist()):
        converted = ember._matrix(other, "x")
        assert converted.dtype == np.float32 and converted.flags.c_contiguous
        np.testing.assert_array_equal(converted, np.asarray(other, dtype=np.float32))
    assert ember._matrix(np.arange(3), "y").shape == (3, 1)


def test_every_layout_trains_the_same():
    x, y = regression_data()
    results = []
    for data in (x, x.astype(np.float64), np.asfortranarray(x)):
        model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(1)], seed=3).compile("adam", "mse", "cpu")
        model.fit(data, y, epochs=3, verbose=0)
        results.append(model.predict(x))
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0, np.nan]]), "input row 0 column 1 is not finite"),
    (np.array([[1.0, np.inf]]), "input row 0 column 1 is not finite"),
    (np.zeros((2, 2, 2)), "x must be 2-D"),
    (np.array([["a", "b"]]), "x must hold numbers"),
    (np.array([[1 + 2j, 1]]), "real numbers"),
])
def test_bad_inputs_raise_input_error(bad, message):
    model = ember.Sequential([ember.Dense(1)]).compile("sgd", "mse", "cpu")
    with pytest.raises(ember.InputError, match=message):
        model.fit(bad, np.ones(len(bad)), verbose=0)


def test_errors_are_python_exceptions_with_ember_messages():
    model = ember.Sequential([ember.Dense(1)]).compile("sgd", "mse", "cpu")
    with pytest.raises(ValueError, match="3 input rows do not match 2 target rows"):
        model.fit(np.ones((3, 2)), np.ones(2), verbose=0)
    model.fit(np.ones((3, 2)), np.ones(3), verbose=0)
    with pytest.raises(ember.InputError, match="the model takes 2 inputs but the data has 5"):
        model.predict(np.ones((1, 5)))
    with pytest.raises(ember.InputError, match="lr"):
        ember.Sequential([ember.Dense(1)]).compile("sgd", "mse", "cpu", lr=-1.0)
    with pytest.raises(ember.InputError, match="optimizer 'lion'"):
        ember.Sequential([ember.Dense(1)]).compile("lion")
    diverging = seed_model(lr=1e6)
    with pytest.raises(ember.DivergenceError, match="training diverged at epoch"):
        diverging.fit(np.arange(40.0).reshape(-1, 1), np.arange(40.0), epochs=3, verbose=0, normalize=False)
    assert issubclass(ember.DivergenceError, ember.Error)


def test_training_releases_the_gil():
    x, y = regression_data(rows=20000, features=32)
    model = ember.Sequential([ember.Dense(64, "relu"), ember.Dense(1)]).compile("adam", "mse", "cpu")
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    seconds = time.perf_counter() - start
    done.set()
    counter.join()
    # Once a millisecond when free to run; with the GIL held for the whole fit, about once.
    assert seconds > 0.05 and len(ticks) > seconds * 1000 / 10, (seconds, len(ticks))


def test_ctrl_c_stops_at_a_batch_and_keeps_the_completed_epochs():
    x, y = regression_data(rows=20000, features=32)
    model = ember.Sequential([ember.Dense(64, "relu"), ember.Dense(1)]).compile("adam", "mse", "cpu")
    epoch_seconds = time.perf_counter()
    model.fit(x, y, epochs=1, verbose=0)
    epoch_seconds = time.perf_counter() - epoch_seconds
    # Python's own Ctrl-C handler, even where SIGINT came ignored from the parent (a background job
    # of a shell): interrupt_main does nothing for an ignored signal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(epoch_seconds * 2.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, epochs=1000, verbose=0)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    completed = model.epochs_completed
    assert 1 < completed < 100
    # The weights are those of the last completed epoch: one more epoch from them runs normally.
    model.fit(x, y, epochs=1, verbose=0)
    assert model.epochs_completed == completed + 1


def test_verbose_prints_epochs_and_quiet_prints_nothing(capsys):
    seed_model().fit([[1], [2]], [1, 2], epochs=2, verbose=1)
    assert "Epoch 2" in capsys.readouterr().out
    seed_model().fit([[1], [2]], [1, 2], epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_classification_probabilities_and_evaluate():
    rng = np.random.RandomState(1)
    x = rng.randn(300, 2).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    model = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(3)], seed=2).compile("adam", "crossentropy", "cpu",
                                                                                       lr=0.01)
    history = model.fit(x, labels, epochs=30, validation_split=0.2, verbose=0)
    assert "accuracy" in history.history and "val_accuracy" in history.history
    probabilities = model.predict(x)
    assert probabilities.shape == (300, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    metrics = model.evaluate(x, labels)
    assert metrics["accuracy"] > 0.9 and np.sum(metrics["confusion"]) == 300
    assert (model.predict_classes(x) == np.argmax(probabilities, axis=1)).all()


def test_pickle_and_save_load_keep_the_model(tmp_path):
    x, y = regression_data()
    model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(1)]).compile("adam", "mse", "cpu")
    model.fit(x, y, epochs=2, verbose=0)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    model.save(tmp_path / "m.safetensors")
    loaded = ember.Sequential.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.epochs_completed == 2 and [l.units for l in loaded.layers] == [8, 1]


CLI = os.environ.get("EMBER_CLI")


@pytest.mark.skipif(not CLI, reason="EMBER_CLI names the ember binary (set by ctest)")
def test_checkpoints_cross_between_the_cli_and_python(tmp_path):
    x, y = regression_data(rows=100, features=3)
    data = tmp_path / "data.csv"
    np.savetxt(data, np.column_stack([x, y]), delimiter=",", header="a,b,c,y", comments="", fmt="%.9g")
    read = np.loadtxt(data, delimiter=",", skiprows=1, dtype=np.float32)
    # The CLI trains; Python predicts what `ember predict` predicts.
    subprocess.run([CLI, "train", "--data", str(data), "--target", "y", "--layers", "8", "--epochs", "3",
                    "--device", "cpu", "--quiet", "--save", str(tmp_path / "cli.safetensors")], check=True)
    out = tmp_path / "cli_predictions.csv"
    subprocess.run([CLI, "predict", "--model", str(tmp_path / "cli.safetensors"), "--data", str(data), "--device",
                    "cpu", "--quiet", "--out", str(out)], check=True)
    from_cli = np.loadtxt(out, delimiter=",", skiprows=1)
    model = ember.Sequential.load(tmp_path / "cli.safetensors")
    np.testing.assert_allclose(model.predict(read[:, :3])[:, 0], from_cli, rtol=1e-6)
    # Python trains; the CLI predicts what Python predicts.
    model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(1)]).compile("adam", "mse", "cpu")
    model.fit(read[:, :3], read[:, 3], epochs=3, verbose=0)
    model.save(tmp_path / "py.safetensors")
    features = tmp_path / "features.csv"  # a model trained on arrays takes every column, in order
    np.savetxt(features, read[:, :3], delimiter=",", header="a,b,c", comments="", fmt="%.9g")
    subprocess.run([CLI, "predict", "--model", str(tmp_path / "py.safetensors"), "--data", str(features), "--device",
                    "cpu", "--quiet", "--out", str(out)], check=True)
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1), model.predict(read[:, :3])[:, 0],
                               rtol=1e-6)


def test_set_num_threads_sets_the_limit_and_results_do_not_depend_on_it():
    default = ember.get_num_threads()
    assert default >= 1
    x = np.random.RandomState(3).uniform(-1, 1, (3000, 300)).astype(np.float32)
    model = ember.Sequential([ember.Dense(300, "relu"), ember.Dense(1)], seed=2)
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    model.fit(x[:64], x[:64, 0], epochs=1, verbose=0)
    try:
        ember.set_num_threads(3)
        assert ember.get_num_threads() == 3
        split = model.predict(x)  # big enough to be split into three blocks
        ember.set_num_threads(1)
        whole = model.predict(x)
        assert np.isfinite(split).all()
        ember.set_num_threads(3)
        assert np.array_equal(model.predict(x), split)  # the same bits run after run
        assert np.abs(whole - split).max() <= 1e-5 * np.abs(split).max()
        with pytest.raises(ember.InputError, match="use 1 or more threads"):
            ember.set_num_threads(-2)
    finally:
        ember.set_num_threads(0)
    assert ember.get_num_threads() == default


def test_every_activation_trains_and_round_trips(tmp_path):
    x, y = regression_data()
    names = ember.activation_names()
    assert names[:2] == ["linear", "relu"] and "gelu" in names and "gelu_tanh" in names
    for name in names:
        model = ember.Sequential([ember.Dense(16, name), ember.Dense(1)])
        model.compile(optimizer="adam", loss="mse", device="cpu")
        history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], name
        model.save(tmp_path / f"{name}.safetensors")
        loaded = ember.Sequential.load(tmp_path / f"{name}.safetensors")
        assert np.array_equal(loaded.predict(x), model.predict(x)), name
    with pytest.raises(ember.InputError, match="unknown activation 'swish'; use one of linear, relu"):
        ember.Dense(4, "swish")


def test_dropout_trains_predicts_as_the_identity_and_round_trips(tmp_path):
    x, y = regression_data()
    names = ember.layer_names()  # in the engine's order, each kind once
    assert names[:2] == ["dense", "dropout"] and len(set(names)) == len(names)
    model = ember.Sequential([ember.Dense(32, "relu"), ember.Dropout(0.25), ember.Dense(1)], seed=3)
    assert repr(model.layers[1]) == "Dropout(0.25)" and model.layers[1].rate == 0.25
    model.compile(optimizer="adam", loss="mse", device="cpu")
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.array_equal(model.predict(x), model.predict(x))  # no masks when predicting
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(4, 32), (32,), (32, 1), (1,)]  # Keras' layout; Dropout has none
    model.save(tmp_path / "dropout.safetensors")
    loaded = ember.Sequential.load(tmp_path / "dropout.safetensors")
    assert [repr(layer) for layer in loaded.layers] == ["Dense(32, 'relu')", "Dropout(0.25)", "Dense(1, 'linear')"]
    assert np.array_equal(loaded.predict(x), model.predict(x))
    for rate in (-0.1, 1.0):
        with pytest.raises(ember.InputError, match="a Dropout layer's rate must be 0 to below 1"):
            ember.Dropout(rate)
    with pytest.raises(ember.InputError, match="ends with a Dense layer"):
        ember.Sequential([ember.Dense(4), ember.Dropout(0.5)])


def test_layer_normalization_is_pytorchs_formula_trains_and_round_trips(tmp_path):
    x, y = regression_data()
    model = ember.Sequential([ember.LayerNormalization(), ember.Dense(16, "gelu"), ember.LayerNormalization(1e-3),
                              ember.Dense(1)], seed=2)
    assert repr(model.layers[2]) == "LayerNorm(0.001)" and model.layers[0].epsilon == pytest.approx(1e-5)
    model.compile(optimizer="adam", loss="mse", device="cpu", learning_rate=0.01)
    model.build(4)
    assert [w.shape for w in model.get_weights()] == [(4,), (4,), (4, 16), (16,), (16,), (16,), (16, 1), (1,)]
    assert model.count_params() == 8 + 5 * 16 + 32 + 17
    lines = []
    model.summary(print_fn=lines.append)
    assert re.search(r"LayerNorm\(1e-05\)\s+\(None, 4\)\s+8\n", lines[0]), lines[0]
    assert re.search(r"LayerNorm\(0\.001\)\s+\(None, 16\)\s+32\n", lines[0]), lines[0]
    # The first layer alone, against numpy: each row centred, divided by sqrt(var + eps), then
    # gamma * that + beta (Keras' names; PyTorch's weight and bias).
    rng = np.random.default_rng(3)
    gamma, beta = rng.normal(size=4).astype(np.float32), rng.normal(size=4).astype(np.float32)
    weights = model.get_weights()
    kernel = np.eye(4, 16, dtype=np.float32)
    model.set_weights([gamma, beta, kernel, np.zeros(16), np.ones(16), np.zeros(16), np.ones((16, 1)), np.zeros(1)])
    first = ember.Sequential([ember.LayerNormalization(), ember.Dense(4)]).compile(device="cpu")
    first.build(4)
    first.set_weights([gamma, beta, np.eye(4, dtype=np.float32), np.zeros(4)])
    rows = (3 * x[:50] + 7).astype(np.float32)
    first.fit(rows, rows, epochs=0, normalize=False, verbose=0)
    mean, var = rows.mean(axis=1, keepdims=True), rows.var(axis=1, keepdims=True)
    np.testing.assert_allclose(first.predict(rows), (rows - mean) / np.sqrt(var + 1e-5) * gamma + beta,
                               rtol=1e-4, atol=1e-5)
    model.set_weights(weights)
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert not np.array_equal(model.get_weights()[0], np.ones(4))  # gamma learns
    model.save(tmp_path / "layernorm.safetensors")
    loaded = ember.Sequential.load(tmp_path / "layernorm.safetensors")
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in model.layers]
    assert np.array_equal(loaded.predict(x), model.predict(x))
    for epsilon in (0, -1e-5):
        with pytest.raises(ember.InputError, match="a LayerNorm layer's epsilon must be positive and finite"):
            ember.LayerNormalization(epsilon)
    with pytest.raises(ember.InputError, match="epsilon inf is not a float32 number"):
        ember.LayerNormalization(float("inf"))
    with pytest.raises(TypeError, match="unexpected keyword argument 'eps'; it takes epsilon"):
        ember.LayerNormalization(eps=1e-3)
    with pytest.raises(ember.InputError, match="takes 8 arrays"):
        model.set_weights(weights[:6])
    with pytest.raises(ember.InputError, match="the gamma of layer 0"):
        model.set_weights([np.ones(5)] + weights[1:])


def test_batch_normalization_trains_predicts_with_running_figures_and_round_trips(tmp_path):
    x, y = regression_data()
    layer = ember.BatchNormalization()
    assert (layer.momentum, layer.epsilon) == (0.9, pytest.approx(1e-5))  # PyTorch's momentum 0.1, as Keras names it
    assert repr(ember.BatchNormalization(0.99, 1e-3)) == "BatchNormalization(momentum=0.99, epsilon=0.001)"
    model = ember.Sequential([ember.Dense(16, "relu"), ember.BatchNormalization(0.8), ember.Dense(1)], seed=2)
    model.compile(optimizer="adamw", loss="mse", device="cpu", learning_rate=0.01)
    model.build(4)
    # Keras' order and names: gamma, beta, moving_mean, moving_variance; all four count as parameters.
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(4, 16), (16,), (16,), (16,), (16,), (16,), (16, 1), (1,)]
    assert [w.tolist() for w in weights[2:6]] == [[1] * 16, [0] * 16, [0] * 16, [1] * 16]
    assert model.count_params() == 80 + 4 * 16 + 17
    lines = []
    model.summary(print_fn=lines.append)
    assert re.search(r"BatchNormalization\(momentum=0\.8, epsilon=1e-05\)\s+\(None, 16\)\s+64\n", lines[0]), lines[0]
    assert lines[0].endswith("Total params: 161\nTrainable params: 129\nNon-trainable params: 32"), lines[0]
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    moving_mean, moving_variance = model.get_weights()[4:6]
    assert np.all(moving_mean != 0) and np.all(moving_variance > 0) and np.all(moving_variance != 1)
    # Predicting uses the running figures: a row's output does not depend on its batch.
    np.testing.assert_array_equal(model.predict(x[:1]), model.predict(x)[:1])
    model.save(tmp_path / "batchnorm.safetensors")
    loaded = ember.Sequential.load(tmp_path / "batchnorm.safetensors")
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in model.layers]
    assert loaded.layers[1].momentum == 0.8
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # set_weights takes the running figures too, and checks them all before it changes any.
    changed = [w.copy() for w in model.get_weights()]
    changed[5] = changed[5] * 4
    model.set_weights(changed)
    assert not np.array_equal(model.predict(x), loaded.predict(x))
    with pytest.raises(ember.InputError, match="the moving_variance of layer 1 has 15 values"):
        model.set_weights(changed[:5] + [np.ones(15)] + changed[6:])
    np.testing.assert_array_equal(model.get_weights()[5], changed[5])
    # A checkpoint whose running variance is negative is refused, naming the file, layer and tensor.
    data = bytearray((tmp_path / "batchnorm.safetensors").read_bytes())
    header_size = int.from_bytes(data[:8], "little")
    begin = json.loads(data[8:8 + header_size])["layers.1.running_var"]["data_offsets"][0] + 8 + header_size
    data[begin:begin + 4] = np.float32(-2).tobytes()
    (tmp_path / "negative.safetensors").write_bytes(bytes(data))
    with pytest.raises(ember.InputError, match=r"negative\.safetensors.*layer 1's running_var: a BatchNorm layer's "
                                               r"running variance cannot be negative: -2 in column 0"):
        ember.Sequential.load(tmp_path / "negative.safetensors")
    for momentum in (-0.1, 1.5):
        with pytest.raises(ember.InputError, match="momentum, the running figures' weight"):
            ember.BatchNormalization(momentum)
    with pytest.raises(ember.InputError, match="a BatchNorm layer's epsilon must be positive and finite"):
        ember.BatchNormalization(epsilon=0)


def test_label_smoothing_trains_and_is_kept(tmp_path):
    x, y = regression_data()
    labels = (y > np.median(y)).astype(np.float32)
    model = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(1)])
    model.compile(optimizer="adam", loss=ember.CrossEntropy(label_smoothing=0.1), device="cpu", lr=0.01)
    history = model.fit(x, labels, epochs=20, verbose=0)
    assert model.evaluate(x, labels)["accuracy"] > 0.95
    # The smoothed loss cannot reach 0: at best each row's target (0.95, 0.05) against itself.
    assert history.history["loss"][-1] > -(0.95 * np.log(0.95) + 0.05 * np.log(0.05))
    model.save(tmp_path / "smoothed.safetensors")
    loaded = ember.Sequential.load(tmp_path / "smoothed.safetensors")
    assert np.array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(ember.InputError, match="label_smoothing"):
        model.compile(optimizer="adam", loss=ember.CrossEntropy(label_smoothing=1.0), device="cpu")


def test_clip_norm_is_kept_through_checkpoints(tmp_path):
    x, y = regression_data()
    model = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", device="cpu", clip_norm=0.5, lr=0.1)
    history = model.fit(x, y * 1000, epochs=3, verbose=0)  # large targets, normalized: still finite
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "clipped.safetensors")
    assert ember.Sequential.load(tmp_path / "clipped.safetensors").clip_norm == 0.5
    with pytest.raises(ember.InputError, match="clip_norm must be 0"):
        model.compile(optimizer="sgd", loss="mse", device="cpu", clip_norm=-1)


def test_every_optimizer_trains_by_name_and_resumes_from_its_checkpoint(tmp_path):
    x, y = regression_data()
    assert ember.optimizer_names()[:4] == ["sgd", "adam", "adamw", "rmsprop"]  # a new one joins the end
    for name in ember.optimizer_names():
        settings = {"momentum": 0.5} if name in ("sgd", "rmsprop") else {}
        model = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(1)])
        model.compile(optimizer=name, loss="mse", device="cpu", lr=0.003, **settings)
        history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], name
        model.save(tmp_path / f"{name}.safetensors")
        loaded = ember.Sequential.load(tmp_path / f"{name}.safetensors")
        assert np.array_equal(loaded.predict(x), model.predict(x)), name
    with pytest.raises(ember.InputError, match="optimizer 'lbfgs': use sgd, adam, adamw, rmsprop"):
        ember.Sequential([ember.Dense(1)]).compile(optimizer="lbfgs")
    with pytest.raises(TypeError):
        ember.Sequential([ember.Dense(1)]).compile(optimizer="rmsprop", beta1=0.9)  # not an RMSprop setting


def test_every_schedule_is_a_class_of_its_settings_and_travels_in_checkpoints(tmp_path):
    x, y = regression_data()
    classes = [getattr(ember, name) for name in ember._core.schedule_class_names()]
    assert len(classes) == len(ember.schedule_names()) >= 4
    for name, cls in zip(ember.schedule_names(), classes):
        default = cls()
        assert repr(default).startswith(cls.__name__ + "(") and cls() == default
        # Settings other than the defaults, by keyword: counts falling from 5 (a warm-up stays below
        # its epochs), numbers 0.25; counts read back as int.
        settings = {}
        for key in [part.split("=")[0] for part in repr(default)[len(cls.__name__) + 1:-1].split(", ") if part]:
            whole = isinstance(getattr(default, key), int)
            settings[key] = 5 - len(settings) if whole else 0.25
        made = cls(**settings)
        for key, value in settings.items():
            assert getattr(made, key) == value and type(getattr(made, key)) is type(value), (name, key)
            with pytest.raises(ember.InputError, match=f"{cls.__name__}::{key}|{key}"):
                cls(**{key: -1})
        assert cls(*settings.values()) == made  # positions in the same order
        with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_setting'"):
            cls(no_such_setting=1)
        model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(1)])
        model.compile(optimizer="sgd", loss="mse", device="cpu", schedule=made)
        model.fit(x, y, epochs=2, verbose=0)
        model.save(tmp_path / f"{name}.safetensors")
        assert ember.Sequential.load(tmp_path / f"{name}.safetensors").schedule == made, name
        by_name = ember.Sequential([ember.Dense(1)]).compile(optimizer="sgd", loss="mse", schedule=name)
        assert by_name.schedule == default
    with pytest.raises(ember.InputError, match="schedule 'linear': use ember.ConstantRate"):
        ember.Sequential([ember.Dense(1)]).compile(schedule="linear")
    with pytest.raises(ember.InputError, match="not a whole number"):
        ember.StepDecay(step_epochs=2.5)


def fruit_frame(rows=150):
    """colour (text, gaps), size (numbers, gaps), weight, and the kind of fruit (text)."""
    pd = pytest.importorskip("pandas")
    colours, kinds = ["red", "green", "blue"], ["apple", "pear", "plum"]
    return pd.DataFrame({
        "colour": [None if i % 13 == 0 else colours[i % 3] for i in range(rows)],
        "size": [np.nan if i % 11 == 0 else 1.5 + (i % 4) for i in range(rows)],
        "weight": [2.0 * (i % 3) + 0.1 * (i % 5) for i in range(rows)],
        "kind": [kinds[i % 3] for i in range(rows)],
    })


def test_dataframes_with_text_and_gaps_train_as_tables():
    frame = fruit_frame()
    model = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(3)]).compile("adam", "crossentropy", "cpu")
    model.fit(frame, target="kind", epochs=30, verbose=0)
    assert model.feature_names == ["colour", "size", "weight"] and model.target_names == ["kind"]
    assert model.classes == ["apple", "pear", "plum"]
    # Columns by name, in any order, others ignored; a gap and an unseen colour are fine.
    new = frame[["weight", "kind", "size", "colour"]].head(6).copy()
    new.loc[0, "colour"] = "violet"
    with pytest.warns(UserWarning, match="1 row holds a category that training never saw"):
        probabilities = model.predict(new)
    assert probabilities.shape == (6, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert model.evaluate(frame)["accuracy"] > 0.9
    # y given apart: the same table.
    again = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(3)]).compile("adam", "crossentropy", "cpu")
    again.fit(frame.drop(columns=["kind"]), frame["kind"], epochs=30, verbose=0)
    np.testing.assert_array_equal(again.predict(frame), model.predict(frame))
    with pytest.raises(ember.InputError, match="needs y or target="):
        model.fit(frame, epochs=1)
    with pytest.raises(ember.InputError, match="names columns of a DataFrame"):
        model.fit(np.zeros((3, 2)), np.zeros(3), target="y")
    with pytest.raises(ember.InputError, match="bins= encodes the numeric columns of a DataFrame"):
        model.fit(np.zeros((3, 2)), np.zeros(3), bins=4)
    fresh = ember.Sequential([ember.Dense(3)]).compile("adam", "crossentropy", "cpu")
    for bad in (1, 300):
        with pytest.raises(ember.InputError, match=f"bins is {bad}; use 0"):
            fresh.fit(frame, target="kind", epochs=1, bins=bad, verbose=0)
    with pytest.raises(ember.InputError, match="bins=-1"):
        fresh.fit(frame, target="kind", epochs=1, bins=-1, verbose=0)


@pytest.mark.skipif(not CLI, reason="EMBER_CLI names the ember binary (set by ctest)")
@pytest.mark.parametrize("bins", [0, 5])
def test_the_cli_and_python_train_the_same_model_from_the_same_table(tmp_path, bins):
    frame = fruit_frame()
    data = tmp_path / "fruit.csv"
    frame.to_csv(data, index=False)
    subprocess.run([CLI, "train", "--data", str(data), "--target", "kind", "--epochs", "5", "--device", "cpu",
                    "--bins", str(bins), "--quiet", "--save", str(tmp_path / "cli.safetensors")], check=True)
    from_cli = ember.Sequential.load(tmp_path / "cli.safetensors")
    # The CLI's defaults: two hidden layers of 64 (ReLU), SGD at 0.01, batch 32, seed 0, and for
    # this table's size an ensemble of networks from seeds 0, 1, ...
    members = ember._core.table_defaults(len(frame))["members"]
    assert members > 1 and from_cli.member_count == members
    model = ember.Sequential([ember.Dense(64, "relu"), ember.Dense(64, "relu"), ember.Dense(3)])
    model.compile("sgd", "crossentropy", "cpu")
    model.fit(frame, target="kind", epochs=5, verbose=0, bins=bins, members=members)
    assert model.member_count == members
    inputs = model.get_weights()[0].shape[0]  # colour: 3 and a gap; size: 1, its bins and a gap; weight: 1, its bins
    assert inputs > 7 if bins else inputs == 7
    for mine, theirs in zip(model.get_weights(), from_cli.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(model.predict(frame), from_cli.predict(frame))
    # A model trained from Python predicts in the CLI by column name.
    model.save(tmp_path / "py.safetensors")
    out = tmp_path / "predicted.csv"
    subprocess.run([CLI, "predict", "--model", str(tmp_path / "py.safetensors"), "--data", str(data), "--device",
                    "cpu", "--quiet", "--out", str(out)], check=True)
    import pandas as pd
    predicted = pd.read_csv(out)
    labels = np.array(model.classes)[np.argmax(model.predict(frame), axis=1)]
    assert list(predicted["kind_predicted"]) == list(labels)


def test_a_model_that_learned_its_columns_keeps_their_handling_when_fit_again(tmp_path):
    frame = fruit_frame()
    model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(3)]).compile("adam", "crossentropy", "cpu")
    model.fit(frame, target="kind", epochs=2, verbose=0, bins=4, missing="mean")
    weights = model.get_weights()[0].shape
    # colour inferred categorical, missing "mean", 4 bins: kept without repeating them.
    model.fit(frame, target="kind", epochs=3, initial_epoch=2, verbose=0)
    assert model.get_weights()[0].shape == weights
    with pytest.raises(ember.InputError, match="trained with bins 4, not 8"):
        model.fit(frame, target="kind", epochs=4, initial_epoch=3, verbose=0, bins=8)
    with pytest.raises(ember.InputError, match="trained with missing mean, not fill"):
        model.fit(frame, target="kind", epochs=4, initial_epoch=3, verbose=0, missing="fill")
    if not CLI:
        return
    # A CLI model of a larger table (bins by default, a text column) trains on from Python.
    rng = np.random.default_rng(0)
    large = fruit_frame(6000)
    large["weight"] += rng.normal(0, 0.1, len(large))
    data = tmp_path / "large.csv"
    large.to_csv(data, index=False)
    subprocess.run([CLI, "train", "--data", str(data), "--target", "kind", "--epochs", "1", "--device", "cpu",
                    "--quiet", "--save", str(tmp_path / "cli.safetensors")], check=True)
    from_cli = ember.Sequential.load(tmp_path / "cli.safetensors")
    from_cli.compile("sgd", "crossentropy", "cpu")
    from_cli.fit(large, target="kind", epochs=2, initial_epoch=1, verbose=0)
    assert from_cli.get_weights()[0].shape[0] > 20  # weight's bins among the inputs


def test_keras_helpers_summary_count_params_set_weights_learning_rate_metrics():
    model = ember.Sequential([ember.Dense(8, "relu"), ember.Dropout(0.1), ember.Dense(2)], seed=1)
    model.compile("adam", "mse", "cpu", learning_rate=0.01, metrics=["mae", "r2"])
    with pytest.raises(ember.InputError, match="not built yet"):
        model.count_params()
    model.build(3)
    assert model.count_params() == (3 + 1) * 8 + (8 + 1) * 2
    lines = []
    model.summary(print_fn=lines.append)
    assert "Dense(8, 'relu')" in lines[0] and "Total params: 50" in lines[0]
    # set_weights takes what get_weights gives (biases also as vectors), and predictions follow.
    weights = [np.full_like(w, 0.5) for w in model.get_weights()]
    weights[1] = weights[1].ravel()
    model.set_weights(weights)
    x = np.array([[1.0, -2.0, 0.5]], dtype=np.float32)
    model.fit(np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32), epochs=0, normalize=False, verbose=0)
    assert model.epochs_completed == 0
    hidden = np.maximum(x @ np.full((3, 8), 0.5) + 0.5, 0)
    np.testing.assert_allclose(model.predict(x), hidden @ np.full((8, 2), 0.5) + 0.5, rtol=1e-6)
    with pytest.raises(ember.InputError, match="takes 4 arrays"):
        model.set_weights(weights[:2])
    with pytest.raises(ember.InputError):
        model.set_weights([weights[0].T] + weights[1:])  # torch's layout, not Keras'
    # Keras' layout: x @ kernel + bias, and kernel.T is the checkpoint's (torch's) weight.
    kernel = np.arange(24, dtype=np.float32).reshape(3, 8) / 24
    model.set_weights([kernel, np.zeros(8)] + weights[2:])
    np.testing.assert_array_equal(model.get_weights()[0], kernel)
    np.testing.assert_allclose(model.predict(x), np.maximum(x @ kernel, 0) @ np.full((8, 2), 0.5) + 0.5, rtol=1e-6)
    with pytest.raises(ember.InputError, match="metric 'accuracy': a regression model records"):
        ember.Sequential([ember.Dense(1)]).compile("sgd", "mse", metrics=["accuracy"])
    ember.Sequential([ember.Dense(3)]).compile("sgd", "crossentropy", metrics=["accuracy"])
    history = model.fit(x, np.zeros((1, 2), np.float32), epochs=1, normalize=False, verbose=0)
    assert history.history["lr"] == [pytest.approx(0.01)]  # learning_rate= is lr
    with pytest.raises(ember.InputError, match="lr or learning_rate, not both"):
        ember.Sequential([ember.Dense(1)]).compile("sgd", "mse", lr=0.1, learning_rate=0.1)


def test_validation_data_validates_on_the_rows_given():
    x, y = regression_data(rows=100)
    given = seed_model().compile("adam", "mse", "cpu")
    split = seed_model().compile("adam", "mse", "cpu")
    a = given.fit(x[:75], y[:75], epochs=3, verbose=0, validation_data=(x[75:], y[75:]))
    b = split.fit(x, y, epochs=3, verbose=0, validation_split=0.25, validation_rows="last")
    assert a.history["val_loss"] == b.history["val_loss"] and len(a.history["val_loss"]) == 3
    with pytest.raises(ember.InputError, match="validation_data for an array fit is a tuple"):
        seed_model().fit(x, y, validation_data=x)
    with pytest.raises(ember.InputError, match="validation_split 0"):
        seed_model().compile("sgd", "mse", "cpu").fit(x, y, validation_split=0.2, validation_data=(x, y))
    # A DataFrame fit validates on a DataFrame of the same columns, the target among them.
    frame = fruit_frame()
    model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(3)]).compile("adam", "crossentropy", "cpu")
    history = model.fit(frame.iloc[:100], target="kind", epochs=2, verbose=0, validation_data=frame.iloc[100:])
    assert len(history.history["val_accuracy"]) == 2
    with pytest.raises(ember.InputError, match="is a DataFrame"):
        model.fit(frame, target="kind", validation_data=(np.zeros((2, 3)), np.zeros(2)))


def test_messages_speak_python():
    """Settings by their Python names, rows and columns from 0, as Python indexes them."""
    model = ember.Sequential([ember.Dense(2)])
    with pytest.raises(ember.InputError, match=r"^lr -1: must be"):
        model.compile("sgd", "mse", lr=-1)
    with pytest.raises(ember.InputError, match=r"^clip_norm must be"):
        model.compile("sgd", "mse", clip_norm=-1)
    if ember.cuda_unavailable_reason():
        with pytest.raises(ember.InputError, match=r'device="cuda".*use device="cpu" or device="auto"'):
            model.compile("sgd", "mse", device="cuda")
    model.compile("sgd", "mse", device="cpu")
    x = np.ones((4, 3), np.float32)
    x[2, 1] = np.inf
    with pytest.raises(ember.InputError, match=r"^input row 2 column 1 is not finite"):
        model.fit(x, np.ones((4, 2)), verbose=0)
    with pytest.raises(ember.InputError, match=r"^checkpoint_path is empty"):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), checkpoint_every=1, verbose=0)
    with pytest.raises(ember.InputError, match=r"^early_stopping -1"):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), early_stopping=-1, verbose=0)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0, np.inf], "b": ["x", "y", "z"], "t": [1.0, 2.0, 3.0]})
    with pytest.raises(ember.InputError, match=r"^DataFrame row 2 \(column 'a'\)"):
        ember.Sequential([ember.Dense(1)]).compile().fit(frame, target="t", verbose=0)
    y = np.stack([np.linspace(0, 1, 40), np.arange(40) % 3], axis=1)
    with pytest.warns(UserWarning, match=r'^target column 1 holds only the values 0, 1, 2.*use loss="crossentropy"'):
        model.fit(np.random.RandomState(0).rand(40, 3), y, verbose=0)


@pytest.mark.filterwarnings("ignore:The Dataframe Interchange Protocol is deprecated")
def test_tables_of_other_libraries_train_as_dataframes():
    """Anything with the dataframe interchange protocol or Arrow data trains and predicts as the
    pandas DataFrame it converts to (here pandas' own interchange object, which is no DataFrame)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"size": rng.rand(60), "city": rng.choice(["a", "b", None], 60), "price": rng.rand(60)})
    direct = ember.Sequential([ember.Dense(4, "relu"), ember.Dense(1)]).compile("adam", "mse", "cpu")
    direct.fit(frame, target="price", epochs=3, verbose=0)
    other = ember.Sequential([ember.Dense(4, "relu"), ember.Dense(1)]).compile("adam", "mse", "cpu")
    table = frame.__dataframe__()
    assert not hasattr(table, "to_csv")
    other.fit(table, target="price", epochs=3, verbose=0)
    assert other.feature_names == ["size", "city"]
    np.testing.assert_array_equal(other.predict(table), direct.predict(frame))
    from ember.sklearn import EmberRegressor
    estimator = EmberRegressor(hidden_layer_sizes=(4,), epochs=2, device="cpu", random_state=0)
    features = frame.drop(columns=["price"])
    estimator.fit(features.__dataframe__(), frame["price"])
    np.testing.assert_array_equal(estimator.predict(features.__dataframe__()), estimator.predict(features))


def test_sample_weight_weighs_rows_as_copies_of_them():
    rng = np.random.RandomState(4)
    x = rng.randn(50, 3).astype(np.float32)
    y = (x @ rng.randn(3, 1)).astype(np.float32)
    weights = np.arange(50) % 4

    def fit(xs, ys, **more):
        model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(1)], seed=2).compile("sgd", "mse", "cpu", lr=0.05)
        model.fit(xs, ys, epochs=10, batch_size=1000, shuffle=False, normalize=False, verbose=0, **more)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    by_weight = fit(x, y, sample_weight=weights)
    by_copies = fit(np.repeat(x, weights, axis=0), np.repeat(y, weights, axis=0))
    np.testing.assert_allclose(by_weight, by_copies, atol=2e-5)
    assert np.array_equal(fit(x, y, sample_weight=np.ones(50)), fit(x, y))  # factors of exactly 1
    assert np.abs(fit(x, y) - by_copies).max() > 1e-3
    with pytest.raises(ember.InputError, match=r"sample_weight\[7\] is -1.0"):
        fit(x, y, sample_weight=np.where(np.arange(50) == 7, -1, 1))
    with pytest.raises(ember.InputError, match=r"one weight per row of x: \(50,\)"):
        fit(x, y, sample_weight=np.ones(49))
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": x[:, 0], "city": np.where(x[:, 1] > 0, "x", None), "y": y[:, 0]})
    tables = [ember.Sequential([ember.Dense(1)], seed=2).compile("sgd", "mse", "cpu") for _ in range(2)]
    tables[0].fit(frame, target="y", epochs=2, verbose=0, sample_weight=np.ones(50))
    tables[1].fit(frame, target="y", epochs=2, verbose=0)
    assert np.array_equal(tables[0].predict(frame), tables[1].predict(frame))


def test_embedding_is_keras_embedding_then_flatten_trains_and_round_trips(tmp_path):
    # One number passing through, then a category index 0 to 4 whose effect the target carries.
    rng = np.random.default_rng(6)
    x = np.column_stack([rng.uniform(size=400), rng.integers(0, 5, size=400)]).astype(np.float32)
    effect = np.array([-3, 0, 2, 5, 1], dtype=np.float32)
    y = (4 * x[:, :1] + effect[x[:, 1].astype(int)][:, None]).astype(np.float32)
    model = ember.Sequential([ember.Embedding(5, 3, columns=1), ember.Dense(16, "relu"), ember.Dense(1)], seed=1)
    assert repr(model.layers[0]) == "Embedding(5, 3, columns=1)"
    assert (model.layers[0].input_dim, model.layers[0].output_dim, model.layers[0].columns) == (5, 3, 1)
    model.compile(optimizer="adam", loss="mse", device="cpu", learning_rate=0.01)
    model.build(2)
    assert [w.shape for w in model.get_weights()] == [(5, 3), (4, 16), (16,), (16, 1), (1,)]
    lines = []
    model.summary(print_fn=lines.append)
    assert re.search(r"Embedding\(5, 3, columns=1\)\s+\(None, 4\)\s+15\n", lines[0]), lines[0]
    # The lookup against numpy: the passed value, then the index's row of the table.
    table = rng.normal(size=(5, 3)).astype(np.float32)
    weights = model.get_weights()
    probe = ember.Sequential([ember.Embedding(5, 3, columns=1), ember.Dense(4)]).compile(device="cpu")
    probe.build(2)
    probe.set_weights([table, np.eye(4, dtype=np.float32), np.zeros(4)])
    np.testing.assert_array_equal(probe.predict(x[:20]), np.hstack([x[:20, :1], table[x[:20, 1].astype(int)]]))
    model.set_weights(weights)
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    assert 1 - ((model.predict(x) - y) ** 2).mean() / y.var() > 0.95
    model.save(tmp_path / "embedding.safetensors")
    loaded = ember.Sequential.load(tmp_path / "embedding.safetensors")
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in model.layers]
    assert np.array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(ember.InputError, match=r"input row 0 column 1 is 5(\.0)?, not a category index"):
        model.predict(np.array([[0.5, 5]], dtype=np.float32))
    with pytest.raises(ember.InputError, match="an Embedding layer's output_dim must be 1 to"):
        ember.Embedding(5, 0)
    with pytest.raises(ember.InputError, match="it must be the first layer"):
        ember.Sequential([ember.Dense(3), ember.Embedding(5, 2), ember.Dense(1)]).build(2)
    with pytest.raises(ember.InputError, match="takes 5 arrays"):
        model.set_weights(weights[1:])


def test_members_train_as_one_model_that_predicts_their_mean(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.1 * rng.normal(size=120)).astype(np.float32)
    seen = []
    model = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(1)], seed=4).compile("adam", "mse", "cpu")
    history = model.fit(x, y, epochs=4, members=3, verbose=0,
                        callbacks=[lambda epoch, logs: seen.append(epoch)])
    assert model.member_count == 3 and len(history.epoch) == 4
    assert seen == [0, 1, 2, 3] * 3  # each network's epochs in turn
    lines = []
    model.summary(print_fn=lines.append)
    assert "Members: 3 networks of these layers" in lines[0]
    # The first network is the one model of the same seed; the ensemble predicts otherwise.
    one = ember.Sequential([ember.Dense(8, "relu"), ember.Dense(1)], seed=4).compile("adam", "mse", "cpu")
    one.fit(x, y, epochs=4, verbose=0)
    for mine, theirs in zip(model.get_weights(), one.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(model.predict(x), one.predict(x))
    model.save(tmp_path / "three.safetensors")
    loaded = ember.Sequential.load(tmp_path / "three.safetensors")
    assert loaded.member_count == 3
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for members in (0, 65, 2.5, True):
        with pytest.raises(ember.InputError, match="members="):
            ember.Sequential([ember.Dense(1)]).compile("sgd", "mse", "cpu").fit(x, y, members=members, verbose=0)
    with pytest.raises(ember.InputError, match="has 3 members"):
        model.fit(x, y, members=2, verbose=0)
