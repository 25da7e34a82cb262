"""Keras' callbacks, epoch numbering and display on ember.Sequential.fit: each callback's effect is
checked against the engine doing the same thing by itself (the same bits) or against its rule."""
import io

import numpy as np
import pytest

import ember
from ember.callbacks import (CSVLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint,
                             ReduceLROnPlateau)


def data(rows=120, seed=3):
    rng = np.random.RandomState(seed)
    x = rng.randn(rows, 4).astype(np.float32)
    y = (x @ rng.randn(4, 1) + 0.5 * rng.randn(rows, 1)).astype(np.float32)
    return x, y


def model(optimizer="adam", lr=0.01, **settings):
    m = ember.Sequential([ember.Dense(32, "relu"), ember.Dense(1)], seed=5)
    m.compile(optimizer=optimizer, loss="mse", device="cpu", learning_rate=lr, **settings)
    return m


def same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_early_stopping_stops_where_the_engines_early_stopping_stops():
    x, y = data(60)
    fit = dict(epochs=200, batch_size=8, validation_split=0.3, verbose=0)
    engine = model()
    expected = engine.fit(x, y, early_stopping=3, restore_best=False, **fit)
    keras = model()
    stopper = EarlyStopping(monitor="val_loss", patience=3)
    history = keras.fit(x, y, callbacks=[stopper], **fit)
    assert expected.stopped == "early stopping" and len(expected.epoch) < 200
    assert history.epoch == expected.epoch and history.history["val_loss"] == expected.history["val_loss"]
    assert stopper.stopped_epoch == history.epoch[-1] and same_weights(keras, engine)
    assert stopper.best == min(history.history["val_loss"])


def test_early_stopping_restores_the_best_epochs_weights():
    x, y = data(60)
    seen = {}
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.__setitem__(epoch, m.get_weights()))
    m = model()
    stopper = EarlyStopping(patience=4, restore_best_weights=True)
    history = m.fit(x, y, epochs=200, batch_size=8, validation_split=0.3, callbacks=[keep, stopper], verbose=0)
    best = int(np.argmin(history.history["val_loss"]))
    assert stopper.best_epoch == best and history.epoch[-1] == best + 4
    assert all(np.array_equal(u, v) for u, v in zip(m.get_weights(), seen[best]))
    # A figure fit does not record is named, with what it records.
    with pytest.warns(UserWarning, match="'val_accuracy'.*val_loss"):
        model().fit(x, y, epochs=2, validation_split=0.3, callbacks=[EarlyStopping("val_accuracy")], verbose=0)


def test_model_checkpoint_saves_each_epochs_model(tmp_path):
    x, y = data()
    m = model()
    m.fit(x, y, epochs=3, verbose=0,
          callbacks=[ModelCheckpoint(tmp_path / "m-{epoch:02d}-{loss:.3f}.safetensors", save_best_only=False)])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and files[0].startswith("m-01-") and files[2].startswith("m-03-")
    two = model()
    two.fit(x, y, epochs=2, verbose=0)
    saved = ember.Sequential.load(tmp_path / files[1])
    assert saved.epochs_completed == 2 and same_weights(saved, two)
    assert np.array_equal(saved.predict(x), two.predict(x))

    # save_best_only: only epochs whose monitored figure improved write the file.
    best = model()
    losses = []
    best.fit(x, y, epochs=8, verbose=0, callbacks=[
        LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"])),
        ModelCheckpoint(tmp_path / "best.safetensors", monitor="loss", mode="max", save_best_only=True)])
    assert ember.Sequential.load(tmp_path / "best.safetensors").epochs_completed == int(np.argmax(losses)) + 1
    with pytest.raises(ember.InputError, match="whole model"):
        ModelCheckpoint(tmp_path / "w", save_weights_only=True)


def test_learning_rate_scheduler_trains_as_the_engines_step_decay():
    x, y = data()
    stepped = model(optimizer="sgd", lr=0.05, schedule=ember.StepDecay(step_epochs=2, gamma=0.5))
    expected = stepped.fit(x, y, epochs=5, verbose=0)
    m = model(optimizer="sgd", lr=0.05)
    # Keras' form: the rate carries from epoch to epoch, halved every second epoch.
    halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 and epoch % 2 == 0 else lr)
    history = m.fit(x, y, epochs=5, verbose=0, callbacks=[halve])
    assert history.history["lr"] == expected.history["lr"]
    assert history.history["lr"] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])
    assert same_weights(m, stepped)
    # schedule(epoch) alone works too; the rate outside fit is the optimizer's.
    rates = model(optimizer="sgd", lr=0.05).fit(x, y, epochs=3, verbose=0,
                                                callbacks=[LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))])
    assert rates.history["lr"] == pytest.approx([0.01, 0.02, 0.03])
    assert m.learning_rate == pytest.approx(0.05)
    with pytest.raises(ember.InputError, match="inside fit"):
        m.learning_rate = 0.1
    with pytest.raises(ember.InputError, match="finite"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: -1.0)])


