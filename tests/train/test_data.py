"""Training pairs: bicubic LR, aligned patches, augmentation, determinism, sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srplug.color import rgb_to_y
from srplug.datasets import read_image
from srplug.errors import DatasetError, InputError
from srplug.resize import imresize_uint8, modcrop
from srplug.train.data import (
    PatchParams,
    PatchStream,
    TrainPairs,
    augment,
    patch_tensor,
    resolve_train_folders,
)
from tests.train.conftest import make_images


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """Sizes that are not multiples of 3, so mod-cropping matters."""
    return make_images(tmp_path_factory.mktemp("odd"), 3, (41, 50), seed=5)


def test_lr_is_matlab_bicubic_of_modcropped_hr(odd_folder):
    data = TrainPairs([odd_folder], 3, 12)
    assert len(data) == 3
    for (hr, lr), path in zip(data.pairs, sorted(odd_folder.iterdir()), strict=True):
        expected_hr = modcrop(read_image(path), 3)
        assert hr.shape == (39, 48, 3) and np.array_equal(hr, expected_hr)
        assert np.array_equal(lr, imresize_uint8(expected_hr, 1 / 3))


def test_patches_are_aligned_crops(odd_folder):
    data = TrainPairs([odd_folder], 3, 12, flip=False, rot90=False)
    for v in range(20):
        p = data.params(v)
        assert p.hflip is False and p.rot == 0 and p.image == v % 3
        lr, hr = data.patch_pair(p)
        full_hr, full_lr = data.pairs[p.image]
        assert lr.shape == (4, 4, 3) and hr.shape == (12, 12, 3)
        assert np.array_equal(lr, full_lr[p.top : p.top + 4, p.left : p.left + 4])
        assert np.array_equal(hr, full_hr[3 * p.top : 3 * p.top + 12, 3 * p.left : 3 * p.left + 12])


@pytest.mark.parametrize("hflip", [False, True])
@pytest.mark.parametrize("rot", [0, 1, 2, 3])
def test_augmentation_keeps_alignment(hr_folder, hflip, rot):
    """Away from its border, the bicubic shrink of the augmented HR patch is the augmented LR
    patch: a flip or rotation applied to one side only would break this badly."""
    data = TrainPairs([hr_folder], 2, 32)
    p = PatchParams(image=1, top=3, left=5, hflip=hflip, rot=rot)
    lr, hr = data.patch_pair(p)
    shrunk = imresize_uint8(hr, 0.5).astype(int)
    inner = (slice(3, -3), slice(3, -3))
    assert np.abs(shrunk[inner] - lr[inner]).max() <= 1
    plain_lr, _ = data.patch_pair(PatchParams(1, 3, 5, False, 0))
    assert np.array_equal(lr, augment(plain_lr, hflip, rot))
    if hflip or rot:
        assert not np.array_equal(lr, plain_lr)


def test_augmentations_cover_all_eight_variants(hr_folder):
    data = TrainPairs([hr_folder], 2, 16)
    seen = {(data.params(v).hflip, data.params(v).rot) for v in range(200)}
    assert len(seen) == 8


def test_items_are_deterministic_given_the_seed(hr_folder):
    a = TrainPairs([hr_folder], 2, 16, seed=7)
    b = TrainPairs([hr_folder], 2, 16, seed=7)
    c = TrainPairs([hr_folder], 2, 16, seed=8)
    for v in (0, 5, 123):
        assert all(torch.equal(x, y) for x, y in zip(a[v], b[v], strict=True))
    assert any(not torch.equal(a[v][1], c[v][1]) for v in range(5))


def test_tensor_layout_rgb_and_y(hr_folder):
    rgb = TrainPairs([hr_folder], 2, 16, channels="rgb")
    y = TrainPairs([hr_folder], 2, 16, channels="y")
    lr_rgb, hr_rgb = rgb[4]
    lr_y, hr_y = y[4]
    assert lr_rgb.shape == (3, 8, 8) and hr_rgb.shape == (3, 16, 16)
    assert lr_rgb.dtype == torch.float32 and lr_rgb.min() >= 0 and lr_rgb.max() <= 1
    assert lr_y.shape == (1, 8, 8) and hr_y.shape == (1, 16, 16)
    assert torch.allclose(hr_y, rgb_to_y(hr_rgb)) and torch.allclose(lr_y, rgb_to_y(lr_rgb))
    assert float(hr_y.min()) >= 16 / 255 - 1e-6 and float(hr_y.max()) <= 235 / 255 + 1e-6


def test_y_items_come_from_cached_planes_bit_identical_to_converting_patches(odd_folder):
    """Y models crop cached luma planes; every item (all 8 augmentations, both HR scales)
    equals converting that item's RGB patch."""
    data = TrainPairs([odd_folder], 3, 12, channels="y", hr_scales=(1.0, 0.9))
    assert data.y_planes is not None and len(data.y_planes) == len(data)
    seen = set()
    for v in range(200):
        p = data.params(v)
        seen.add((p.hflip, p.rot))
        lr_rgb, hr_rgb = data.patch_pair(p)
        lr, hr = data[v]
        assert torch.equal(lr, patch_tensor(lr_rgb, "y")) and lr.shape == (1, 4, 4)
        assert torch.equal(hr, patch_tensor(hr_rgb, "y")) and hr.shape == (1, 12, 12)
    assert len(seen) == 8
    assert TrainPairs([odd_folder], 3, 12, channels="rgb").y_planes is None


