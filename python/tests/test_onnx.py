"""ONNX export: ONNX Runtime, given the raw rows, predicts what Ember predicts.

Regression outputs must agree within 1e-5 relative (to the largest prediction: float32 sums of
different order differ by a few ulps of their largest terms), probabilities within 1e-6 absolute,
labels exactly.
"""
import csv
import os
import subprocess

import numpy as np
import pytest

import ember

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.skipif(not ember.onnx_export_available(), reason="this build of Ember has no ONNX export")

CLI = os.environ.get("EMBER_CLI")
needs_cli = pytest.mark.skipif(not CLI, reason="EMBER_CLI names the ember binary (set by ctest)")
# The cells Ember's CSV reader reads as missing (docs/formats.md).
MISSING = {"", "NA", "N/A", "n/a", "#N/A", "<NA>", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None"}


def checked_session(path):
    """The file passes ONNX's full checker (shape inference included) and loads in ONNX Runtime."""
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def feeds_from_csv(session, path):
    """Each graph input from the CSV column of its name, as a user would read it: the trimmed
    cells as text for a category, numbers as float32 with NaN for a missing cell."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    feeds = {}
    for graph_input in session.get_inputs():
        cells = [row[graph_input.name].strip() for row in rows]
        if graph_input.type == "tensor(string)":
            feeds[graph_input.name] = np.array(cells, dtype=object).reshape(-1, 1)
        else:
            values = [np.nan if cell in MISSING else float(cell) for cell in cells]
            feeds[graph_input.name] = np.array(values, dtype=np.float32).reshape(-1, 1)
    return feeds


def write_table(path, rows, seed, unseen=False):
    """size (numbers, gaps), city (text, gaps, a category unseen in training where asked), age,
    grade (few whole numbers), price (a number driven by them) and kind (three classes)."""
    rng = np.random.default_rng(seed)
    cities = ["paris", "lyon", "nice", "NA", ""] + (["lille"] if unseen else [])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["size", "city", "age", "grade", "price", "kind", "big"])
        for _ in range(rows):
            size = rng.normal(100, 30)
            city = cities[rng.integers(len(cities))]
            age = rng.uniform(0, 50)
            price = 2 * size + {"paris": 50, "lyon": 20, "nice": 30}.get(city, 0) - age + rng.normal(0, 5)
            kind = "large" if size > 110 else ("mid" if size > 90 else "small")
            writer.writerow([f"{size:.3f}" if rng.random() > 0.1 else "", f" {city}", f"{age:.2f}",
                             int(rng.integers(1, 4)), f"{price:.2f}", kind, "yes" if size > 100 else "no"])


def ember_predictions(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def assert_outputs_match(model, outputs, header, body, classification):
    assert [o.name for o in model.graph.output] == (["label", "probabilities"] if classification else ["predictions"])
    width = len(header) - (1 if classification else 0)
    if not classification:  # a row ember predict leaves out is one empty cell (a blank line)
        expected = np.array([[float(cell) if cell else np.nan for cell in row] or [np.nan] * width for row in body])
        got = outputs[0]
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        scale = np.nanmax(np.abs(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)
        return
    labels, probabilities = outputs
    assert list(labels) == [row[0] if row else "" for row in body]
    expected = np.array([[float(cell) if cell else np.nan for cell in row[1:]] or [np.nan] * width for row in body])
    np.testing.assert_array_equal(np.isnan(probabilities), np.isnan(expected))
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)


@needs_cli
@pytest.mark.parametrize("target", ["price", "kind", "big"])
@pytest.mark.parametrize("missing", ["fill", "mean", "drop"])
def test_cli_models_of_tables_with_text_and_gaps_run_in_onnx_runtime_as_ember_predict(tmp_path, target, missing):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_table(train, 300, seed=1)
    write_table(test, 120, seed=2, unseen=True)
    checkpoint, exported, predicted = tmp_path / "m.safetensors", tmp_path / "m.onnx", tmp_path / "p.csv"
    others = [column for column in ("price", "kind", "big") if column != target]
    bins = "0" if target == "big" else "4"  # piecewise-linear bins of the numbers, or none
    subprocess.run([CLI, "train", "--data", str(train), "--target", target, "--ignore", ",".join(others),
                    "--missing", missing, "--layers", "16:tanh,dropout:0.1,8:gelu", "--epochs", "15", "--bins", bins,
                    "--device", "cpu", "--quiet", "--save", str(checkpoint)], check=True)
    subprocess.run([CLI, "export", "--model", str(checkpoint), "--out", str(exported), "--quiet"], check=True)
    subprocess.run([CLI, "predict", "--model", str(checkpoint), "--data", str(test), "--device", "cpu", "--quiet",
                    "--out", str(predicted)], check=True, capture_output=True)
    model, session = checked_session(exported)
    assert any(node.op_type == "Clip" for node in model.graph.node) == (bins != "0")
    assert [i.name for i in session.get_inputs()] == ["size", "city", "age", "grade"]
    assert [i.type for i in session.get_inputs()] == ["tensor(float)", "tensor(string)", "tensor(float)",
                                                      "tensor(float)"]
    outputs = session.run(None, feeds_from_csv(session, test))
    header, body = ember_predictions(predicted)
    classification = target != "price"
    assert_outputs_match(model, outputs, header, body, classification)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["ember.task"] == ("classification" if classification else "regression")
    assert metadata["ember.missing"] == missing
    if classification:
        assert metadata["ember.classes"] == {"kind": '["large","mid","small"]', "big": '["no","yes"]'}[target]
    if missing == "drop":  # rows with a missing cell predict NaN (and no label), as ember predict
        assert (np.isnan(outputs[-1]).any(axis=1)).sum() > 0


def test_every_layer_part_and_activation_exports_and_runs_as_predict(tmp_path):
    # One model per activation, every layer kind in it: those made from their settings alone at their
    # defaults, so that a kind added to the engine is exported here. An Embedding takes the model's
    # input: it is first, on the last column.
    layer_of_kind = {"embedding": lambda activation: ember.Embedding(6, 3, columns=1),
                     "dense": lambda activation: ember.Dense(12, activation),
                     "batchnorm": lambda activation: ember.BatchNormalization(0.5)}
    for name, class_name in zip(ember.layer_names(), ember._core.layer_class_names()):
        layer_of_kind.setdefault(name, lambda activation, make=getattr(ember, class_name): make())
    assert len(layer_of_kind) == len(ember.layer_names()) >= 6
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    x[:, -1] = rng.integers(0, 6, size=64)
    y = (x @ rng.normal(size=(5, 2))).astype(np.float32)
    for activation in ember.activation_names():
        layers = [make(activation) for make in layer_of_kind.values()] + [ember.Dense(2)]
        model = ember.Sequential(layers, seed=4).compile("adam", "mse", "cpu")
        model.fit(x, y, epochs=3, verbose=0)
        path = tmp_path / f"{activation}.onnx"
        model.export_onnx(path)
        graph, session = checked_session(path)
        assert [(i.name, i.shape[1]) for i in session.get_inputs()] == [("input", 5)]
        (got,) = session.run(None, {"input": x})
        expected = model.predict(x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max(), err_msg=activation)


def assert_fruit_runs_as_predict(session, model, frame):
    """ONNX Runtime on fruit_frame's columns gives predict's probabilities and their labels."""
    feeds = {"colour": frame[["colour"]].fillna("").to_numpy(dtype=object),
             "size": frame[["size"]].to_numpy(dtype=np.float32), "weight": frame[["weight"]].to_numpy(dtype=np.float32)}
    labels, probabilities = session.run(None, feeds)
    with pytest.warns(UserWarning, match="never saw"):
        expected = model.predict(frame)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)
    assert list(labels) == list(np.array(model.classes)[np.argmax(expected, axis=1)])


def test_dataframe_models_and_estimators_export(tmp_path):
    pd = pytest.importorskip("pandas")
    from test_api import fruit_frame

    frame = fruit_frame()
    frame.loc[3, "colour"] = "violet"  # unseen in training below: no indicator set
    model = ember.Sequential([ember.Dense(16, "relu"), ember.Dense(3)]).compile("adam", "crossentropy", "cpu")
    model.fit(frame.iloc[4:], target="kind", epochs=20, verbose=0)
    model.export_onnx(tmp_path / "fruit.onnx")
    _, session = checked_session(tmp_path / "fruit.onnx")
    assert_fruit_runs_as_predict(session, model, frame)

    from ember.sklearn import EmberRegressor

    numbers = pd.DataFrame({"a": np.linspace(0, 1, 80), "b": np.cos(np.arange(80))})
    target = 3 * numbers["a"] - numbers["b"]
    estimator = EmberRegressor(hidden_layer_sizes=(8,), epochs=5).fit(numbers, target)
    estimator.export_onnx(tmp_path / "regressor.onnx")
    _, session = checked_session(tmp_path / "regressor.onnx")
    (got,) = session.run(None, {name: numbers[[name]].to_numpy(dtype=np.float32) for name in ("a", "b")})
    expected = estimator.predict(numbers)
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_unbuilt_models_and_bad_paths_are_refused_and_write_nothing(tmp_path):
    with pytest.raises(ember.InputError, match="no weights yet"):
        ember.Sequential([ember.Dense(1)]).export_onnx(tmp_path / "m.onnx")
    model = ember.Sequential([ember.Dense(1)]).compile("sgd", "mse", "cpu")
    model.fit(np.arange(4, dtype=np.float32).reshape(4, 1), np.arange(4, dtype=np.float32).reshape(4, 1), epochs=1,
              verbose=0)
    with pytest.raises(ember.InputError):
        model.export_onnx(tmp_path / "missing" / "m.onnx")
    assert sorted(os.listdir(tmp_path)) == []


@needs_cli
def test_cli_export_errors_name_the_problem_and_leave_no_file(tmp_path):
    out = tmp_path / "m.onnx"
    result = subprocess.run([CLI, "export", "--model", str(tmp_path / "none.safetensors"), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "none.safetensors" in result.stderr and not out.exists()
    result = subprocess.run([CLI, "export", "--model", "x", "--out", str(out), "--format", "tflite"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--format" in result.stderr and not out.exists()


def test_embedded_columns_export_and_run_as_predict(tmp_path):
    pytest.importorskip("pandas")
    from test_api import fruit_frame

    frame = fruit_frame()
    frame.loc[3, "colour"] = "violet"  # unseen in training below: the column's vector for the rest
    model = ember.Sequential([ember.Embedding(0, 4), ember.Dense(16, "relu"), ember.Dense(3)], seed=2)
    model.compile("adam", "crossentropy", "cpu")
    model.fit(frame.iloc[4:], target="kind", embed=["colour"], epochs=20, verbose=0)
    assert repr(model.layers[0]) == "Embedding(4, 4, columns=1)"  # red, green, blue and the rest
    model.export_onnx(tmp_path / "embedded.onnx")
    graph, session = checked_session(tmp_path / "embedded.onnx")
    metadata = {p.key: p.value for p in graph.metadata_props}
    assert '"embedded":true' in metadata["ember.columns"]
    assert_fruit_runs_as_predict(session, model, frame)


@needs_cli
def test_whole_number_codes_export_their_steps_and_levels(tmp_path):
    """A code of 70 whole numbers (and gaps) gets, by default, a step between each two values and
    an indicator per value; the exported graph gives each row the indicators predict gives it,
    also for a code training never saw and a missing one."""
    rng = np.random.default_rng(4)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, rows, codes in ((train, 400, 70), (test, 80, 75)):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["school", "hours", "score"])
            for row in range(rows):
                school = 300 + (row % codes if path == train else int(rng.integers(codes)))
                hours = rng.uniform(0, 10)
                writer.writerow(["" if row % 20 == 7 else school, f"{hours:.2f}",
                                 f"{(school % 7) + hours + rng.normal(0, 0.5):.3f}"])
    checkpoint, exported, predicted = tmp_path / "m.safetensors", tmp_path / "m.onnx", tmp_path / "p.csv"
    result = subprocess.run([CLI, "train", "--data", str(train), "--target", "score", "--epochs", "10",
                             "--members", "2", "--device", "cpu", "--save", str(checkpoint)],
                            capture_output=True, text=True, check=True)
    assert "note: column 'school' holds 70 whole numbers, read as codes: a bin between each two and an indicator " \
           "for each" in result.stderr
    subprocess.run([CLI, "export", "--model", str(checkpoint), "--out", str(exported), "--quiet"], check=True)
    subprocess.run([CLI, "predict", "--model", str(checkpoint), "--data", str(test), "--device", "cpu", "--quiet",
                    "--out", str(predicted)], check=True, capture_output=True)
    model, session = checked_session(exported)
    assert any(node.op_type == "Equal" for node in model.graph.node)
    outputs = session.run(None, feeds_from_csv(session, test))
    header, body = ember_predictions(predicted)
    assert_outputs_match(model, outputs, header, body, False)


@needs_cli
def test_a_blend_of_layers_and_a_linear_model_runs_in_onnx_runtime_as_ember_predict(tmp_path):
    """`ember train` without --layers keeps a blend of its layers and a linear model where the two
    validate close to each other and the blend better still: a nearly linear target under noise.
    The exported graph weighs their outputs as predict does, and Python loads the blend."""
    rng = np.random.default_rng(1)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, rows in ((train, 1200), (test, 100)):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["a", "b", "city", "y"])
            for row in range(rows):
                a, b, city = rng.normal(), rng.normal(), rng.choice(["x", "y", "z"])
                signal = 0.6 * a + 0.4 * b + 0.1 * np.tanh(2 * a * b) + (0.2 if city == "x" else 0)
                writer.writerow([f"{a:.3f}", "" if row % 17 == 3 else f"{b:.3f}", city,
                                 f"{signal + rng.normal(0, 1.0):.3f}"])
    checkpoint, exported, predicted = tmp_path / "m.safetensors", tmp_path / "m.onnx", tmp_path / "p.csv"
    result = subprocess.run([CLI, "train", "--data", str(train), "--target", "y", "--device", "cpu",
                             "--save", str(checkpoint)], capture_output=True, text=True, check=True)
    assert "the model is the blend" in result.stdout, result.stdout
    inspected = subprocess.run([CLI, "inspect", str(checkpoint)], capture_output=True, text=True, check=True)
    assert "Blend: the predictions are" in inspected.stdout
    subprocess.run([CLI, "export", "--model", str(checkpoint), "--out", str(exported), "--quiet"], check=True)
    subprocess.run([CLI, "predict", "--model", str(checkpoint), "--data", str(test), "--device", "cpu", "--quiet",
                    "--out", str(predicted)], check=True, capture_output=True)
    model, session = checked_session(exported)
    assert sum(node.op_type == "Gemm" for node in model.graph.node) > 3 * 5  # 5 networks of layers, 5 linear
    outputs = session.run(None, feeds_from_csv(session, test))
    header, body = ember_predictions(predicted)
    assert_outputs_match(model, outputs, header, body, False)
    loaded = ember.Sequential.load(str(checkpoint))
    assert loaded.linear_share in (0.25, 0.5, 0.75)
