"""LIIF's training sampler and the image folders (liifsr.data)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from liifsr.data import (
    DataConfig,
    DataError,
    EpochSampler,
    ImageFolder,
    LIIFTrainSet,
    augment,
    ensure_min_side,
    iterations_per_epoch,
    list_images,
    make_sample,
    make_train_loader,
    sample_generator,
    split_paths,
    spread_indices,
    validation_pair,
)
from liifsr.resize import pil_bicubic

FLAG_COMBOS = list(itertools.product([False, True], repeat=3))


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """An asymmetric uint8 (3, H, W) image: no flip or transpose maps it onto itself."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8))


def position_image(h: int, w: int) -> torch.Tensor:
    """R = row, G = column, B = 7: every pixel says where it is."""
    rows = torch.arange(h).view(h, 1).expand(h, w)
    cols = torch.arange(w).view(1, w).expand(h, w)
    return torch.stack([rows, cols, torch.full((h, w), 7)]).to(torch.uint8)


def pixel_index(coord: torch.Tensor, side: int) -> torch.Tensor:
    """Row or column of the pixel whose centre is `coord` on a grid of `side` pixels."""
    position = (coord + 1) * side / 2 - 0.5
    assert torch.allclose(position, position.round(), atol=1e-4), "coords are not pixel centres"
    return position.round().long()


def reconstruct(sample: dict[str, torch.Tensor], side: int) -> torch.Tensor:
    """The float HR crop (3, side, side) from a sample that queries all its pixels."""
    rows = pixel_index(sample["coord"][:, 0], side)
    cols = pixel_index(sample["coord"][:, 1], side)
    hr = torch.full((3, side, side), -1.0)
    hr[:, rows, cols] = sample["gt"].t()
    assert (hr >= 0).all(), "some pixel was never sampled"
    return hr


# --- the sampler ----------------------------------------------------------------------


def test_crop_scale_cell_and_coordinates():
    image = position_image(120, 150)
    config = DataConfig(patch_size=8, scale_min=1.0, scale_max=4.0, sample_q=64, augment=False)
    for index in range(20):
        sample = make_sample(image, config, sample_generator(0, 1, index))
        assert sample["inp"].shape == (3, 8, 8) and sample["coord"].shape == (64, 2)
        assert sample["cell"].shape == (64, 2) and sample["gt"].shape == (64, 3)
        side = round(2 / float(sample["cell"][0, 0]))
        assert torch.equal(sample["cell"], torch.full((64, 2), 2 / side))  # cell = 2 / HR size
        assert 8 <= side <= 32
        rows = pixel_index(sample["coord"][:, 0], side)
        cols = pixel_index(sample["coord"][:, 1], side)
        # gt is the image pixel at the query: R - row and G - col are the crop's corner.
        top = (sample["gt"][:, 0] * 255).round().long() - rows
        left = (sample["gt"][:, 1] * 255).round().long() - cols
        assert (top == top[0]).all() and (left == left[0]).all()
        assert 0 <= top[0] <= 120 - side and 0 <= left[0] <= 150 - side
        crop = image[:, top[0] : top[0] + side, left[0] : left[0] + side].float() / 255
        assert torch.equal(sample["inp"], pil_bicubic(crop, (8, 8)))


def test_scale_follows_the_drawn_value():
    image = position_image(200, 200)
    config = DataConfig(patch_size=8, scale_min=2.0, scale_max=3.0, sample_q=16, augment=False)
    sides = {round(2 / float(make_sample(image, config, sample_generator(1, 0, i))["cell"][0, 0])) for i in range(30)}
    assert sides <= set(range(16, 25)) and len(sides) > 3


