"""Detectors in and out: lab runs exported to ONNX and SavedModel, outside models imported as runs.

Each outside model here is built by the test itself (no download): an ONNX graph from the
`onnx` helper API (NCHW, ImageNet normalisation, one logit) and a `tf.Module` SavedModel
(NHWC, [-1, 1], two softmax outputs, fake first). The lab's P(fake) must equal the model run
directly with its own preprocessing.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.base.runs import read_json
from detector.inference.imported import ImportConfig, export_detector, import_detector
from detector.inference.predict import load_detector

PARITY = 1e-4
SIZE = 32
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _images(n=6, seed=0):
    return np.random.default_rng(seed).random((n, SIZE, SIZE, 3), dtype=np.float32)


def _weights(shape, seed=1):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.05).astype(np.float32)


def write_onnx_logit_model(path, size=SIZE, nan=False):
    """NCHW float32 in, one logit out: sum(w * x) + b, built with onnx's helper API."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = _weights((1, 3, size, size))
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axes"], ["summed"], keepdims=1),
        helper.make_node("Reshape", ["summed", "shape"], ["flat"]),
        helper.make_node("Add", ["flat", "b"], ["logit"]),
    ]
    initializers = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "shape"),
        numpy_helper.from_array(np.array([np.nan if nan else 0.1], dtype=np.float32), "b"),
    ]
    graph = helper.make_graph(
        nodes,
        "logit",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return weights


def onnx_direct(path, pixels):
    """The ONNX model run as its makers would: ImageNet normalisation, NCHW, sigmoid of the logit."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.transpose((pixels - MEAN) / STD, (0, 3, 1, 2)).astype(np.float32)
    logit = session.run(None, {"x": x})[0][:, 0].astype(np.float64)
    return 1.0 / (1.0 + np.exp(-logit))


def write_savedmodel_softmax(path):
    """NHWC in [-1, 1], two softmax outputs [P(fake), P(real)]: a tf.Module with a serving signature."""
    import tensorflow as tf

    class Detector(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(_weights((1, SIZE, SIZE, 3), seed=2))

        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="images")])
        def serve(self, images):
            z = tf.reduce_sum(images * self.w, axis=[1, 2, 3])
            return {"probabilities": tf.nn.softmax(tf.stack([z, -z], axis=1))}

    module = Detector()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def savedmodel_direct(path, pixels):
    import tensorflow as tf

    function = tf.saved_model.load(str(path)).signatures["serving_default"]
    return function(images=tf.constant(pixels * 2.0 - 1.0))["probabilities"].numpy()[:, 0].astype(np.float64)


def import_savedmodel(outside_models, runs, **options):
    """The test's SavedModel imported: NHWC in [-1, 1], two softmax outputs, fake first."""
    config = ImportConfig(
        model=str(outside_models / "softmax_savedmodel"),
        size=SIZE,
        normalize="symmetric",
        output="softmax",
        fake_index=0,
        **options,
    )
    return import_detector(config, runs_dir=runs)


@pytest.fixture(scope="module")
def outside_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("outside-models")
    write_onnx_logit_model(root / "logit.onnx")
    write_savedmodel_softmax(root / "softmax_savedmodel")
    return root


@pytest.fixture(scope="module")
def imported_runs(outside_models, synth_root, tmp_path_factory):
    runs = tmp_path_factory.mktemp("imported-runs")
    onnx_run = import_detector(
        ImportConfig(
            model=str(outside_models / "logit.onnx"),
            size=SIZE,
            layout="nchw",
            normalize="imagenet",
            output="logit",
            calibrate=str(synth_root),
        ),
        runs_dir=runs,
    )
    savedmodel_run = import_savedmodel(outside_models, runs, threshold=0.4)
    return {"onnx": onnx_run, "savedmodel": savedmodel_run, "runs": runs}


def test_an_imported_onnx_model_scores_as_it_does_run_directly(imported_runs, outside_models):
    detector = load_detector(imported_runs["onnx"])
    pixels = _images()
    expected = onnx_direct(outside_models / "logit.onnx", pixels)
    assert np.ptp(expected) > 1e-3  # the images must tell apart, or the test could not fail
    np.testing.assert_allclose(detector.score(pixels), expected, atol=PARITY, rtol=0)
    config = read_json(imported_runs["onnx"] / "config.json")
    assert config["imported"]["adaptor"] == {
        "size": SIZE,
        "layout": "nchw",
        "normalize": "imagenet",
        "output": "logit",
        "fake_index": None,
    }
    assert (imported_runs["onnx"] / "model.onnx").is_file()
    card = (imported_runs["onnx"] / "report.md").read_text()
    assert "chosen on the validation split" in card and "not calibrated" not in card
    assert read_json(imported_runs["onnx"] / "metrics.json")["threshold_source"].startswith("validation split")


def test_an_imported_savedmodel_scores_as_it_does_run_directly(imported_runs, outside_models):
    detector = load_detector(imported_runs["savedmodel"])
    pixels = _images(seed=3)
    expected = savedmodel_direct(outside_models / "softmax_savedmodel", pixels)
    assert np.ptp(expected) > 1e-3
    np.testing.assert_allclose(detector.score(pixels), expected, atol=PARITY, rtol=0)
    assert detector.threshold == 0.4
    assert "**not calibrated**" in (imported_runs["savedmodel"] / "report.md").read_text()


def test_a_lab_detector_exported_to_onnx_and_savedmodel_scores_as_in_the_lab(detector_run, tmp_path):
    import onnxruntime
    import tensorflow as tf

    detector = load_detector(detector_run)
    pixels = _images(8, seed=5)
    expected = detector.score(pixels)
    onnx_path = export_detector(detector_run, "onnx", tmp_path / "detector.onnx")
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    [onnx_out] = session.run(None, {session.get_inputs()[0].name: pixels})
    assert onnx_out.shape == (8, 1)
    np.testing.assert_allclose(onnx_out[:, 0], expected, atol=PARITY, rtol=0)
    saved = export_detector(detector_run, "savedmodel", tmp_path / "detector_savedmodel")
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    [saved_out] = serve(tf.constant(pixels)).values()
    assert tuple(saved_out.shape) == (8, 1)
    np.testing.assert_allclose(saved_out.numpy()[:, 0], expected, atol=PARITY, rtol=0)
    with pytest.raises(LabError, match="exists"):
        export_detector(detector_run, "onnx", onnx_path)


def test_a_runs_model_file_loads_in_a_fresh_process_without_the_lab(detector_run):
    code = (
        "import sys, keras, numpy as np\n"
        f"model = keras.models.load_model({str(detector_run / 'model.keras')!r}, compile=False)\n"
        "model(np.zeros((1, *model.input_shape[1:]), 'float32'))\n"
        "print('lab imported:', any(name.split('.')[0] in ('detector', 'gan_lab') for name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "lab imported: False" in result.stdout


def test_a_keras_file_is_imported_and_explained(detector_run, tmp_path):
    from detector.inference.explain import explain

    run = import_detector(
        ImportConfig(model=str(detector_run / "model.keras"), size=SIZE, output="probability"), runs_dir=tmp_path
    )
    lab, imported = load_detector(detector_run), load_detector(run)
    pixels = _images(4, seed=7)
    np.testing.assert_allclose(imported.score(pixels), lab.score(pixels), atol=PARITY, rtol=0)
    image = (pixels[0] * 255).astype(np.uint8)
    explanation = explain(imported, image)
    assert explanation.heatmap.shape == (SIZE, SIZE) and explanation.maps


def test_grad_cam_on_an_onnx_import_says_why_not(imported_runs):
    from detector.inference.explain import explain

    with pytest.raises(LabError, match="imported onnx model: Grad-CAM"):
        explain(load_detector(imported_runs["onnx"]), np.zeros((SIZE, SIZE, 3), np.uint8))


def test_every_scoring_path_takes_an_imported_run(imported_runs, outside_models, synth_root, tmp_path):
    from detector.inference.evaluate import evaluate_run
    from detector.inference.predict import predict_paths
    from gan_lab.apps.video import score_faces
    from gan_lab.apps.web import create_app

    run = imported_runs["onnx"]
    detector = load_detector(run)
    image_path = sorted(synth_root.glob("test/fake/*.png"))[0]
    pixels = detector.prepare(Image.open(image_path))
    expected = float(onnx_direct(outside_models / "logit.onnx", pixels[None])[0])
    [row] = predict_paths(detector, image_path)
    assert abs(row["p_fake"] - expected) < PARITY
    assert abs(score_faces(detector, [np.asarray(Image.open(image_path).convert("RGB"))])[0] - expected) < PARITY
    client = create_app(run, runs_dir=imported_runs["runs"]).test_client()
    answer = client.post("/api/predict", data={"file": (open(image_path, "rb"), image_path.name)}).json
    assert abs(answer["p_fake"] - expected) < PARITY
    metrics = evaluate_run(imported_runs["savedmodel"], data=synth_root)
    assert metrics["n_test"] > 0 and 0.0 <= metrics["accuracy"] <= 1.0


def test_a_stress_run_scores_imported_detectors(imported_runs, outside_models, synth_root, gan_run, tmp_path):
    from gan_lab.stress.inputs import StressConfig
    from gan_lab.stress.run import run_stress

    savedmodel = import_savedmodel(outside_models, tmp_path / "imports", calibrate=str(synth_root))
    config = StressConfig(
        detector=str(imported_runs["onnx"]),
        detectors=(str(savedmodel),),
        gan=str(gan_run),
        n=16,
        batch_size=16,
        inception=False,
        faces=False,
        bootstrap=50,
    )
    stress = run_stress(config, runs_dir=tmp_path, progress=False)
    results = read_json(stress / "results.json")
    rows = [row for row in results if row["kind"] == "epoch"]
    assert len(rows) == 2 and all(0.0 <= row["detection_rate"] <= 1.0 for row in rows)
    assert rows[0]["kid_detector"] is None
    assert any(row["kind"] == "sweep" for row in results)
    assert (stress / "matrix.csv").read_text().count(savedmodel.name) >= 1  # the SavedModel's row of the matrix
    assert "not available, the detector was imported" in (stress / "report.md").read_text()
    with pytest.raises(LabError, match="imported without --calibrate"):
        run_stress(StressConfig(detector=str(imported_runs["savedmodel"]), gan=str(gan_run)), runs_dir=tmp_path)


@pytest.mark.parametrize(
    "case, message",
    [
        ("junk", r"junk\.onnx could not be loaded as an ONNX model"),
        ("softmax as logit", r"gives 2 outputs per image .* --output logit means one"),
        ("wrong size", r"takes inputs of shape \(N, 3, 32, 32\), but --size 64 --layout nchw"),
        ("wrong layout", r"takes inputs of shape \(N, 3, 32, 32\), but --size 32 --layout nhwc"),
        ("nan", r"nan\.onnx gave NaN or infinite outputs"),
        ("not a model", r"format is read from the path"),
    ],
)
def test_a_bad_model_gets_one_line_naming_the_file(case, message, outside_models, tmp_path, capsys):
    from gan_lab.cli import main

    runs = tmp_path / "runs"
    options = {"size": "32", "layout": "nchw", "output": "logit"}
    if case == "junk":
        model = tmp_path / "junk.onnx"
        model.write_bytes(b"\x00not an onnx file\xff" * 10)
    elif case == "softmax as logit":
        model, options = outside_models / "softmax_savedmodel", {"size": "32", "output": "logit"}
    elif case == "nan":
        model = tmp_path / "nan.onnx"
        write_onnx_logit_model(model, nan=True)
    elif case == "not a model":
        model = tmp_path / "weights.bin"
        model.write_bytes(b"1234")
    else:
        model = outside_models / "logit.onnx"
        options = {**options, "size": "64"} if case == "wrong size" else {**options, "layout": "nhwc"}
    arguments = [f"--{key}={value}" for key, value in options.items()]
    assert main(["detector", "import", str(model), *arguments, "--runs-dir", str(runs)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert re.search(message, error), error
    assert not runs.exists() or not any(runs.iterdir())  # nothing made for a refused model


def test_import_and_export_from_the_command_line(outside_models, detector_run, tmp_path, capsys):
    from gan_lab.cli import main

    model = outside_models / "logit.onnx"
    runs = tmp_path / "runs"
    arguments = ["--size", "32", "--layout", "nchw", "--normalize", "imagenet", "--output", "logit", "--name", "cli"]
    assert main(["detector", "import", str(model), *arguments, "--runs-dir", str(runs)]) == 0
    [run] = list(runs.iterdir())
    assert run.name == "00001-detector-cli" and "Run directory" in capsys.readouterr().out
    out = tmp_path / "exported.onnx"
    assert main(["detector", "export", str(detector_run), "--format", "onnx", "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["detector", "export", str(run), "--format", "onnx", "--out", str(tmp_path / "again.onnx")]) == 2
    assert "was imported from" in capsys.readouterr().err


def test_an_import_that_fails_after_its_run_was_made_leaves_nothing(outside_models, tmp_path):
    empty = tmp_path / "no-images"
    (empty / "real").mkdir(parents=True)
    (empty / "fake").mkdir()
    runs = tmp_path / "runs"
    with pytest.raises(LabError):
        import_savedmodel(outside_models, runs, calibrate=str(empty))
    assert not any(runs.iterdir())


def test_an_imported_keras_or_savedmodel_detector_gives_logits_with_gradients_and_onnx_says_why_not(
    imported_runs, detector_run, tmp_path
):
    """`logit_graph` is the scoring path in TensorFlow ops: sigmoid(logit) = P(fake), with gradients in the pixels."""
    import tensorflow as tf

    keras_run = import_detector(
        ImportConfig(model=str(detector_run / "model.keras"), size=SIZE, output="probability"), runs_dir=tmp_path
    )
    pixels = _images(5, seed=3)
    for run in (keras_run, imported_runs["savedmodel"]):
        detector = load_detector(run)
        x = tf.constant(pixels)
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = detector.outside.logit_graph()(x)
        gradient = tape.gradient(logits, x).numpy()
        assert logits.shape == (5, 1)
        np.testing.assert_allclose(tf.sigmoid(logits).numpy()[:, 0], detector.score(pixels), atol=1e-5, rtol=0)
        assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0
    with pytest.raises(LabError, match=r"model\.onnx is an ONNX model: .* reaches no gradients"):
        load_detector(imported_runs["onnx"]).outside.logit_graph()


@pytest.mark.parametrize("output", ["logit", "probability", "softmax-probabilities", "softmax-logits"])
def test_the_adaptors_graph_logit_agrees_with_its_p_fake(output):
    import tensorflow as tf

    from detector.models.interchange import Adaptor

    rows = np.random.default_rng(4).normal(size=(7, 3)).astype(np.float32)
    if output == "logit":
        adaptor, outputs = Adaptor(size=SIZE, output="logit"), rows[:, :1]
    elif output == "probability":
        adaptor, outputs = Adaptor(size=SIZE, output="probability"), 1 / (1 + np.exp(-rows[:, :1]))
    else:
        adaptor = Adaptor(size=SIZE, output="softmax", fake_index=2)
        outputs = rows if output == "softmax-logits" else np.exp(rows) / np.exp(rows).sum(axis=1, keepdims=True)
    logits = adaptor.graph_logit(tf.constant(outputs)).numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-logits[:, 0])), adaptor.p_fake(outputs), atol=1e-6, rtol=0)
    pixels = _images(2)
    for layout in ("nhwc", "nchw"):
        for normalize in ("unit", "byte", "symmetric", "imagenet"):
            adaptor = Adaptor(size=SIZE, layout=layout, normalize=normalize)
            np.testing.assert_allclose(adaptor.graph_inputs(tf.constant(pixels)).numpy(), adaptor.inputs(pixels))