def test_y_item_covering_a_whole_image_is_a_copy(tmp_path):
    """A crop that is the whole (contiguous) plane comes back as a copy, never a view."""
    whole = TrainPairs(
        [make_images(tmp_path, 1, (36, 36), seed=2)], 3, 36, channels="y", flip=False, rot90=False
    )
    lr, hr = whole[0]
    assert hr.shape == (1, 36, 36) and lr.shape == (1, 12, 12)
    before = whole.y_planes[0][0].copy()
    hr.fill_(0.0)
    lr.fill_(0.0)
    assert np.array_equal(whole.y_planes[0][0], before)
    assert float(whole.y_planes[0][1].min()) >= 16 / 255 - 1e-6


def test_hr_scales_add_shrunk_copies_and_small_images_are_skipped(hr_folder):
    data = TrainPairs([hr_folder], 2, 32, hr_scales=(1.0, 0.5))
    assert len(data) == 4  # 40x52 halves to 20x26: smaller than the 32px patch
    assert len(data.skipped) == 4 and data.skipped[0].endswith("@0.5")
    more = TrainPairs([hr_folder], 2, 16, hr_scales=(1.0, 0.5))
    assert len(more) == 8 and more.pairs[1][0].shape == (20, 26, 3)
    with pytest.raises(DatasetError, match="lower data.patch_size"):
        TrainPairs([hr_folder], 2, 64)
    with pytest.raises(InputError, match="not a multiple"):
        TrainPairs([hr_folder], 3, 16)


def test_stream_visits_each_image_once_per_epoch():
    stream = PatchStream(5, seed=0)
    it = iter(stream)
    ids = [next(it) for _ in range(15)]
    for epoch in range(3):
        chunk = ids[5 * epoch : 5 * epoch + 5]
        assert sorted(v % 5 for v in chunk) == list(range(5))
        assert all(v // 5 == epoch for v in chunk)
    assert ids[:5] != [v - 5 for v in ids[5:10]]  # a fresh order each epoch


def test_stream_shards_add_up_to_the_single_process_stream():
    single = PatchStream(7, seed=3)
    shards = [PatchStream(7, seed=3, rank=r, world_size=2) for r in range(2)]
    batch = 3  # per process
    for step in range(5):
        local = [[s.global_index(step * batch + i) for i in range(batch)] for s in shards]
        whole = [single.global_index(step * 2 * batch + i) for i in range(2 * batch)]
        assert sorted(local[0] + local[1]) == sorted(whole)


def test_stream_start_resumes_the_sequence():
    it = iter(PatchStream(4, seed=1, rank=1, world_size=3))
    ids = [next(it) for _ in range(10)]
    later = iter(PatchStream(4, seed=1, rank=1, world_size=3, start=6))
    assert [next(later) for _ in range(4)] == ids[6:]


def test_benchmark_and_validation_folders_are_refused(tmp_path, hr_folder):
    set5 = make_images(tmp_path / "Set5", 1, (20, 20), seed=0)
    with pytest.raises(DatasetError, match="never be trained on"):
        resolve_train_folders([str(set5)], None)
    with pytest.raises(DatasetError, match="never be trained on"):
        resolve_train_folders([str(hr_folder)], None, exclude=[hr_folder])
    assert resolve_train_folders(["hr"], hr_folder.parent) == [hr_folder]