def test_flips_and_transpose_are_the_same_for_lr_and_hr():
    image = random_image(16, 16)  # the crop (scale 2, side 16) is the whole image
    config = DataConfig(patch_size=8, scale_min=2.0, scale_max=2.0, sample_q=256, augment=True)
    seen = set()
    for index in range(24):
        sample = make_sample(image, config, sample_generator(3, 0, index))
        hr = reconstruct(sample, 16)
        full = image.float() / 255
        matches = [flags for flags in FLAG_COMBOS if torch.equal(hr, augment(full, *flags))]
        assert len(matches) == 1
        assert torch.equal(sample["inp"], augment(pil_bicubic(full, (8, 8)), *matches[0]))
        seen.add(matches[0])
    assert len(seen) >= 6  # every flag is really drawn


def test_queries_are_drawn_without_replacement():
    image = random_image(64, 64)
    config = DataConfig(patch_size=8, scale_min=1.0, scale_max=1.0, sample_q=64)
    sample = make_sample(image, config, sample_generator(0, 0, 0))
    assert len({tuple(c) for c in sample["coord"].tolist()}) == 64  # 8 x 8 crop: every pixel once


def folder_of(tmp_path, count: int) -> ImageFolder:
    """`count` random 40 x 40 PNG files, loaded into memory."""
    paths = []
    for seed in range(count):
        paths.append(tmp_path / f"{seed}.png")
        Image.fromarray(random_image(40, 40, seed).permute(1, 2, 0).numpy()).save(paths[-1])
    return ImageFolder(paths, cache=True)


def test_samples_are_determined_by_seed_epoch_and_index(tmp_path):
    images = folder_of(tmp_path, 3)
    dataset = LIIFTrainSet(images, DataConfig(patch_size=8, sample_q=32, repeat=2), seed=5)
    first, again = dataset[(2, 4)], dataset[(2, 4)]
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(dataset[(3, 4)]["coord"], first["coord"])  # another epoch
    assert not torch.equal(LIIFTrainSet(images, dataset.config, seed=6)[(2, 4)]["coord"], first["coord"])


