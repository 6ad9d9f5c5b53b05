import copy

import pytest
import torch

from liifsr.models import ENCODERS, Encoder, model_preset
from liifsr.models.edsr import EDSR, EDSRConfig
from liifsr.models.liif import LIIF
from liifsr.models.rdn import RDN, RDNConfig


def count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_paper_parameter_counts_without_mean_shift():
    # The paper's 1,567,323 and 579,259 include LIIF's 24 unused mean-shift parameters.
    for name in ("edsr-liif-relu", "edsr-liif-siren30", "edsr-liif-siren15"):
        assert LIIF(model_preset(name)).num_parameters() == 1_567_323 - 24
    for name in ("edsrless-liif-relu", "edsrless-liif-siren30"):
        assert LIIF(model_preset(name)).num_parameters() == 579_259 - 24


def test_edsr_layout_and_literal_parameter_count():
    encoder = ENCODERS.build(EDSRConfig(n_resblocks=16, n_feats=64))
    conv = lambda cin, cout: cin * cout * 9 + cout  # noqa: E731
    assert count(encoder) == conv(3, 64) + 16 * 2 * conv(64, 64) + conv(64, 64)
    assert len(encoder.body) == 17 and encoder.out_dim == 64


def test_edsr_long_skip_and_res_scale():
    torch.manual_seed(0)
    encoder = EDSR(EDSRConfig(n_resblocks=2, n_feats=8, res_scale=0.5))
    x = torch.rand(1, 3, 6, 7)
    head = encoder.head(x)
    h = head
    for block in encoder.body[:2]:
        h = h + 0.5 * block.body(h)
    expected = encoder.body[2](h) + head
    assert torch.allclose(encoder(x), expected, atol=1e-6)


def test_rdn_configuration_b():
    encoder = RDN(RDNConfig())
    assert len(encoder.RDBs) == 16 and len(encoder.RDBs[0].convs) == 8 and encoder.out_dim == 64
    assert encoder.RDBs[0].convs[7].conv[0].in_channels == 64 + 7 * 64
    assert encoder(torch.rand(1, 3, 5, 6)).shape == (1, 64, 5, 6)


@pytest.fixture(scope="module", params=ENCODERS.names())
def part(request):
    """(config, encoder) of every registered encoder, in its default configuration."""
    torch.manual_seed(0)
    config = ENCODERS.configs[request.param]()
    return config, ENCODERS.build(config).eval()


def test_an_encoder_declares_its_features_and_keeps_the_resolution(part):
    config, encoder = part
    assert isinstance(encoder, Encoder) and encoder.out_dim == config.out_dim > 0
    with torch.no_grad():
        assert encoder(torch.rand(2, 3, 5, 6)).shape == (2, encoder.out_dim, 5, 6)
    # The config's own count, which bounds a model file before anything is built, is the module's.
    assert count(encoder) == config.size(3)[0]


@pytest.mark.parametrize("axis", [0, 1])
def test_receptive_radius_is_how_far_a_feature_reads(part, axis):
    """The feature at a pixel depends on the input within receptive_radius of it and on
    nothing beyond, along each axis: a NaN pixel turns exactly the features that read it
    into NaN, whatever the weights (0 x NaN is NaN, as is ReLU(NaN)). On a strip one pixel
    across, which keeps RDN's 131 cheap; in float64, which no fused kernel or Winograd
    convolution runs (either could hide a NaN or spread it further)."""
    _, encoder = part
    radius = encoder.receptive_radius
    side = 2 * radius + 5
    x = torch.rand((1, 3, side, 1) if axis == 0 else (1, 3, 1, side), dtype=torch.float64)
    centre = side // 2
    x.view(3, side)[:, centre] = float("nan")
    with torch.no_grad():
        reads = copy.deepcopy(encoder).double()(x).isnan().any(dim=1).flatten().nonzero().view(-1)
    assert reads.tolist() == list(range(centre - radius, centre + radius + 1))


