"""ONNX export: onnxruntime against PyTorch on real images, for a ReLU and a SIREN model."""

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'liifsr[onnx]')")
import onnx  # noqa: E402

from liifsr import coords as C  # noqa: E402
from liifsr.checkpoint import (
    CheckpointError,  # noqa: E402
    save_model,  # noqa: E402
)
from liifsr.cli import main  # noqa: E402
from liifsr.imageio import sample_image  # noqa: E402
from liifsr.models import build_model, model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import (
    LIIF,  # noqa: E402
    LIIFConfig,
)
from liifsr.onnx_export import OPSETS, decoder_path, export_onnx  # noqa: E402
from liifsr.onnx_runtime import OnnxModel, load_onnx_model  # noqa: E402
from liifsr.tiling import upscale_tensor  # noqa: E402
from liifsr.zoo import load_model  # noqa: E402


def photo_tensor(box):
    """A crop of the bundled photograph as (1, 3, h, w) in [0, 1]."""
    crop = np.asarray(Image.open(sample_image()).convert("RGB").crop(box), dtype=np.float32) / 255
    return torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).contiguous()


@pytest.fixture(scope="module", params=["relu-skip", "siren30", "lte", "thermal", "thermal-context"])
def exported(request, tmp_path_factory):
    """(PyTorch model, onnxruntime model): the bundled ReLU model (with its skip), a random
    SIREN-30, and random LTE and heat-field decoders (on the cheaper encoder), the heat
    field also with a context branch (its output layer, which starts at zero, made random)."""
    torch.manual_seed(0)
    if request.param == "relu-skip":
        model = load_model()
    elif request.param == "siren30":
        model = LIIF(model_preset("edsrless-liif-siren30")).eval()
    else:
        config = model_preset(f"edsr-{request.param.removesuffix('-context')}")
        config.encoder = EDSRConfig(n_resblocks=2, n_feats=16)
        if request.param == "thermal-context":
            config.decoder.context = 8
        model = build_model(config).eval()
        if request.param == "thermal-context":
            with torch.no_grad():
                model.context_out.weight.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    encoder, decoder = export_onnx(model, path)
    assert encoder == path and decoder == decoder_path(path) and decoder.is_file()
    return model, load_onnx_model(path)


def test_graphs_gather_codes_and_have_dynamic_sizes(exported):
    _, runtime = exported
    encoder_path, decoder_path_ = runtime.encoder_path, runtime.decoder_path
    decoder = onnx.load(decoder_path_)
    ops = {node.op_type for node in decoder.graph.node}
    assert "Gather" in ops and "GridSample" not in ops
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in decoder.graph.input}
    assert dims["coord"][1] == "queries" and isinstance(dims["proj"][1], str) and isinstance(dims["proj"][2], str)
    encoder = onnx.load(encoder_path)
    (inp,) = encoder.graph.input
    assert [d.dim_param for d in inp.type.tensor_type.shape.dim[2:]] == ["height", "width"]


def test_encoder_and_decoder_match_pytorch_on_a_photo(exported):
    model, runtime = exported
    lr = photo_tensor((200, 80, 261, 127)) * 2 - 1  # 61 x 47, not the export's example size
    with torch.no_grad():
        proj = model.latent_projection(model.encode(lr))
        proj_ort = runtime.latent_projection(runtime.encode(lr))
        assert proj_ort.shape == proj.shape
        assert (proj_ort - proj).abs().max() <= 1e-4
        out_hw = (150, 110)  # x2.46 and x2.34
        coord = C.make_coord(out_hw).unsqueeze(0)
        cell = C.cell_size(out_hw).expand(1, coord.shape[1], 2)
        expected = model.decode(proj, coord, cell, skip_image=lr)
        got = runtime.decode(proj.contiguous(), coord, cell, skip_image=lr)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 1e-4


def test_tiled_upscale_matches_pytorch(exported):
    """Through inference's tiles, windows and chunks: windowed decoding with grid and corner inputs."""
    model, runtime = exported
    lr = photo_tensor((150, 40, 198, 80))  # 40 x 48
    options = dict(tile_size=20, chunk_size=500)
    expected = upscale_tensor(model, lr, (110, 130), **options)
    got = upscale_tensor(runtime, lr, (110, 130), **options)
    assert (got - expected).abs().max() <= 1e-4
    region = upscale_tensor(runtime, lr, (400, 480), region=(slice_span(300, 340), slice_span(100, 171)), chunk_size=333)
    expected = upscale_tensor(model, lr, (400, 480), region=(slice_span(300, 340), slice_span(100, 171)))
    assert (region - expected).abs().max() <= 1e-4