def test_batches_do_not_depend_on_workers(tmp_path):
    images = folder_of(tmp_path, 4)
    dataset = LIIFTrainSet(images, DataConfig(patch_size=8, sample_q=16, repeat=2), seed=0)

    def batches(workers: int) -> list[dict[str, torch.Tensor]]:
        loader = make_train_loader(dataset, batch_size=4, num_workers=workers)
        loader.sampler.set_epoch(3)
        return list(loader)

    for a, b in zip(batches(0), batches(1), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_distributed_split_gives_the_same_global_batches():
    single = list(torch.utils.data.BatchSampler(EpochSampler(22, seed=1), 4, drop_last=True))
    ranks = []
    for rank in range(2):
        sampler = EpochSampler(22, seed=1, rank=rank, world_size=2)
        ranks.append(list(torch.utils.data.BatchSampler(sampler, 2, drop_last=True)))
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 5
    for batch, part0, part1 in zip(single, *ranks):
        assert sorted(batch) == sorted(part0 + part1)


# --- the small-image rule -------------------------------------------------------------


def test_small_images_clamp_the_crop_to_the_shorter_side():
    image = position_image(20, 30)
    config = DataConfig(patch_size=8, scale_min=1.0, scale_max=4.0, sample_q=64, augment=False)
    for index in range(40):
        generator = sample_generator(0, 0, index)
        drawn = 1.0 + 3.0 * float(torch.rand((), generator=sample_generator(0, 0, index), dtype=torch.float64))
        side = round(2 / float(make_sample(image, config, generator)["cell"][0, 0]))
        assert side == min(round(8 * drawn), 20)


def test_images_below_the_patch_size_are_enlarged_and_give_scale_one(tmp_path):
    Image.fromarray(np.zeros((5, 12, 3), np.uint8) + 100).save(tmp_path / "tiny.png")
    enlarged = ImageFolder([tmp_path / "tiny.png"], cache=True, min_side=8)[0]
    assert enlarged.shape == (3, 8, 19)  # shorter side 5 -> 8, 12 * 8 / 5 = 19.2 -> 19
    assert ensure_min_side(random_image(9, 9), 8).shape == (3, 9, 9)  # large enough: unchanged
    config = DataConfig(patch_size=8, scale_min=1.0, scale_max=4.0, sample_q=64)
    for index in range(5):
        assert torch.equal(make_sample(enlarged, config, sample_generator(0, 0, index))["cell"], torch.full((64, 2), 0.25))


# --- folders and validation -----------------------------------------------------------


def test_folders_are_searched_recursively_and_converted_to_rgb(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    Image.fromarray(np.full((9, 10), 50, np.uint8), mode="L").save(tmp_path / "a" / "gray.png")
    Image.fromarray(np.full((9, 10, 4), 60, np.uint8), mode="RGBA").save(tmp_path / "a" / "deep" / "alpha.webp", lossless=True)
    Image.fromarray(np.full((9, 10, 3), 70, np.uint8)).save(tmp_path / "a" / "deep" / "c.BMP")
    Image.fromarray(np.full((9, 10, 3), 80, np.uint8)).save(tmp_path / "a" / "d.jpeg")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    paths = list_images([tmp_path / "a"])
    assert [p.relative_to(tmp_path / "a").as_posix() for p in paths] == ["d.jpeg", "deep/alpha.webp", "deep/c.BMP", "gray.png"]
    for image in ImageFolder(paths, cache=False):
        assert image.dtype == torch.uint8 and image.shape == (3, 9, 10)


def test_folder_errors_are_one_line_data_errors(tmp_path):
    with pytest.raises(DataError, match="liifsr data download div2k"):
        list_images([tmp_path / "DIV2K" / "DIV2K_train_HR"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no png"):
        list_images([tmp_path / "empty"])
    (tmp_path / "benchmark" / "Set5").mkdir(parents=True)
    with pytest.raises(DataError, match="benchmark"):
        list_images([tmp_path / "benchmark" / "Set5"])
    (tmp_path / "DIV2K" / "DIV2K_valid_HR").mkdir(parents=True)  # the paper's Table 4 set
    with pytest.raises(DataError, match="benchmark"):
        list_images([tmp_path / "DIV2K" / "DIV2K_valid_HR"])


def test_validation_images_are_held_out_of_training(tmp_path):
    for name in "abcdefghij":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"{name}.png")
    config = DataConfig(train_dirs=[str(tmp_path)], val_count=3)
    train, val = split_paths(config)
    assert [p.stem for p in val] == ["a", "d", "g"] and len(train) == 7 and not set(train) & set(val)
    assert split_paths(config) == (train, val)  # deterministic
    assert spread_indices(0, 5) == []
    with pytest.raises(DataError, match="cannot hold out 11 validation images from 10"):
        split_paths(DataConfig(train_dirs=[str(tmp_path)], val_count=11))


def test_validation_pair():
    image = random_image(37, 50)
    lr, hr = validation_pair(image, 4, "pil")
    assert hr.shape == (3, 36, 48) and lr.shape == (3, 9, 12)
    lr, hr = validation_pair(image, 3, "matlab", max_size=30)
    assert hr.shape == (3, 30, 30) and lr.shape == (3, 10, 10)
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit, like an LR file


@pytest.mark.parametrize("samples, batch_size, world_size", [(962, 16, 1), (22, 4, 2), (23, 4, 2), (10, 4, 1)])
def test_iterations_per_epoch_is_the_loaders_length(tmp_path, samples, batch_size, world_size):
    dataset = LIIFTrainSet(folder_of(tmp_path, 1), DataConfig(patch_size=8, sample_q=16, repeat=samples), seed=0)
    loader = make_train_loader(dataset, batch_size=batch_size, num_workers=0, rank=world_size - 1, world_size=world_size)
    assert len(dataset) == samples
    assert iterations_per_epoch(samples, batch_size, world_size) == len(loader)