def test_reduce_lr_on_plateau_reduces_after_patience():
    x, y = data()
    m = model(optimizer="sgd", lr=0.04)
    # In "max" mode a falling loss never improves: the rate halves after every second epoch.
    reduce = ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=2, min_lr=0.006)
    history = m.fit(x, y, epochs=8, verbose=0, callbacks=[reduce])
    assert all(a > b for a, b in zip(history.history["loss"], history.history["loss"][1:]))
    assert history.history["lr"] == pytest.approx([0.04, 0.04, 0.04, 0.02, 0.02, 0.01, 0.01, 0.006])


def test_functions_stop_training_and_initial_epoch(tmp_path):
    x, y = data()
    calls = []
    m = model()

    def stop_at_two(epoch, logs):
        calls.append((epoch, sorted(logs)))
        if epoch == 2:
            m.stop_training = True

    history = m.fit(x, y, epochs=10, verbose=0, callbacks=[stop_at_two])
    assert history.epoch == [0, 1, 2] and m.epochs_completed == 3 and history.stopped == "stop requested"
    assert calls[0] == (0, ["loss", "lr", "mae", "r2"])
    # Keras' initial_epoch: epochs is the last epoch's number; callbacks count from initial_epoch.
    seen = []
    history = m.fit(x, y, epochs=5, initial_epoch=3, verbose=0, callbacks=[lambda epoch, logs: seen.append(epoch)])
    assert history.epoch == [3, 4] and seen == [3, 4] and m.epochs_completed == 5
    with pytest.raises(ember.InputError, match="initial_epoch"):
        m.fit(x, y, epochs=2, initial_epoch=3, verbose=0)
    # CSVLogger: a row per epoch.
    log = tmp_path / "log.csv"
    model().fit(x, y, epochs=3, verbose=0, callbacks=[CSVLogger(log)])
    lines = log.read_text().splitlines()
    assert lines[0] == "epoch,loss,lr,mae,r2" and [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]


def test_a_callbacks_exception_ends_fit_at_its_epoch_and_the_model_is_not_usable_inside():
    x, y = data()
    m = model()

    def fail(epoch, logs):
        if epoch == 1:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        m.fit(x, y, epochs=5, verbose=0, callbacks=[fail])
    assert m.epochs_completed == 2
    two = model()
    two.fit(x, y, epochs=2, verbose=0)
    assert same_weights(m, two)
    with pytest.raises(ember.InputError, match="predict while fit runs"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[lambda epoch, logs: m.predict(x)])
    # The epoch whose callback raised is complete and kept; the model is usable again after fit.
    assert m.epochs_completed == 3 and m.predict(x).shape == (120, 1)
    with pytest.raises(ember.InputError, match="callbacks takes"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[3])


def test_verbose_two_prints_a_line_per_epoch_and_one_a_bar(capsys):
    x, y = data()
    model().fit(x, y, epochs=3, batch_size=32, validation_split=0.25, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2].startswith("Epoch 3/3 - ") and "ms/step - loss: " in lines[2]
    assert "val_loss: " in lines[2]
    model().fit(x, y, epochs=2, batch_size=32, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[1].startswith("4/4 ━") and " - loss: " in lines[1]
    assert "\r" not in "".join(lines)  # not a terminal: no redrawing

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    progress = ember.callbacks._Progress(1, 2, screen)
    progress.epoch_begin(0)
    progress.batch(1, 4)
    progress.epoch_end(0, {"loss": 0.5, "lr": 0.1}, 4, 0.01)
    text = screen.getvalue()
    assert text.startswith("Epoch 1/2\n\r1/4 ━━━━━") and "\r4/4 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - loss: 0.5000" in text


def test_keras_style_code_runs(tmp_path, capsys):
    x, y = data(200)
    m = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(1)])
    m.compile(optimizer="adam", loss="mse", metrics=["mae"], learning_rate=0.01)
    history = m.fit(x[:160], y[:160], epochs=30, batch_size=16, validation_data=(x[160:], y[160:]), verbose=0,
                    callbacks=[ember.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
                               ember.callbacks.ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)])
    m.summary()
    assert "Total params: 97" in capsys.readouterr().out
    assert m.evaluate(x[160:], y[160:])["r2"] > 0.5 and len(history.history["val_loss"]) >= 4
    assert ember.Sequential.load(tmp_path / "best.safetensors").epochs_completed == (
        int(np.argmin(history.history["val_loss"])) + 1)
