import numpy as np
import pytest
from PIL import Image

from detector.base.errors import LabError
from detector.base.runs import atomic_save_model, write_json

SIZE = 32


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory):
    """An untrained cnn3 run directory at 32 px, made by hand."""
    from detector.models.zoo import build_model

    run_dir = tmp_path_factory.mktemp("runs") / "00001-detector-hand"
    run_dir.mkdir()
    atomic_save_model(build_model("cnn3", size=SIZE), run_dir / "model.keras")
    write_json(
        run_dir / "config.json",
        {"model": "cnn3", "head": "probability", "size": SIZE, "crop": "resize", "data": "none"},
    )
    return run_dir


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "face 1.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path)
    return path


def _pixels(seed=0):
    return np.random.default_rng(seed).random((SIZE, SIZE, 3), dtype=np.float32)


@pytest.mark.parametrize(
    "name, head, options",
    [
        ("cnn3", "probability", {}),
        ("small_cnn", "logit", {}),
        ("cnn3", "softmax2", {}),
        ("mobilenetv2", "probability", {"weights": None}),  # conv layers inside a nested backbone
    ],
)
def test_gradcam_and_activation_maps_in_range(name, head, options):
    from detector.inference.explain import activation_maps, gradcam
    from detector.models.zoo import build_model

    model = build_model(name, size=SIZE, head=head, **options)
    for target in ("fake", "real"):
        heatmap = gradcam(model, _pixels(), target=target)
        assert heatmap.shape == (SIZE, SIZE)
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    maps = activation_maps(model, _pixels())
    conv_names = [layer.name for layer in model.layers if layer.name.startswith("conv")]
    if conv_names:
        assert list(maps) == conv_names
    else:
        assert len(maps) > 10 and all("/" in key for key in maps)  # backbone/layer
    for activation in maps.values():
        assert activation.ndim == 2 and activation.min() >= 0.0 and activation.max() <= 1.0


def test_gradcam_points_at_the_evidence():
    """A model whose fake score is the image's brightness: Grad-CAM lights up the bright corner."""
    import keras

    from detector.inference.explain import gradcam

    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones", name="p_fake")(pooled)
    model = keras.Model(inputs, outputs)
    pixels = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
    pixels[:8, :8] = 1.0
    heatmap = gradcam(model, pixels)
    assert heatmap[:8, :8].mean() > 0.9 and heatmap[16:, 16:].max() < 0.05


def test_overlay_blends_onto_the_image():
    from detector.inference.explain import overlay

    pixels = _pixels()
    heatmap = np.zeros((SIZE, SIZE), dtype=np.float32)
    heatmap[:, SIZE // 2 :] = 1.0
    blended = overlay(pixels, heatmap)
    assert blended.dtype == np.uint8 and blended.shape == (SIZE, SIZE, 3)
    # Hot half goes red (jet's top), cold half blue.
    assert blended[:, SIZE // 2 :, 0].mean() > blended[:, : SIZE // 2, 0].mean()
    assert blended[:, : SIZE // 2, 2].mean() > blended[:, SIZE // 2 :, 2].mean()
    # A smaller heatmap is stretched to the image.
    assert overlay((pixels * 255).astype(np.uint8), heatmap[::4, ::4]).shape == (SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="heatmap must be 2-D"):
        overlay(pixels, np.zeros((SIZE, SIZE, 3)))


def test_explain_image_writes_pngs(hand_run, face):
    from detector.inference.explain import explain_image

    written = explain_image(hand_run, face)
    names = [path.name for path in written]
    assert names == ["input.png", "activations.png", "gradcam.png", "gradcam_heatmap.png", "explanation.png"]
    assert all(path.parent == hand_run / "explanations" / "face 1" for path in written)
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) >= 64


def test_explain_image_refuses_a_too_small_image(hand_run, tmp_path):
    from detector.inference.explain import explain_image

    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(small)
    with pytest.raises(LabError, match="small.png is 16x16"):
        explain_image(hand_run, small)


def test_cli_explain(hand_run, face, tmp_path, capsys):
    from gan_lab.cli import main

    out = tmp_path / "why"
    assert main(["detector", "explain", str(hand_run), str(face), "--out", str(out)]) == 0
    assert (out / "gradcam.png").is_file() and (out / "activations.png").is_file()
    assert f"to {out}" in capsys.readouterr().out
    assert main(["detector", "explain", str(hand_run), str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    """A wide image, red | green | blue, whose centre square is all green."""
    pixels = np.zeros((48, 96, 3), dtype=np.uint8)
    pixels[:, :24, 0] = pixels[:, 24:72, 1] = pixels[:, 72:, 2] = 255
    path = tmp_path_factory.mktemp("stripes") / "stripes.png"
    Image.fromarray(pixels).save(path)
    return path


def _corner_colour(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))[8, 8]


def test_explain_image_fits_the_image_as_the_run_was_trained_unless_told(hand_run, stripes, tmp_path):
    from detector.inference.explain import explain_image

    # This run's config.json says crop="resize": the whole image, stretched, red on the left.
    [stretched, *_] = explain_image(hand_run, stripes, out_dir=tmp_path / "default")
    assert tuple(_corner_colour(stretched)) == (255, 0, 0)
    [cropped, *_] = explain_image(hand_run, stripes, out_dir=tmp_path / "crop", crop="crop")
    assert tuple(_corner_colour(cropped)) == (0, 255, 0)
    with pytest.raises(ValueError, match="Received: crop='squash'"):
        explain_image(hand_run, stripes, crop="squash")


def test_explain_scores_like_predict(hand_run, stripes):
    from detector.data.images import open_rgb
    from detector.inference.explain import explain
    from detector.inference.predict import load_detector, predict_paths

    detector = load_detector(hand_run)
    for crop in (None, "crop"):
        found = explain(detector, open_rgb(stripes), crop=crop)
        [row] = predict_paths(detector, stripes, crop=crop)
        assert found.p_fake == pytest.approx(row["p_fake"], abs=1e-6)
        assert found.verdict == row["verdict"] and found.target == found.verdict.lower()
        assert found.heatmap.shape == (SIZE, SIZE)


def test_cli_explain_crop_option(hand_run, stripes, tmp_path):
    from gan_lab.cli import main

    assert main(["detector", "explain", str(hand_run), str(stripes), "--out", str(tmp_path), "--crop", "crop"]) == 0
    assert tuple(_corner_colour(tmp_path / "input.png")) == (0, 255, 0)
