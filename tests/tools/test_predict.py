"""paracnn predict: pictures prepared as MNIST was made, top-K answers, one line per bad image."""

import json
import sys

import pytest

from paracnn.cli import main
from paracnn.trained import load_model

from ..faults.bombs import huge_png

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

from paracnn.tools.predict import predict_image  # noqa: E402
from paracnn.tools.preprocess import ImageProblem, prepare, read_image  # noqa: E402


def ink_box(pixels, w=28):
    rows = [y for y in range(len(pixels) // w) if any(pixels[y * w:(y + 1) * w])]
    cols = [x for x in range(w) if any(pixels[x::w])]
    return rows[0], rows[-1], cols[0], cols[-1]


def centre_of_mass(pixels, w=28):
    mass = sum(pixels)
    return (sum(v * (i // w) for i, v in enumerate(pixels)) / mass,
            sum(v * (i % w) for i, v in enumerate(pixels)) / mass)


def drawn_ring(path, size=(300, 200), paper=235, ink=20):
    """A dark, tall ring off to one side of light-grey paper, like a photographed 0."""
    img = Image.new("L", size, paper)
    ImageDraw.Draw(img).ellipse((30, 20, 110, 180), outline=ink, width=14)
    img.save(path)
    return path


def test_a_dark_digit_on_light_paper_is_inverted_cropped_boxed_and_centred(tmp_path):
    prepared = prepare(read_image(drawn_ring(tmp_path / "ring.png")))
    pixels = prepared.pixels
    assert prepared.inverted and len(pixels) == 784
    top, bottom, left, right = ink_box(pixels)
    assert bottom - top + 1 == 20                     # the long side fills the 20-pixel box
    assert 8 <= right - left + 1 <= 12                # 80 x 160 keeps its 1:2 aspect ratio
    cy, cx = centre_of_mass(pixels)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert max(pixels) == 255 and pixels[0] == 0      # the paper becomes black, the ink white


def test_invert_auto_no_and_yes(tmp_path):
    dark = drawn_ring(tmp_path / "dark.png")
    light = tmp_path / "light.png"
    Image.eval(Image.open(dark), lambda v: 255 - v).save(light)
    assert prepare(read_image(light)).inverted is False
    assert prepare(read_image(light)).pixels == prepare(read_image(dark)).pixels
    assert prepare(read_image(dark), invert="yes").pixels == prepare(read_image(light), invert="no").pixels
    with pytest.raises(ImageProblem, match="--invert no is wrong for it"):
        prepare(read_image(dark), invert="no")  # dark ink left dark: nothing is brighter than the paper


def test_other_input_sizes_scale_the_box(tmp_path):
    pixels = prepare(read_image(drawn_ring(tmp_path / "r.png")), shape=(1, 14, 14)).pixels
    top, bottom, _, _ = ink_box(pixels, 14)
    assert len(pixels) == 196 and bottom - top + 1 == 10


def test_a_transparent_background_counts_as_white_paper(tmp_path):
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(img).line((50, 10, 50, 90), fill=(0, 0, 0, 255), width=8)
    img.save(tmp_path / "t.png")
    prepared = prepare(read_image(tmp_path / "t.png"))
    assert prepared.inverted and ink_box(prepared.pixels)[1] - ink_box(prepared.pixels)[0] + 1 == 20


def test_blank_and_unreadable_images_are_named_problems(tmp_path):
    Image.new("L", (50, 50), 240).save(tmp_path / "blank.png")
    with pytest.raises(ImageProblem, match=r"blank\.png: no ink found"):
        prepare(read_image(tmp_path / "blank.png"), name=str(tmp_path / "blank.png"))
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ImageProblem, match=r"notes\.png: not an image Pillow can read"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(ImageProblem, match=r"gone\.png: no such file"):
        read_image(tmp_path / "gone.png")


def test_cli_answers_the_good_images_names_the_bad_ones_and_exits_2(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    good = drawn_ring(tmp_path / "good.png")
    Image.new("L", (40, 40), 255).save(tmp_path / "empty.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    code = main(["predict", "--checkpoint", str(run / "checkpoints" / "last.json"), str(tmp_path / "empty.png"),
                 str(good), str(tmp_path / "broken.jpg"), "--top", "2"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.count("\n") == 1 and out.startswith(f"{good}: ") and ", then " in out
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "empty.png: no ink found" in lines[0] and "broken.jpg" in lines[1]
    assert "Traceback" not in err


def test_cli_json_gives_the_top_k_with_probabilities(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    good = drawn_ring(tmp_path / "good.png")
    assert main(["predict", "--checkpoint", str(run / "checkpoints" / "last.json"), str(good),
                 "--top", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)["predictions"][0]
    trained = load_model(run / "checkpoints" / "last.json")
    x = trained.input(prepare(read_image(good), trained.model.input_shape).pixels)
    probs = trained.model.probabilities(x)
    assert [t["class"] for t in answer["top"]] == sorted(range(10), key=probs.__getitem__, reverse=True)[:3]
    assert [t["probability"] for t in answer["top"]] == sorted(probs, reverse=True)[:3]
    assert answer["inverted"] is True


def test_without_pillow_predict_is_one_line_naming_the_extra(tiny_run, tmp_path, capsys, monkeypatch):
    run, _ = tiny_run
    for name in ("PIL", "PIL.Image", "PIL.ImageOps"):
        monkeypatch.setitem(sys.modules, name, None)
    code = main(["predict", "--checkpoint", str(run / "checkpoints" / "last.json"), "x.png"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0
    assert 'pip install "paracnn[image]"' in err


def test_mnist_digits_drawn_large_black_on_white_are_classified_as_their_class(mnist_run, tmp_path):
    """Real test digits, inverted, scaled up 10x onto bigger off-white paper at an offset."""
    run, _ = mnist_run
    trained = load_model(run / "checkpoints" / "last.json")
    test = trained.test_set()
    asked = agree = 0
    for i in range(40):
        x, label = test.sample(i)
        probs = trained.model.probabilities(x)
        if probs.index(max(probs)) != label:
            continue  # only digits the model knows from their IDX originals can be expected back
        digit = Image.frombytes("L", (28, 28), test.pixels(i)).resize((280, 280), Image.Resampling.BICUBIC)
        paper = Image.new("L", (420, 360), 230)
        paper.paste(Image.eval(digit, lambda v: 230 - v * 210 // 255), (20 + 7 * i % 100, 40))
        paper.save(tmp_path / f"{i}.png")
        answer = predict_image(trained, tmp_path / f"{i}.png", top=1)
        asked += 1
        agree += answer["top"][0]["class"] == label
    assert asked >= 25
    assert agree >= 0.9 * asked, f"{agree} of {asked} drawn digits classified as their class"


def test_a_16_bit_grey_on_grey_digit_is_scaled_to_8_bits_not_clipped(tmp_path):
    img = Image.new("I;16", (28, 28), 30000)
    for x in range(8, 20):
        for y in range(5, 23):
            img.putpixel((x, y), 40000)
    img.save(tmp_path / "g16.png")
    read = read_image(tmp_path / "g16.png")
    assert read.mode == "L" and read.getextrema() == (30000 // 257, 40000 // 257)
    assert prepare(read, invert="no").pixels.count(255) > 0  # the ink is found


def test_an_image_of_more_pixels_than_the_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    path = huge_png(tmp_path / "big.png", 11_000, 10_000)  # 110 MP in about 450 KB
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("the pixels were decoded"))
    with pytest.raises(ImageProblem, match=r"big.png: 11000x10000 is 110 megapixels, more than the 64 "
                                           r"paracnn predict reads; scale it down first$"):
        read_image(path)


def test_running_out_of_memory_while_decoding_is_one_image_problem(tmp_path, monkeypatch):
    path = drawn_ring(tmp_path / "ring.png")

    def no_memory(self):
        raise MemoryError
    monkeypatch.setattr(Image.Image, "load", no_memory)
    with pytest.raises(ImageProblem, match=r"ring.png: not enough memory to decode the image"):
        read_image(path)