def slice_span(start, stop):
    from liifsr.tiling import Span

    return Span(start, stop)


def test_cli_upscale_with_onnx_matches_pytorch_png(tmp_path):
    crop = tmp_path / "photo.png"
    Image.open(sample_image()).convert("RGB").crop((180, 60, 230, 100)).save(crop)
    assert main(["export", "edsr-liif-relu-skip-shared", str(tmp_path / "m.onnx")]) == 0
    common = ["--scale", "3.3", "--tile", "24", "--chunk", "700"]
    assert main(["upscale", str(crop), "-o", str(tmp_path / "torch.png"), *common]) == 0
    assert main(["upscale", str(crop), "-o", str(tmp_path / "ort.png"), "--model", str(tmp_path / "m.onnx"), *common]) == 0
    expected = np.asarray(Image.open(tmp_path / "torch.png")).astype(int)
    got = np.asarray(Image.open(tmp_path / "ort.png")).astype(int)
    assert got.shape == expected.shape == (132, 165, 3)
    assert np.abs(got - expected).max() <= 1
    # the decoder file names the same model
    assert isinstance(load_model(tmp_path / "m.decoder.onnx"), OnnxModel)


def test_bad_onnx_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    out = str(tmp_path / "o.png")
    assert main(["upscale", str(sample_image()), "--scale", "2", "-o", out, "--model", str(tmp_path / "junk.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liifsr: error: ") and "\n" not in err and "junk.onnx" in err
    model_file = tmp_path / "m.safetensors"
    save_model(LIIF(model_preset("edsrless-liif-relu")), model_file)
    assert main(["export", str(model_file), str(tmp_path / "alone.onnx")]) == 0
    (tmp_path / "alone.decoder.onnx").unlink()
    assert main(["upscale", str(sample_image()), "--scale", "2", "-o", out, "--model", str(tmp_path / "alone.onnx")]) == 2
    assert "decoder graph" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
    assert main(["export", str(model_file), str(tmp_path / "wrong.txt")]) == 2
    assert ".onnx" in capsys.readouterr().err


def test_exporting_an_onnx_export_is_a_one_line_error(tmp_path, capsys):
    model_file = tmp_path / "m.safetensors"
    save_model(tiny_model(), model_file)
    assert main(["export", str(model_file), str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "m.onnx"), str(tmp_path / "again.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liifsr: error: ") and "\n" not in err and "m.onnx" in err and "ONNX export already" in err
    assert not (tmp_path / "again.onnx").exists() and not (tmp_path / "again.decoder.onnx").exists()


def tiny_model() -> LIIF:
    from liifsr.models import ModelConfig

    torch.manual_seed(0)
    return LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16, 16])))


def test_export_writes_both_graphs_or_neither(tmp_path, monkeypatch):
    """A failure while the decoder graph is written leaves no encoder graph behind."""
    from liifsr import files

    real, calls = files._fsync, []

    def second_write_fails(path):
        calls.append(path)
        if len(calls) == 1:  # the decoder's temporary file: renamed first
            raise OSError(28, "No space left on device")
        real(path)

    monkeypatch.setattr(files, "_fsync", second_write_fails)
    with pytest.raises(ValueError, match="No space left on device"):
        export_onnx(tiny_model(), tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.setattr(files, "_fsync", real)
    export_onnx(tiny_model(), tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.decoder.onnx", "m.onnx"]


@pytest.mark.parametrize("opset", ["-1", "0", "10", "11", "21", "99"])
def test_export_refuses_an_opset_outside_the_range_before_any_work(opset, tmp_path, capsys):
    assert main(["export", "no-such-model", str(tmp_path / "m.onnx"), "--opset", opset]) == 2
    err = capsys.readouterr().err
    assert err == f"liifsr: error: ONNX opset {opset} is not supported (choose 12 to 20; default 17)\n"  # not the model's error
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("opset", [OPSETS.start, OPSETS.stop - 1])
@pytest.mark.parametrize("decoder", ["liif-relu", "lte", "thermal"])
def test_every_accepted_opset_runs_for_every_decoder(tmp_path, decoder, opset):
    """Opset 11 was accepted, and onnxruntime then refused every decoder graph written at it."""
    torch.manual_seed(0)
    config = model_preset(f"edsr-{decoder}")
    config.encoder = EDSRConfig(n_resblocks=1, n_feats=8)
    model = build_model(config).eval()
    export_onnx(model, tmp_path / "m.onnx", opset)
    lr = photo_tensor((150, 40, 170, 64))  # 20 x 24
    expected = upscale_tensor(model, lr, (50, 60), tile_size=12, chunk_size=300)
    got = upscale_tensor(load_onnx_model(tmp_path / "m.onnx"), lr, (50, 60), tile_size=12, chunk_size=300)
    assert (got - expected).abs().max() <= 1e-4


def rewrite_metadata(path, **entries) -> None:
    """Set (a string) or remove (None) metadata entries of an ONNX file."""
    graph = onnx.load(str(path))
    kept = {entry.key: entry.value for entry in graph.metadata_props}
    kept.update(entries)
    del graph.metadata_props[:]
    for key, value in kept.items():
        if value is not None:
            graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))


