"""Pack PNG frame folders into lossless H.264 (libx264rgb, qp 0) files, and unpack them with OpenCV.

pack:   python pack.py pack SRC_DATASET OUT_DIR     (SRC/{train,test}/<clip>/*.png -> OUT/{train,test}/<clip>.mkv)
unpack: python pack.py unpack PACKED_DIR DATASET    (OpenCV only: the GPU image has cv2, not PyAV)
check:  python pack.py check SRC_DATASET PACKED_DIR (every frame decoded by cv2 equals its PNG)
"""
import sys
from pathlib import Path

import os

import numpy as np

CRF = os.environ.get("CRF", "0")


def pack(src: Path, out: Path) -> None:
    import av
    from PIL import Image
    for clip in sorted(p for p in src.glob("*/*") if p.is_dir()):
        frames = sorted(clip.glob("*.png"))
        dst = out / clip.parent.name / f"{clip.name}.mkv"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(dst), "w") as container:
            stream = container.add_stream("libx264rgb", rate=25)
            first = np.asarray(Image.open(frames[0]).convert("RGB"))
            stream.height, stream.width = first.shape[:2]
            stream.pix_fmt = "bgr24"
            stream.options = {"crf": CRF, "preset": "slow"}
            for f in frames:
                rgb = np.asarray(Image.open(f).convert("RGB"))
                frame = av.VideoFrame.from_ndarray(rgb[..., ::-1].copy(), format="bgr24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def decode(path: Path):
    import cv2
    cap = cv2.VideoCapture(str(path))
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        yield bgr


def unpack(packed: Path, dataset: Path) -> None:
    import cv2
    n = 0
    for f in sorted(packed.glob("*/*.mkv")):
        d = dataset / f.parent.name / f.stem
        d.mkdir(parents=True, exist_ok=True)
        for i, bgr in enumerate(decode(f)):
            cv2.imwrite(str(d / f"{i:05d}.png"), bgr)
            n += 1
    print(f"unpacked {n} frames into {dataset}")


def check(src: Path, packed: Path) -> None:
    from PIL import Image
    bad = 0
    for f in sorted(packed.glob("*/*.mkv")):
        pngs = sorted((src / f.parent.name / f.stem).glob("*.png"))
        dec = list(decode(f))
        assert len(dec) == len(pngs), (f, len(dec), len(pngs))
        for p, bgr in zip(pngs, dec):
            if not np.array_equal(np.asarray(Image.open(p).convert("RGB")), bgr[..., ::-1]):
                bad += 1
    print(f"checked: {bad} frames differ")


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    {"pack": pack, "unpack": unpack, "check": check}[cmd](Path(a), Path(b))
