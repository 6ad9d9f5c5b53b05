import torch
import torch.nn.functional as F

from liifsr import coords as C


def test_pixel_centers_span_minus_one_to_one():
    centers = C.pixel_centers(4)
    assert torch.allclose(centers, torch.tensor([-0.75, -0.25, 0.25, 0.75]))


def test_nearest_index_equals_grid_sample_nearest():
    torch.manual_seed(0)
    for n in (1, 5, 23, 31, 48):
        # Random points plus points on and around every cell border, where ties happen.
        borders = -1 + 2 * torch.arange(n + 1).float() / n
        points = torch.cat([torch.rand(2000) * 2 - 1, borders, borders + 1e-7, borders - 1e-7]).clamp(-1 + 1e-6, 1 - 1e-6)
        values = torch.arange(n).float().view(1, 1, n, 1)
        grid = torch.stack([torch.zeros_like(points), points], dim=-1).view(1, -1, 1, 2)
        expected = F.grid_sample(values, grid, mode="nearest", align_corners=False).view(-1).long()
        assert torch.equal(C.nearest_index(points, n), expected)


def test_ensemble_weights_are_opposite_areas_and_sum_to_one():
    rel = [torch.tensor([[-0.2, -0.3]]), torch.tensor([[-0.2, 0.7]]), torch.tensor([[0.8, -0.3]]), torch.tensor([[0.8, 0.7]])]
    weights = C.ensemble_weights(rel)
    areas = torch.tensor([0.8 * 0.7, 0.8 * 0.3, 0.2 * 0.7, 0.2 * 0.3])  # opposite corners
    assert torch.allclose(torch.stack(weights).view(-1), areas / areas.sum(), atol=1e-6)
    assert torch.allclose(sum(weights), torch.ones(1))


def test_bilinear_sample_equals_grid_sample_on_full_and_windowed_image():
    torch.manual_seed(1)
    image = torch.rand(2, 3, 9, 13)
    coord = torch.rand(2, 300, 2) * 2.2 - 1.1  # includes points outside, to test border padding
    expected = F.grid_sample(image, coord.flip(-1).unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=False)
    expected = expected[:, :, 0, :].permute(0, 2, 1)
    assert torch.allclose(C.bilinear_sample(image, coord, (9, 13)), expected, atol=1e-6)
    # A window must give the same values for queries whose neighbours lie inside it.
    inside = coord[:, :, 0].abs() < 0.3
    window = image[:, :, 2:8, 1:12]
    sampled = C.bilinear_sample(window, coord.clamp(-0.3, 0.3), (9, 13), window=(2, 1))
    assert torch.allclose(sampled[inside], C.bilinear_sample(image, coord.clamp(-0.3, 0.3), (9, 13))[inside], atol=1e-6)


def test_relative_cell_scales_by_grid_size():
    cell = torch.tensor([[2 / 80, 2 / 109]])
    assert torch.allclose(C.relative_cell(cell, (23, 31)), torch.tensor([[2 * 23 / 80, 2 * 31 / 109]]))
