#!/usr/bin/python3
"""peer_torch.py -- the PyTorch peer of nightshift-bench-exec: images/s of the same model.

    peer_torch.py MODEL.h5 --frames FRAMES.u8 [--arch resnet18|mobilenet_v2|file]
                  [--size S] [--batch N] [--secs T] [--threads N]
                  [--memory-format contiguous|channels_last] [--emb-out FILE]
                  [--device cpu|cuda]

The network is what the nightshift model file MODEL.h5 computes, built the way
a careful PyTorch user would:
  --arch resnet18 / mobilenet_v2: the torchvision network exactly as
      tools/torch2ns.py builds it (weights=None after torch.manual_seed(0)),
      classifier replaced by Identity (tools/torch_embed.py's backbone()).
  --arch file: the graph read from MODEL.h5 with h5py (Input, Conv, Relu,
      GlobalAveragePool, MaxPool, Flatten, L2Norm in a chain: the default backbone)
      rebuilt as an nn.Sequential of Conv2d/ReLU with the file's weights.
Preprocessing, from MODEL.h5's attributes and done by torch on the uint8
frames inside the timed loop: (n, S, S, 3) -> float, area resize to the
model's input when it is smaller (avg_pool2d for integer factors, then
rounded to whole pixel values as nightshift's uint8 resize does), x / 255,
(x - mean) / std; L2 normalisation when l2_normalize says so.

FRAMES.u8 is raw uint8 (batch, S, S, 3) as nightshift-bench-exec --frames-out
writes it, so both sides see the same pixels.  After one warm-up batch,
batches run for at least --secs; prints `images_per_s <v>` and the memory
format.  --emb-out writes the warm-up batch's embeddings as raw float32.

--device cuda (default cpu) puts the model and the uint8 frames on the GPU
(the upload is outside the timed loop, as ours keeps frames on the host but
is compared on compute), in strict fp32: TF32 is turned off for matmul and
cuDNN, and the loop is bracketed by torch.cuda.synchronize().  Without h5py
(the GPU machine may lack it) the torchvision arches fall back to what
tools/torch2ns.py writes by default (ImageNet mean/std, no L2 norm, input
--size); --arch file needs h5py and exits 3 without it.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))


def chain_from_file(f):
    """nn.Sequential for a chain-shaped model file (the default backbone)."""
    nodes = {n["name"].decode(): n for n in f["nodes"][:]}
    consumer = {}
    for name, n in nodes.items():
        for i in n["inputs"]:
            if i:
                if i.decode() in consumer:
                    raise SystemExit(f"peer_torch: '{i.decode()}' feeds two nodes: not a chain")
                consumer[i.decode()] = name
    cur = next(k for k, n in nodes.items() if n["op"] == b"Input")
    out = f.attrs["output"].decode()
    layers = []
    while cur != out:
        cur = consumer[cur]
        n = nodes[cur]
        op, ia = n["op"].decode(), [int(v) for v in n["iattr"]]
        if op == "Conv":
            w = torch.from_numpy(f[f"weights/{cur}/W"][...])
            b = f.get(f"weights/{cur}/B")
            if ia[4] != ia[6] or ia[5] != ia[7]:
                raise SystemExit(f"peer_torch: asymmetric pads in '{cur}'")
            c = torch.nn.Conv2d(w.shape[1] * ia[10], w.shape[0], (ia[0], ia[1]),
                                stride=(ia[2], ia[3]), padding=(ia[4], ia[5]),
                                dilation=(ia[8], ia[9]), groups=ia[10], bias=b is not None)
            with torch.no_grad():
                c.weight.copy_(w)
                if b is not None:
                    c.bias.copy_(torch.from_numpy(b[...]))
            layers.append(c)
        elif op == "Relu":
            layers.append(torch.nn.ReLU(inplace=True))
        elif op == "GlobalAveragePool":
            layers.append(torch.nn.AdaptiveAvgPool2d(1))
        elif op == "MaxPool":  # the default backbone's global max over its last 4x4 map
            if ia[4] != ia[6] or ia[5] != ia[7]:
                raise SystemExit(f"peer_torch: asymmetric pads in '{cur}'")
            layers.append(torch.nn.MaxPool2d((ia[0], ia[1]), stride=(ia[2], ia[3]),
                                             padding=(ia[4], ia[5])))
        elif op == "Flatten":
            layers.append(torch.nn.Flatten(1))
        elif op == "L2Norm":
            pass  # normalised below, as l2_normalize says
        else:
            raise SystemExit(f"peer_torch: op '{op}' ('{cur}') not handled by --arch file")
    return torch.nn.Sequential(*layers)


def torchvision_backbone(arch):
    import torch_embed  # tools/: torch2ns.build_model(arch, None, 0), classifier -> Identity
    return torch_embed.backbone(arch, None, 0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="nightshift model file (.h5)")
    p.add_argument("--frames", required=True, help="raw uint8 (batch, S, S, 3)")
    p.add_argument("--arch", default="file", help="resnet18, mobilenet_v2 or file [file]")
    p.add_argument("--size", type=int, default=224, help="frame size S [224]")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--secs", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory-format", choices=("contiguous", "channels_last"),
                   default="channels_last")
    p.add_argument("--emb-out", help="raw float32 embeddings of the warm-up batch")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("peer_torch: --device cuda but torch sees no GPU")
        # Ours computes in fp32; TF32 would make the peer faster and less exact.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        # The peer's best eager set-up: cuDNN picks its fastest algorithms in the warm-up.
        torch.backends.cudnn.benchmark = True
    try:
        import h5py
    except ImportError:
        h5py = None
    if h5py is not None:
        with h5py.File(a.model, "r") as f:
            size = int(f.attrs["input_size"])
            mean = torch.tensor(f.attrs["mean"], dtype=torch.float32).view(1, 3, 1, 1)
            std = torch.tensor(f.attrs["std"], dtype=torch.float32).view(1, 3, 1, 1)
            l2 = bool(f.attrs["l2_normalize"])
            if f.attrs["channel_order"] != b"rgb":
                raise SystemExit("peer_torch: only rgb models")
            model = chain_from_file(f) if a.arch == "file" else torchvision_backbone(a.arch)
    elif a.arch == "file":
        print("peer_torch: --arch file needs h5py, which is missing", file=sys.stderr)
        sys.exit(3)
    else:
        import onnx2ns  # tools/ (on sys.path): torch2ns.py's default mean/std
        print("peer_torch: no h5py: torch2ns defaults assumed (ImageNet mean/std, no L2)",
              file=sys.stderr)
        size, l2 = a.size, False
        mean = torch.tensor(onnx2ns.IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(onnx2ns.IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
        model = torchvision_backbone(a.arch)
    model.eval()
    cl = a.memory_format == "channels_last"
    model = model.to(dev)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    S = a.size
    if size > S or S % size:
        raise SystemExit(f"peer_torch: model input {size} vs frames {S}: need an integer factor")
    fr = np.fromfile(a.frames, np.uint8)
    if fr.size != a.batch * S * S * 3:
        raise SystemExit(f"peer_torch: {a.frames} holds {fr.size} bytes, not {a.batch}x{S}x{S}x3")
    frames = torch.from_numpy(fr.reshape(a.batch, S, S, 3)).to(dev)
    # Folding 1/255 into the affine: x = v * (1 / (255 std)) - mean / std.
    scale, shift = (1.0 / (255.0 * std)).to(dev), (-mean / std).to(dev)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    def embed(u8):
        x = u8.permute(0, 3, 1, 2)  # (n, 3, S, S) view, channels_last strides
        x = x.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
        x = x.float()
        if size < S:
            x = torch.floor(F.avg_pool2d(x, S // size) + 0.5)
        y = model(torch.addcmul(shift, x, scale))
        y = y.reshape(y.shape[0], -1)
        return F.normalize(y, dim=1) if l2 else y

    with torch.inference_mode():
        y = embed(frames)  # warm-up
        if a.emb_out:
            y.cpu().numpy().astype(np.float32).tofile(a.emb_out)
        sync()
        n, t0 = 0, time.perf_counter()
        t = t0
        while t - t0 < a.secs:
            embed(frames)
            n += a.batch
            sync()  # a no-op on cpu; on cuda each batch is timed to completion
            t = time.perf_counter()
    print(f"images_per_s {n / (t - t0):.2f}")
    print(f"memory_format {a.memory_format} threads {torch.get_num_threads()} "
          f"batch {a.batch} torch {torch.__version__} device {a.device}")


if __name__ == "__main__":
    main()
