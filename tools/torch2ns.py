#!/usr/bin/python3
"""torch2ns.py -- a torchvision backbone as a nightshift model file.

    torch2ns.py ARCH OUT.h5 [--weights FILE.pth] [--seed N] [--size S]
                [--keep-onnx FILE.onnx] [--l2norm] [--output NODE] [--name NAME]

ARCH is a torchvision.models constructor (resnet18, mobilenet_v2, ...).  The
network is built with weights=None -- nothing is ever downloaded -- and then
either loaded from a state_dict saved with torch.save (--weights) or left with
torchvision's random initialisation drawn after torch.manual_seed(--seed).  It
is exported in eval mode with torch.onnx.export (opset 13, batch 1, S x S) and
converted by onnx2ns.py; the embedding is the input of the final classifier
layer unless --output says otherwise.

Exit status as onnx2ns.py: 0 written, 1 bad input, 2 usage or unsupported ops.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx2ns  # noqa: E402


def build_model(arch, weights=None, seed=0):
    """The torchvision network in eval mode: random (seeded) or from a state_dict."""
    import torch
    import torchvision
    ctor = getattr(torchvision.models, arch, None)
    if ctor is None or not callable(ctor) or arch.startswith("_") or arch[0].isupper():
        raise onnx2ns.ConvertError(f"'{arch}' is not a torchvision.models constructor")
    torch.manual_seed(seed)
    kw = {"weights": None}
    if arch in ("googlenet", "inception_v3"):
        kw.update(aux_logits=False, init_weights=True)
    m = ctor(**kw)
    if weights:
        sd = torch.load(weights, map_location="cpu")
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise onnx2ns.ConvertError(f"'{weights}' does not hold a state_dict")
        m.load_state_dict(sd)
    return m.eval()


def export_onnx(model, size, path, opset=13):
    import torch
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True,
                          training=torch.onnx.TrainingMode.EVAL)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="torchvision model name, e.g. resnet18, mobilenet_v2")
    p.add_argument("out", help="output nightshift model file (.h5)")
    p.add_argument("--weights", metavar="FILE", help="state_dict (.pth) to load")
    p.add_argument("--seed", type=int, default=0, help="seed of the random init [0]")
    p.add_argument("--size", type=int, default=224, help="input size S [224]")
    p.add_argument("--keep-onnx", metavar="FILE", help="also keep the exported ONNX here")
    p.add_argument("--l2norm", action="store_true", help="append an L2Norm node")
    p.add_argument("--output", metavar="NODE", help="embedding node (see onnx2ns.py)")
    p.add_argument("--mean", type=float, nargs=3, default=onnx2ns.IMAGENET_MEAN, metavar="M")
    p.add_argument("--std", type=float, nargs=3, default=onnx2ns.IMAGENET_STD, metavar="S")
    p.add_argument("--name", help="display name [ARCH-seedN or ARCH-WEIGHTS]")
    a = p.parse_args(argv)
    if not 1 <= a.size <= 4096:
        p.error("--size must be in 1..4096")
    name = a.name or (f"{a.arch}-{os.path.splitext(os.path.basename(a.weights))[0]}"
                      if a.weights else f"{a.arch}-seed{a.seed}")
    try:
        import torch
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        model = build_model(a.arch, a.weights, a.seed)
        with tempfile.TemporaryDirectory(prefix="torch2ns-") as tmp:
            path = a.keep_onnx or os.path.join(tmp, f"{a.arch}.onnx")
            export_onnx(model, a.size, path)
            onnx2ns.convert(path, a.out, a.output, a.l2norm, a.size, a.mean, a.std, "rgb", name)
    except onnx2ns.Unsupported as e:
        print(f"torch2ns: {a.arch}: {e}", file=sys.stderr)
        return 2
    except (onnx2ns.ConvertError, OSError, RuntimeError) as e:
        print(f"torch2ns: {a.arch}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