def literal_edsr(encoder, x):
    """EDSR with res_scale 1 written out: head, conv-ReLU-conv + input per block, last conv + head."""
    conv = lambda layer, h: torch.nn.functional.conv2d(h, layer.weight, layer.bias, padding=1)  # noqa: E731
    head = conv(encoder.head[0], x)
    h = head
    for block in encoder.body[:-1]:
        h = conv(block.body[2], torch.relu(conv(block.body[0], h))) + h
    return conv(encoder.body[-1], h) + head


@pytest.mark.usefixtures("kernel_branch")
def test_edsr_inference_equals_the_literal_network():
    torch.manual_seed(0)
    encoder = EDSR(EDSRConfig(n_resblocks=3, n_feats=16))
    x = torch.rand(2, 3, 19, 23) * 2 - 1
    expected = literal_edsr(encoder, x)
    trained = encoder(x)  # gradients enabled: FusedConv
    with torch.no_grad():
        fused = encoder(x)  # oneDNN convolutions with the ReLU and the additions in their epilogues
        fused_channels_last = encoder(x.contiguous(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused_bf16 = encoder(x)
    for out in (trained, fused, fused_channels_last):
        assert torch.allclose(out, expected, atol=1e-5)
    assert fused_bf16.dtype == torch.bfloat16
    assert (fused_bf16.float() - expected).abs().max() < 0.05 * expected.abs().max()


def gradients(encoder, forward, x, weights):
    """d(sum(forward(x) * weights))/d(x and every parameter), in fp32."""
    encoder.zero_grad()
    x = x.clone().requires_grad_()
    (forward(x).float() * weights).sum().backward()
    return [x.grad.clone()] + [p.grad.clone() for p in encoder.parameters()]


@pytest.mark.usefixtures("kernel_branch")
def test_edsr_training_has_the_literal_gradients():
    """FusedConv's backward (ReLU mask from the kept output, the addend's gradient passed
    through) against autograd through the literal network, for the input and every weight:
    equal in fp32; in bf16 as far from fp32 as the literal network under autocast is."""
    torch.manual_seed(0)
    encoder = EDSR(EDSRConfig(n_resblocks=3, n_feats=16))
    x = (torch.rand(2, 3, 19, 23) * 2 - 1).contiguous(memory_format=torch.channels_last)
    weights = torch.randn(2, 16, 19, 23)
    literal = gradients(encoder, lambda h: literal_edsr(encoder, h), x, weights)
    fused = gradients(encoder, encoder, x, weights)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused_bf16 = gradients(encoder, encoder, x, weights)
        literal_bf16 = gradients(encoder, lambda h: literal_edsr(encoder, h), x, weights)
    names = ["input"] + [name for name, _ in encoder.named_parameters()]
    for name, expected, got, got_bf16, literal_bf16_grad in zip(names, literal, fused, fused_bf16, literal_bf16):
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4), name
        assert got_bf16.dtype == torch.float32, name
        error = (got_bf16 - expected).norm() / expected.norm()
        literal_error = (literal_bf16_grad - expected).norm() / expected.norm()
        assert error <= 1.25 * literal_error + 0.005, (name, error, literal_error)


def test_the_fused_kernels_are_found_when_first_probed_under_autocast():
    """The probe's first call usually comes from inside an upscale's bf16 autocast (the
    encoder's first convolution): it must find what it finds outside, or every bf16 run
    of the process takes the plain convolutions, a separate ReLU and addition pass each."""
    from liifsr.kernels import fused_works

    fused_works.cache_clear()
    try:
        outside = fused_works(torch.bfloat16)
        fused_works.cache_clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert fused_works(torch.bfloat16) == outside
    finally:
        fused_works.cache_clear()  # the next test probes afresh
    if not outside:
        pytest.skip("oneDNN's fused bf16 ops do not run on this CPU: the probe's answer was checked, not the ops")