@pytest.mark.parametrize("entries, message", [
    ({"liifsr_decoder": None}, "lacks the metadata entry liifsr_decoder"),
    ({"liifsr_decoder": ""}, "invalid liifsr_decoder"),
    ({"liifsr_decoder": "../elsewhere.onnx"}, "invalid liifsr_decoder"),
    ({"liifsr_decoder": "m.decoder.txt"}, "invalid liifsr_decoder"),
    ({"liifsr_receptive_radius": None}, "lacks the metadata entry liifsr_receptive_radius"),
    ({"liifsr_receptive_radius": "four"}, "invalid liifsr_receptive_radius"),
    ({"liifsr_receptive_radius": "-1"}, "invalid liifsr_receptive_radius"),
    ({"liifsr_receptive_radius": "9" * 5001}, "invalid liifsr_receptive_radius"),
    ({"liifsr_receptive_radius": "3"}, "reads 4 pixels"),
    ({"liifsr_config": "[" * 100_000}, "nested too deeply"),
])
def test_missing_or_invalid_metadata_is_a_one_line_error(tmp_path, capsys, entries, message):
    export_onnx(tiny_model(), tmp_path / "m.onnx")
    rewrite_metadata(tmp_path / "m.onnx", **entries)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_onnx_model(tmp_path / "m.onnx")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 600
    out = tmp_path / "o.png"
    assert main(["upscale", str(sample_image()), "--size", "8x8", "-o", str(out), "--model", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and not out.exists(), err


def test_an_unknown_operator_is_a_one_line_error(tmp_path, capsys):
    export_onnx(tiny_model(), tmp_path / "m.onnx")
    decoder = onnx.load(str(tmp_path / "m.decoder.onnx"))
    decoder.graph.node[0].op_type = "NoSuchOperator"
    onnx.save(decoder, str(tmp_path / "m.decoder.onnx"))
    with pytest.raises(CheckpointError, match="onnxruntime cannot run ONNX file .*m.decoder.onnx") as caught:
        load_onnx_model(tmp_path / "m.onnx")
    assert "\n" not in str(caught.value)
    assert main(["upscale", str(sample_image()), "--size", "8x8", "-o", str(tmp_path / "o.png"),
                 "--model", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_heat_field_traces_one_graph_for_any_query_count(tmp_path):
    """The heat field's shared-damping shortcut is a Python branch on the data: the trace must
    not take it (a TracerWarning would say the graph fixed one case), and the graph must
    decode one query as well as many."""
    import warnings

    torch.manual_seed(0)
    config = model_preset("edsr-thermal")
    config.encoder = EDSRConfig(n_resblocks=1, n_feats=8)
    model = build_model(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        export_onnx(model, tmp_path / "m.onnx")
    runtime = load_onnx_model(tmp_path / "m.onnx")
    lr = photo_tensor((200, 80, 230, 104)) * 2 - 1
    with torch.no_grad():
        proj = model.latent_projection(model.encode(lr))
        coord = C.make_coord((60, 48)).unsqueeze(0)
        cell = C.cell_size((60, 48)).expand(1, coord.shape[1], 2)
        for queries in (1, coord.shape[1]):
            expected = model.decode(proj, coord[:, :queries], cell[:, :queries], skip_image=lr)
            got = runtime.decode(proj.contiguous(), coord[:, :queries], cell[:, :queries], skip_image=lr)
            assert (got - expected).abs().max() <= 1e-4
