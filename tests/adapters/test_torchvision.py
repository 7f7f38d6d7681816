"""srplug.adapters.torchvision: LR/HR pairs from torchvision-style datasets, paired transforms.

Plain map-style datasets stand in for torchvision's here (torchvision cannot be imported
beside this CPU torch); one test uses torchvision's own Compose / ImageFolder where it
imports and is skipped otherwise.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from srplug.adapters import torchvision as stv
from torch.utils.data import DataLoader

import srplug
from srplug.color import rgb_to_y
from srplug.errors import DatasetError, InputError
from srplug.io import write_image


def pil_images(n: int, size: tuple[int, int] = (40, 36), seed: int = 0) -> list[Image.Image]:
    """Smooth RGB PIL images (W, H = size)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = rng.integers(0, 256, (size[1] // 4, size[0] // 4, 3), dtype=np.uint8)
        out.append(Image.fromarray(coarse).resize(size, Image.BICUBIC))
    return out


class LabelledImages:
    """A map-style dataset of (PIL image, class index), like ImageFolder."""

    def __init__(self, n: int = 6, seed: int = 0) -> None:
        self.images = pil_images(n, seed=seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return self.images[i], i % 3


def test_the_module_never_imports_torchvision():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torchvision':\n"
        "            raise ImportError('torchvision is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "from srplug.adapters.torchvision import SRPairs, ToLRHR\n"
        "lr, hr = SRPairs([np.zeros((20, 20, 3), np.uint8)], 2, 8)[0]\n"
        "assert lr.shape == (3, 4, 4) and hr.shape == (3, 8, 8)\n"
        "assert 'torchvision' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_pairs_from_a_labelled_dataset():
    ds = stv.SRPairs(LabelledImages(), scale=2, patch_size=16, seed=1, return_target=True)
    assert len(ds) == 6
    lr, hr, target = ds[4]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16) and target == 1
    assert lr.dtype == hr.dtype == torch.float32 and lr.min() >= 0 and hr.max() <= 1
    again = ds[4]
    assert torch.equal(again[0], lr) and torch.equal(again[1], hr)  # seeded by (seed, epoch, i)
    ds.set_epoch(1)
    assert not torch.equal(ds[4][1], hr)  # a new epoch draws new crops
    assert len(stv.SRPairs(LabelledImages(), 2, 16)[0]) == 2  # targets dropped by default


def test_bicubic_lr_is_aligned_with_the_hr_patch():
    """Without flips, LR is exactly the 8-bit MATLAB-bicubic shrink of the HR patch."""
    ds = stv.SRPairs(LabelledImages(), 3, patch_size=12, flip=False, rot90=False, seed=2)
    for i in range(3):
        lr, hr = ds[i]
        assert torch.equal(lr, stv.bicubic_lr(hr, 3))
    whole = stv.SRPairs(LabelledImages(), 3, patch_size=None, flip=False, rot90=False)
    lr, hr = whole[0]
    assert hr.shape == (3, 36, 39) and lr.shape == (3, 12, 13)  # 36x40 cropped to x3


@pytest.mark.parametrize(
    "item",
    [
        np.full((20, 22), 128, np.uint8),  # gray ndarray
        np.random.default_rng(0).random((20, 22, 3)).astype(np.float32),  # float RGB
        torch.randint(0, 256, (3, 20, 22), dtype=torch.uint8),  # uint8 tensor
        torch.rand(1, 20, 22),  # gray float tensor
        {"image": Image.new("RGBA", (22, 20), (10, 20, 30, 40)), "label": 7},
        (np.zeros((20, 22, 3), np.uint16), "target"),
    ],
    ids=["gray-ndarray", "float-ndarray", "uint8-tensor", "gray-tensor", "dict", "tuple"],
)
def test_any_image_kind(item):
    ds = stv.SRPairs([item], 2, 8, channels="y", return_target=True)
    lr, hr, _ = ds[0]
    assert lr.shape == (1, 4, 4) and hr.shape == (1, 8, 8)
    assert float(hr.min()) >= 16 / 255 - 1e-6 and float(hr.max()) <= 235 / 255 + 1e-6  # BT.601


def test_targets_are_extracted():
    assert stv.extract_image(("img", 3)) == ("img", 3)
    assert stv.extract_image(("img", 3, "x")) == ("img", (3, "x"))
    assert stv.extract_image(("t", "img"), index=1) == ("img", "t")
    assert stv.extract_image({"img": "a", "y": 2}) == ("a", {"y": 2})
    assert stv.extract_image("plain") == ("plain", None)
    with pytest.raises(InputError, match="without an image key"):
        stv.extract_image({"pixels": 1})


def test_transforms_compose():
    def compose(*steps):
        def run(x):
            for step in steps:
                x = step(x)
            return x

        return run

    chain = compose(
        stv.ToImageTensor(),
        stv.RandomPatch(24, scale=4),
        stv.ToLRHR(4),
        stv.RandomPairedFlipRotate(),
        stv.PairedToY(),
    )
    lr, hr = chain(pil_images(1)[0])
    assert lr.shape == (1, 6, 6) and hr.shape == (1, 24, 24)
    full_lr, full_hr = stv.ToLRHR(2)(stv.to_image_tensor(pil_images(1)[0]))
    g = torch.Generator().manual_seed(0)
    lr, hr = stv.RandomPairedCrop(8, 2)((full_lr, full_hr), generator=g)
    assert lr.shape == (3, 4, 4) and hr.shape == (3, 8, 8)
    windows = [
        (t, c)
        for t in range(full_lr.shape[1] - 3)
        for c in range(full_lr.shape[2] - 3)
        if torch.equal(full_lr[:, t : t + 4, c : c + 4], lr)
    ]
    hr_at = [full_hr[:, 2 * t : 2 * t + 8, 2 * c : 2 * c + 8] for t, c in windows]
    assert any(torch.equal(h, hr) for h in hr_at)  # the HR crop lies above the LR crop

    def variants(t: torch.Tensor) -> list[torch.Tensor]:
        return [torch.rot90(t.flip(-1) if f else t, k, (-2, -1)) for f in (0, 1) for k in range(4)]

    for seed in range(8):  # every flip / rotation treats both images alike
        g = torch.Generator().manual_seed(seed)
        a, b = stv.RandomPairedFlipRotate()((lr, hr), generator=g)
        which = [i for i, v in enumerate(variants(lr)) if torch.equal(v, a)]
        assert which and any(torch.equal(variants(hr)[i], b) for i in which)


def test_real_torchvision_image_folder_and_compose(tmp_path):
    tv = pytest.importorskip(
        "torchvision", reason="torchvision does not import beside this CPU torch build"
    )
    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i, img in enumerate(pil_images(2, seed=len(label))):
            img.save(tmp_path / label / f"{i}.png")
    folder = tv.datasets.ImageFolder(tmp_path)
    pairs = stv.SRPairs(folder, 2, 16, return_target=True)
    assert [pairs[i][2] for i in range(len(pairs))] == [0, 0, 1, 1]
    assert pairs[3][0].shape == (3, 8, 8)
    chain = tv.transforms.Compose([stv.ToImageTensor(), stv.ToLRHR(2), stv.PairedToY()])
    lr, hr = chain(pil_images(1)[0])
    assert lr.shape == (1, 18, 20) and hr.shape == (1, 36, 40)
    as_tensor = tv.transforms.Compose([tv.transforms.ToTensor(), stv.ToLRHR(4)])
    lr, hr = as_tensor(pil_images(1)[0])  # torchvision's own ToTensor output is accepted
    assert lr.shape == (3, 9, 10) and torch.equal(lr, stv.bicubic_lr(hr, 4))


def test_image_files_and_errors(tmp_path):
    for i, img in enumerate(pil_images(3, seed=4)):
        write_image(tmp_path / f"{i}.png", np.asarray(img))
    (tmp_path / "notes.txt").write_text("not an image")
    files = stv.ImageFiles(tmp_path)
    assert len(files) == 3 and files[0].shape == (36, 40, 3)
    assert stv.SRPairs(files, 4, 32)[2][1].shape == (3, 32, 32)
    with pytest.raises(DatasetError, match="does not exist"):
        stv.ImageFiles(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image files"):
        stv.ImageFiles(tmp_path / "empty")
    with pytest.raises(InputError, match="map-style dataset"):
        stv.SRPairs(iter([]), 2)
    with pytest.raises(InputError, match="not a multiple of the scale"):
        stv.SRPairs(files, 3, 16)
    with pytest.raises(InputError, match="smaller than the 64px patch"):
        stv.SRPairs(files, 2, 64)[0]
    with pytest.raises(InputError, match="turned"):
        stv.ToLRHR(2, degradation=lambda x: x)(torch.rand(3, 8, 8))


def test_training_end_to_end_through_kornia_degradations_and_the_wrapper():
    """A few optimizer steps of ESPCN on a labelled PIL dataset, LR made by the kornia
    "real" degradation (blur, shrink, noise, JPEG); the loss on a fixed batch drops."""
    pytest.importorskip("kornia")
    from srplug.adapters.kornia import build_degradation

    torch.manual_seed(0)
    data = stv.SRPairs(
        LabelledImages(8, seed=5),
        scale=2,
        patch_size=16,
        degradation=build_degradation("real", 2),
        channels="y",
        seed=3,
    )
    loader = DataLoader(
        data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    model = srplug.get("espcn", 2, weights=None).model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    lr_fixed, hr_fixed = next(iter(DataLoader(data, batch_size=8)))

    def fixed_loss() -> float:
        with torch.no_grad():
            return torch.nn.functional.l1_loss(model(lr_fixed), hr_fixed).item()

    start = fixed_loss()
    for epoch in range(8):
        data.set_epoch(epoch)
        for lr, hr in loader:
            loss = torch.nn.functional.l1_loss(model(lr), hr)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert np.isfinite(start) and fixed_loss() < 0.7 * start
    assert torch.allclose(rgb_to_y(torch.full((3, 1, 1), 1.0)), torch.tensor(235 / 255))
