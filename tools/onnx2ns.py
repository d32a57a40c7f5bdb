#!/usr/bin/python3
"""onnx2ns.py -- convert an ONNX CNN backbone into a nightshift model file.

    onnx2ns.py MODEL.onnx OUT.h5 [--output NODE] [--l2norm] [--size S]
               [--mean R G B] [--std R G B] [--channel-order rgb|bgr] [--name NAME]

Needs only onnx, numpy and h5py.  The file layout and the model_id recipe are
those of include/nightshift/model.h and docs/model.md.

What it does:
  * initializers and Constant nodes are constants; nodes whose inputs are all
    constants (Identity, Cast, Transpose, Reshape, Unsqueeze, Squeeze, Concat,
    Add, Sub, Mul, Div, Sqrt, Neg) are evaluated with numpy (constant folding);
  * the embedding is, by default, the input of the last Gemm (the classifier),
    or the node named by --output (an ONNX node name, one of its output tensor
    names, or the nightshift node name it becomes); only what that node needs is
    converted, so a classifier head with unsupported ops does not matter;
  * ops map one to one (Conv, BatchNormalization, Relu, Clip, Sigmoid,
    HardSigmoid, HardSwish, Mul, Add, MaxPool, AveragePool, GlobalAveragePool,
    Flatten, Gemm, Concat); Sigmoid followed by Mul (SiLU) stays two nodes;
  * trivial torchvision patterns: Identity and Dropout are no-ops; Reshape to
    (batch, -1) is a Flatten (or a no-op on an already flat tensor); ReduceMean
    over axes (2, 3) is a GlobalAveragePool (plus a Flatten when keepdims=0);
    Squeeze of axes (2, 3) of a (c, 1, 1) tensor is a Flatten; MatMul by a
    constant (k, m) matrix is a Gemm with the transposed weight;
  * Gemm with transB=0 gets its weight transposed, alpha and beta are folded
    into the weight and bias; Concat of more than 4 inputs becomes a chain.

Exit status: 0 written; 1 bad input (unreadable file, no single image input,
impossible shapes); 2 usage errors and anything we cannot map: every
unsupported op type is listed with one node that uses it.
"""
import argparse
import hashlib
import os
import struct
import sys

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NAME_LEN, OP_LEN, MAX_INPUTS, N_IATTR, N_FATTR, WNAME_LEN = 64, 32, 4, 16, 4, 16
(IA_KH, IA_KW, IA_STRIDE_H, IA_STRIDE_W, IA_PAD_TOP, IA_PAD_LEFT, IA_PAD_BOTTOM, IA_PAD_RIGHT,
 IA_DIL_H, IA_DIL_W, IA_GROUPS, IA_CEIL_MODE, IA_COUNT_INCLUDE_PAD, IA_AXIS) = range(14)
FA_MIN, FA_MAX, FA_ALPHA, FA_BETA, FA_EPS = 0, 1, 0, 1, 0
WEIGHT_SLOTS = {"Conv": ["W", "B"], "Gemm": ["W", "B"],
                "BatchNormalization": ["gamma", "beta", "mean", "var"]}
F32_LOWEST, F32_MAX = float(np.finfo(np.float32).min), float(np.finfo(np.float32).max)

# ONNX op types we translate (some only in the trivial forms described above).
MAPPED = {"Conv", "BatchNormalization", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish",
          "Mul", "Add", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Gemm",
          "Concat", "Reshape", "ReduceMean", "Squeeze", "Identity", "Dropout", "MatMul", "Pad"}
FOLDABLE = {"Identity", "Cast", "Transpose", "Reshape", "Unsqueeze", "Squeeze", "Concat", "Add",
            "Sub", "Mul", "Div", "Sqrt", "Neg"}


class ConvertError(Exception):
    """Bad input: exit status 1."""


class Unsupported(Exception):
    """Something we cannot map: exit status 2."""


def attrs_of(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def as_str(v):
    return v.decode() if isinstance(v, bytes) else v


# ---- constant folding ------------------------------------------------------------------

def constant_value(node):
    from onnx import numpy_helper
    a = node.attribute[0] if node.attribute else None
    if a is None:
        raise ConvertError(f"Constant node '{node.name}' has no value")
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    if a.name in ("value_float", "value_int"):
        return np.array(a.f if a.name == "value_float" else a.i)
    if a.name in ("value_floats", "value_ints"):
        return np.array(list(a.floats) if a.name == "value_floats" else list(a.ints))
    raise Unsupported(f"Constant node '{node.name}' holds a {a.name}")


def onnx_reshape(x, shape):
    shape = [x.shape[i] if s == 0 else int(s) for i, s in enumerate(shape)]
    return x.reshape(shape)


def fold(node, ins, opset):
    """numpy value of a node whose inputs are all constants (None: not foldable)."""
    from onnx import helper
    a = attrs_of(node)
    op = node.op_type
    if op == "Identity":
        return ins[0]
    if op == "Cast":
        if hasattr(helper, "tensor_dtype_to_np_dtype"):   # onnx >= 1.13
            return ins[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))
        from onnx import mapping
        return ins[0].astype(mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])
    if op == "Transpose":
        return np.transpose(ins[0], a.get("perm"))
    if op == "Reshape":
        return onnx_reshape(ins[0], ins[1])
    if op in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes") if opset < 13 else (list(ins[1]) if len(ins) > 1 else None)
        if op == "Squeeze":
            return np.squeeze(ins[0], axis=tuple(axes) if axes is not None else None)
        out = ins[0]
        rank = out.ndim + len(axes)
        for ax in sorted(int(x) % rank for x in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Concat":
        return np.concatenate(ins, axis=a.get("axis", 0))
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
    if op in binary:
        if op == "Div" and np.issubdtype(ins[0].dtype, np.integer):
            return (ins[0] // ins[1]).astype(ins[0].dtype)
        return binary[op](ins[0], ins[1]).astype(np.result_type(ins[0], ins[1]))
    if op == "Sqrt":
        return np.sqrt(ins[0])
    if op == "Neg":
        return -ins[0]
    return None


# ---- the converter ---------------------------------------------------------------------

class Converter:
    def __init__(self, model, size=None):
        from onnx import numpy_helper
        self.g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          13)
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.size = size
        self.nodes = []      # our records, topological order
        self.shape = {}      # our node name -> per-sample shape (c, h, w) or (d,)
        self.src = {}        # ONNX tensor name -> our node name
        self.used = set()    # our node names

    # -- names
    def new_name(self, onnx_name, fallback):
        base = onnx_name.strip("/").replace("/", ".") or fallback
        base = base.encode("ascii", "replace").decode().replace("?", "_")
        base = base[:NAME_LEN - 1]
        name, k = base, 1
        while name in self.used:
            tail = f"~{k}"
            name = base[:NAME_LEN - 1 - len(tail)] + tail
            k += 1
        self.used.add(name)
        return name

    def add(self, name, op, inputs, shape, iattr=None, fattr=None, weights=None):
        self.nodes.append({"name": name, "op": op, "inputs": list(inputs),
                           "iattr": iattr or [0] * N_IATTR, "fattr": fattr or [0.0] * N_FATTR,
                           "weights": weights or {}})
        self.shape[name] = tuple(int(d) for d in shape)
        return name

    # -- graph-level steps
    def fold_constants(self):
        """Evaluates constant subgraphs; returns the remaining nodes."""
        rest = []
        for n in self.g.node:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = constant_value(n)
                continue
            ins = [i for i in n.input if i]
            if n.op_type in FOLDABLE and ins and all(i in self.consts for i in ins):
                v = fold(n, [self.consts[i] for i in n.input if i], self.opset)
                if v is not None:
                    self.consts[n.output[0]] = np.asarray(v)
                    continue
            rest.append(n)
        return rest

    def graph_input(self):
        ins = [i for i in self.g.input if i.name not in self.consts]
        if len(ins) != 1:
            raise ConvertError(f"the graph has {len(ins)} non-constant inputs "
                               f"({', '.join(i.name for i in ins)}); need exactly one image")
        i = ins[0]
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in i.type.tensor_type.shape.dim]
        if len(dims) != 4 or dims[1] not in (3, None):
            raise ConvertError(f"input '{i.name}' has shape {dims}; need (N, 3, S, S)")
        h, w = dims[2], dims[3]
        if self.size is None:
            if h is None or w is None or h != w:
                raise ConvertError(f"input '{i.name}' is {h}x{w}; give --size S")
            self.size = h
        elif (h is not None and h != self.size) or (w is not None and w != self.size):
            raise ConvertError(f"input '{i.name}' is {h}x{w}, not --size {self.size}")
        return i.name

    def pick_output(self, nodes, want):
        if want is None:
            gemms = [n for n in nodes if n.op_type in ("Gemm", "MatMul")]
            if gemms:
                return gemms[-1].input[0], f"input of the last {gemms[-1].op_type} " \
                                           f"'{gemms[-1].name}'"
            return self.g.output[0].name, "graph output"
        for n in nodes:
            if want == n.name or want in n.output or \
                    want == n.name.strip("/").replace("/", "."):
                return n.output[0], f"node '{n.name}'"
        if any(want == i.name for i in self.g.input):
            return want, "graph input"
        raise ConvertError(f"--output '{want}' names no node or tensor of the graph")

    def needed(self, nodes, out_tensor):
        """Nodes the output depends on, in graph order."""
        producer = {o: n for n in nodes for o in n.output}
        need, todo = set(), [out_tensor]
        while todo:
            t = todo.pop()
            n = producer.get(t)
            if n is None or id(n) in need:
                continue
            need.add(id(n))
            todo.extend(i for i in n.input if i and i not in self.consts)
        return [n for n in nodes if id(n) in need]

    # -- helpers for node translation
    def x(self, node, k=0):
        t = node.input[k]
        if t in self.consts:
            raise Unsupported(f"node '{node.name}' ({node.op_type}): input {k} ('{t}') is a "
                              f"constant; nightshift needs a computed tensor there")
        if t not in self.src:
            raise ConvertError(f"node '{node.name}': input '{t}' is produced by nothing")
        return self.src[t]

    def const(self, node, k, what):
        if len(node.input) <= k or not node.input[k]:
            return None
        t = node.input[k]
        if t not in self.consts:
            raise Unsupported(f"node '{node.name}' ({node.op_type}): {what} ('{t}') must be a "
                              f"constant")
        return self.consts[t]

    def spatial(self, node, a, xs, kh, kw, dil, conv):
        """iattr of a conv/pool: kernel, strides, pads (ONNX order t, l, b, r), dilations."""
        if len(xs) != 3:
            raise ConvertError(f"node '{node.name}' ({node.op_type}) needs a (c, h, w) input")
        s = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        auto = as_str(a.get("auto_pad", "NOTSET"))
        if len(s) != 2 or len(pads) != 4 or len(dil) != 2:
            raise Unsupported(f"node '{node.name}' ({node.op_type}): only 2-D is supported")
        if auto == "VALID":
            pads = [0, 0, 0, 0]
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0, 0, 0, 0]
            for d, (n_in, k) in enumerate(zip(xs[1:], (kh, kw))):
                out = -(-n_in // s[d])
                total = max(0, (out - 1) * s[d] + (k - 1) * dil[d] + 1 - n_in)
                small, big = total // 2, total - total // 2
                pads[d], pads[d + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto != "NOTSET":
            raise Unsupported(f"node '{node.name}': auto_pad {auto}")
        ia = [0] * N_IATTR
        ia[IA_KH], ia[IA_KW], ia[IA_STRIDE_H], ia[IA_STRIDE_W] = kh, kw, s[0], s[1]
        ia[IA_PAD_TOP], ia[IA_PAD_LEFT], ia[IA_PAD_BOTTOM], ia[IA_PAD_RIGHT] = pads
        if conv:
            ia[IA_DIL_H], ia[IA_DIL_W] = dil
        ceil = int(a.get("ceil_mode", 0)) if not conv else 0
        ia[IA_CEIL_MODE] = ceil
        oh = pool_out(xs[1], dil[0] * (kh - 1) + 1, s[0], pads[0], pads[2], ceil)
        ow = pool_out(xs[2], dil[1] * (kw - 1) + 1, s[1], pads[1], pads[3], ceil)
        if oh < 1 or ow < 1:
            raise ConvertError(f"node '{node.name}': kernel does not fit input {xs[1]}x{xs[2]}")
        return ia, oh, ow

    # -- one ONNX node
    def convert_node(self, n):
        op, a = n.op_type, attrs_of(n)
        name = lambda: self.new_name(n.name, f"{op.lower()}_{len(self.nodes)}")  # noqa: E731
        out = n.output[0]
        if op in ("Identity", "Dropout"):
            if len(n.output) > 1 and n.output[1]:
                raise Unsupported(f"node '{n.name}' (Dropout): the mask output is used")
            self.src[out] = self.x(n)
            return
        if op == "Pad":   # torch exports avg_pool2d(padding=0) as a zero Pad + AveragePool
            pads = a.get("pads") if self.opset < 11 else self.const(n, 1, "pads")
            if pads is None or any(int(v) for v in np.asarray(pads).reshape(-1)):
                raise Unsupported(f"node '{n.name}' (Pad): only all-zero pads (a no-op)")
            self.src[out] = self.x(n)
            return
        if op == "Conv":
            x = self.x(n)
            xs = self.shape[x]
            w = self.const(n, 1, "the weight")
            b = self.const(n, 2, "the bias")
            if w is None or w.ndim != 4:
                raise Unsupported(f"node '{n.name}' (Conv): only 2-D convolutions")
            kh, kw = a.get("kernel_shape", w.shape[2:])
            g = int(a.get("group", 1))
            ia, oh, ow = self.spatial(n, a, xs, kh, kw, list(a.get("dilations", [1, 1])), True)
            ia[IA_GROUPS] = g
            if w.shape[1] * g != xs[0]:
                raise ConvertError(f"node '{n.name}' (Conv): weight {w.shape} with group {g} "
                                   f"does not fit {xs[0]} input channels")
            ws = {"W": w}
            if b is not None:
                ws["B"] = b.reshape(-1)
            self.src[out] = self.add(name(), "Conv", [x], (w.shape[0], oh, ow), ia, None, ws)
            return
        if op == "BatchNormalization":
            if len([o for o in n.output if o]) > 1 or a.get("training_mode", 0):
                raise Unsupported(f"node '{n.name}': BatchNormalization in training mode")
            x = self.x(n)
            ws = {k: self.const(n, i + 1, k).reshape(-1)
                  for i, k in enumerate(("gamma", "beta", "mean", "var"))}
            eps = float(a.get("epsilon", 1e-5))
            if self.folds_into_conv(n):
                fa = [0.0] * N_FATTR
                fa[FA_EPS] = eps
                self.src[out] = self.add(name(), op, [x], self.shape[x], None, fa, ws)
                return
            # nightshift folds a BatchNormalization only into a Conv it alone reads; any
            # other one (DenseNet's pre-activation BN) becomes the equivalent depthwise
            # 1x1 Conv, which every executor runs.
            c = self.shape[x][0]
            scale = ws["gamma"].astype(np.float64) / np.sqrt(ws["var"].astype(np.float64) + eps)
            bias = ws["beta"] - ws["mean"].astype(np.float64) * scale
            ia, oh, ow = self.spatial(n, {}, self.shape[x], 1, 1, [1, 1], True)
            ia[IA_GROUPS] = c
            cw = {"W": scale.astype(np.float32).reshape(c, 1, 1, 1), "B": bias.astype(np.float32)}
            self.src[out] = self.add(name(), "Conv", [x], (c, oh, ow), ia, None, cw)
            return
        if op in ("Relu", "Sigmoid", "HardSwish"):
            x = self.x(n)
            self.src[out] = self.add(name(), op, [x], self.shape[x])
            return
        if op == "HardSigmoid":
            x = self.x(n)
            fa = [0.0] * N_FATTR
            fa[FA_ALPHA], fa[FA_BETA] = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
            self.src[out] = self.add(name(), op, [x], self.shape[x], None, fa)
            return
        if op == "Clip":
            x = self.x(n)
            if self.opset < 11:
                lo, hi = a.get("min", F32_LOWEST), a.get("max", F32_MAX)
            else:
                lo, hi = self.const(n, 1, "min"), self.const(n, 2, "max")
                lo = F32_LOWEST if lo is None else float(np.asarray(lo).reshape(-1)[0])
                hi = F32_MAX if hi is None else float(np.asarray(hi).reshape(-1)[0])
            fa = [0.0] * N_FATTR
            fa[FA_MIN], fa[FA_MAX] = max(lo, F32_LOWEST), min(hi, F32_MAX)
            self.src[out] = self.add(name(), op, [x], self.shape[x], None, fa)
            return
        if op in ("Add", "Mul"):
            x, y = self.x(n, 0), self.x(n, 1)
            xs, ys = self.shape[x], self.shape[y]
            se = lambda p, q: len(p) == 3 and len(q) == 3 and q == (p[0], 1, 1)  # noqa: E731
            if op == "Mul" and se(ys, xs) and xs != ys:
                x, y, xs, ys = y, x, ys, xs
            if xs != ys and not (op == "Mul" and se(xs, ys)):
                raise Unsupported(f"node '{n.name}' ({op}): broadcast of {xs} with {ys}")
            self.src[out] = self.add(name(), op, [x, y], xs)
            return
        if op in ("MaxPool", "AveragePool"):
            if op == "MaxPool" and len([o for o in n.output if o]) > 1:
                raise Unsupported(f"node '{n.name}' (MaxPool): the Indices output is used")
            dil = list(a.get("dilations", [1, 1]))
            if any(d != 1 for d in dil):
                raise Unsupported(f"node '{n.name}' ({op}): dilations {dil}")
            x = self.x(n)
            kh, kw = a["kernel_shape"]
            ia, oh, ow = self.spatial(n, a, self.shape[x], kh, kw, [1, 1], False)
            if op == "AveragePool":
                ia[IA_COUNT_INCLUDE_PAD] = int(a.get("count_include_pad", 0))
            self.src[out] = self.add(name(), op, [x], (self.shape[x][0], oh, ow), ia)
            return
        if op == "GlobalAveragePool":
            x = self.x(n)
            self.src[out] = self.add(name(), op, [x], (self.shape[x][0], 1, 1))
            return
        if op == "Flatten":
            if int(a.get("axis", 1)) != 1:
                raise Unsupported(f"node '{n.name}' (Flatten): axis {a.get('axis')} (only 1)")
            self.flatten(n, name)
            return
        if op == "Reshape":
            x = self.x(n)
            t = [int(v) for v in self.const(n, 1, "the shape").reshape(-1)]
            d = int(np.prod(self.shape[x]))
            if len(t) != 2 or t[0] not in (0, 1, -1) or t[1] not in (-1, d) or \
                    (t[0] == -1 and t[1] != d):
                raise Unsupported(f"node '{n.name}' (Reshape): to {t} is not a flatten of "
                                  f"{self.shape[x]}")
            self.flatten(n, name)
            return
        if op == "Squeeze":
            axes = a.get("axes") if self.opset < 13 else self.const(n, 1, "axes")
            xs = self.shape[self.x(n)]
            if axes is None or len(xs) != 3 or sorted(int(v) % 4 for v in axes) != [2, 3] \
                    or xs[1:] != (1, 1):
                raise Unsupported(f"node '{n.name}' (Squeeze): only axes (2, 3) of (c, 1, 1)")
            self.flatten(n, name)
            return
        if op == "ReduceMean":
            axes = a.get("axes") if self.opset < 18 else self.const(n, 1, "axes")
            x = self.x(n)
            if axes is None or len(self.shape[x]) != 3 or \
                    sorted(int(v) % 4 for v in axes) != [2, 3]:
                raise Unsupported(f"node '{n.name}' (ReduceMean): only over axes (2, 3)")
            gap = self.add(name(), "GlobalAveragePool", [x], (self.shape[x][0], 1, 1))
            if int(a.get("keepdims", 1)):
                self.src[out] = gap
            else:
                fl = self.new_name(gap + ".flatten", "flatten")
                ia = [0] * N_IATTR
                ia[IA_AXIS] = 1
                self.src[out] = self.add(fl, "Flatten", [gap], (self.shape[x][0],), ia)
            return
        if op in ("Gemm", "MatMul"):
            x = self.x(n)
            if len(self.shape[x]) != 1:
                raise Unsupported(f"node '{n.name}' ({op}): input is {self.shape[x]}, not flat")
            w = self.const(n, 1, "the weight")
            if w is None or w.ndim != 2:
                raise Unsupported(f"node '{n.name}' ({op}): needs a 2-D constant weight")
            if op == "MatMul":
                w, c = w.T, None
            else:
                if int(a.get("transA", 0)):
                    raise Unsupported(f"node '{n.name}' (Gemm): transA=1")
                w = w if int(a.get("transB", 0)) else w.T
                w = w * np.float32(a.get("alpha", 1.0))
                c = self.const(n, 2, "the bias")
            if w.shape[1] != self.shape[x][0]:
                raise ConvertError(f"node '{n.name}' ({op}): weight {w.shape} on "
                                   f"{self.shape[x][0]} inputs")
            ws = {"W": np.ascontiguousarray(w)}
            if c is not None:
                c = np.broadcast_to(c.astype(np.float32) * np.float32(a.get("beta", 1.0)),
                                    (1, w.shape[0])).reshape(-1)
                ws["B"] = c
            self.src[out] = self.add(name(), "Gemm", [x], (w.shape[0],), None, None, ws)
            return
        if op == "Concat":
            xs_ = [self.x(n, k) for k in range(len(n.input))]
            shapes = [self.shape[v] for v in xs_]
            ax = int(a["axis"])
            if any(len(s) != 3 for s in shapes) or ax not in (1, -3):
                raise Unsupported(f"node '{n.name}' (Concat): only channels (axis 1) of "
                                  f"(c, h, w) tensors")
            if any(s[1:] != shapes[0][1:] for s in shapes):
                raise ConvertError(f"node '{n.name}' (Concat): inputs {shapes} differ in h, w")
            ia = [0] * N_IATTR
            ia[IA_AXIS] = 1
            cur, c = xs_[:MAX_INPUTS], sum(s[0] for s in shapes[:MAX_INPUTS])
            rest = xs_[MAX_INPUTS:]
            base = name()
            node = self.add(base, op, cur, (c,) + shapes[0][1:], ia)
            k = MAX_INPUTS
            while rest:   # more than 4 inputs: a chain of Concats
                take = rest[:MAX_INPUTS - 1]
                rest = rest[MAX_INPUTS - 1:]
                c += sum(self.shape[v][0] for v in take)
                k += len(take)
                node = self.add(self.new_name(f"{base}.{k}", "concat"), op, [node] + take,
                                (c,) + shapes[0][1:], ia)
            self.src[out] = node
            return
        raise Unsupported(f"node '{n.name}': {op}")

    def folds_into_conv(self, bn):
        """Whether nightshift's loader will fold bn: it reads a Conv nothing else reads."""
        t = bn.input[0]
        prod = self.producer.get(t)
        return prod is not None and prod.op_type == "Conv" and self.consumers.get(t, 0) == 1 \
            and t != self.out_tensor

    def flatten(self, n, name):
        x = self.x(n)
        xs = self.shape[x]
        if len(xs) == 1:   # already flat: a no-op
            self.src[n.output[0]] = x
            return
        ia = [0] * N_IATTR
        ia[IA_AXIS] = 1
        self.src[n.output[0]] = self.add(name(), "Flatten", [x], (int(np.prod(xs)),), ia)


def pool_out(n_in, k, s, p0, p1, ceil_mode):
    """ONNX output size; ceil_mode drops a window starting in the end padding."""
    span = n_in + p0 + p1 - k
    if span < 0:
        return 0
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n_in + p0:
        out -= 1
    return out


# ---- the file --------------------------------------------------------------------------

def pad(s, n):
    b = s.encode() if isinstance(s, str) else s
    if len(b) >= n:
        raise ConvertError(f"'{s}' is longer than {n - 1} bytes")
    return b.ljust(n, b"\0")


def compute_model_id(info, nodes):
    """SHA-256 of the canonical serialisation of include/nightshift/model.h."""
    f32 = lambda v: [float(np.float32(x)) for x in v]  # noqa: E731
    h = hashlib.sha256(b"nightshift-model-v1\0")
    h.update(struct.pack("<II3f3fII", info["input_size"], info["channel_order"] == "bgr",
                         *f32(info["mean"]), *f32(info["std"]), info["embedding_dim"],
                         info["l2_normalize"]))
    h.update(pad(info["output"], NAME_LEN))
    h.update(struct.pack("<I", len(nodes)))
    for n in nodes:
        ins = n["inputs"] + [""] * (MAX_INPUTS - len(n["inputs"]))
        h.update(pad(n["name"], NAME_LEN) + pad(n["op"], OP_LEN) +
                 b"".join(pad(i, NAME_LEN) for i in ins))
        h.update(np.asarray(n["iattr"], "<i4").tobytes() + np.asarray(n["fattr"], "<f4").tobytes())
        ws = [w for w in WEIGHT_SLOTS.get(n["op"], []) if w in n["weights"]]
        h.update(struct.pack("<I", len(ws)))
        for w in ws:
            d = np.asarray(n["weights"][w], "<f4")
            dims = list(d.shape) + [0] * (4 - d.ndim)
            h.update(pad(w, WNAME_LEN) + struct.pack("<5I", d.ndim, *dims))
            h.update(d.tobytes())
    return h.hexdigest()


def write_model(path, info, nodes):
    """Writes path atomically (tmp + fsync + rename + fsync of the directory)."""
    import h5py
    info = dict(info, model_id=compute_model_id(info, nodes))
    rec = np.dtype([("name", "S64"), ("op", "S32"), ("inputs", "S64", (MAX_INPUTS,)),
                    ("iattr", "<i4", (N_IATTR,)), ("fattr", "<f4", (N_FATTR,))])
    table = np.zeros(len(nodes), rec)
    for k, n in enumerate(nodes):
        table[k]["name"], table[k]["op"] = n["name"].encode(), n["op"].encode()
        table[k]["inputs"] = [i.encode() for i in n["inputs"]] + \
            [b""] * (MAX_INPUTS - len(n["inputs"]))
        table[k]["iattr"], table[k]["fattr"] = n["iattr"], n["fattr"]
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            s = lambda v: np.bytes_(v.encode())  # noqa: E731
            f.attrs["ns_format"] = s("nightshift-model")
            f.attrs["ns_format_version"] = np.int32(1)
            f.attrs["name"] = s(info["name"])
            f.attrs["input_size"] = np.int32(info["input_size"])
            f.attrs["channel_order"] = s(info["channel_order"])
            f.attrs["mean"] = np.asarray(info["mean"], np.float32)
            f.attrs["std"] = np.asarray(info["std"], np.float32)
            f.attrs["output"] = s(info["output"])
            f.attrs["embedding_dim"] = np.int32(info["embedding_dim"])
            f.attrs["l2_normalize"] = np.int32(info["l2_normalize"])
            f.attrs["model_id"] = s(info["model_id"])
            f.attrs["writer"] = s("onnx2ns.py (nightshift tools)")
            f.create_dataset("nodes", data=table)
            wg = f.create_group("weights")
            for n in nodes:
                for w in WEIGHT_SLOTS.get(n["op"], []):
                    if w in n["weights"]:
                        wg.create_dataset(f"{n['name']}/{w}",
                                          data=np.ascontiguousarray(n["weights"][w], np.float32))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return info["model_id"]


# ---- driver ----------------------------------------------------------------------------

def convert(onnx_path, out_path, output=None, l2norm=False, size=None, mean=IMAGENET_MEAN,
            std=IMAGENET_STD, channel_order="rgb", name=None, log=sys.stderr):
    """Converts onnx_path into out_path; returns the model_id.  Raises ConvertError or
    Unsupported."""
    import onnx
    try:
        model = onnx.load(onnx_path)
    except Exception as e:  # onnx raises DecodeError, OSError, ...
        raise ConvertError(f"cannot read '{onnx_path}': {e}") from e
    cv = Converter(model, size)
    nodes = cv.fold_constants()
    in_tensor = cv.graph_input()
    out_tensor, why = cv.pick_output(nodes, output)
    todo = cv.needed(nodes, out_tensor)
    bad = {}
    for n in todo:
        if n.op_type not in MAPPED or n.domain not in ("", "ai.onnx"):
            bad.setdefault(n.op_type if n.domain in ("", "ai.onnx") else
                           f"{n.domain}.{n.op_type}", n.name or n.output[0])
    if bad:
        raise Unsupported("unsupported ONNX ops: " +
                          ", ".join(f"'{op}' (node '{nm}')" for op, nm in sorted(bad.items())))
    cv.producer = {o: n for n in todo for o in n.output}
    cv.consumers, cv.out_tensor = {}, out_tensor
    for n in todo:
        for t in set(n.input):
            cv.consumers[t] = cv.consumers.get(t, 0) + 1
    in_name = cv.new_name(in_tensor, "input")
    cv.src[in_tensor] = cv.add(in_name, "Input", [], (3, cv.size, cv.size))
    for n in todo:
        cv.convert_node(n)
    if out_tensor not in cv.src:
        raise ConvertError(f"the output ({why}) is not computed from the image input")
    out_node = cv.src[out_tensor]
    if l2norm:
        if len(cv.shape[out_node]) != 1:
            ia = [0] * N_IATTR
            ia[IA_AXIS] = 1
            out_node = cv.add(cv.new_name("embedding.flatten", "flatten"), "Flatten",
                              [out_node], (int(np.prod(cv.shape[out_node])),), ia)
        out_node = cv.add(cv.new_name("l2norm", "l2norm"), "L2Norm", [out_node],
                          cv.shape[out_node])
    info = {"name": name or os.path.splitext(os.path.basename(onnx_path))[0],
            "input_size": cv.size, "channel_order": channel_order,
            "mean": list(mean), "std": list(std), "output": out_node,
            "embedding_dim": int(np.prod(cv.shape[out_node])), "l2_normalize": int(l2norm)}
    if len(info["name"].encode()) >= NAME_LEN:
        info["name"] = info["name"].encode()[:NAME_LEN - 1].decode("ascii", "replace")
    mid = write_model(out_path, info, cv.nodes)
    if log:
        print(f"{out_path}: {len(cv.nodes)} nodes, input {cv.size}x{cv.size}, embedding "
              f"'{out_node}' ({why}), dim {info['embedding_dim']}"
              f"{', L2-normalised' if l2norm else ''}, id {mid}", file=log)
    return mid


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", help="input ONNX model")
    p.add_argument("out", help="output nightshift model file (.h5)")
    p.add_argument("--output", metavar="NODE",
                   help="embedding node (default: the input of the last Gemm)")
    p.add_argument("--l2norm", action="store_true", help="append an L2Norm node")
    p.add_argument("--size", type=int, help="input size S (default: from the ONNX input)")
    p.add_argument("--mean", type=float, nargs=3, default=IMAGENET_MEAN, metavar="M")
    p.add_argument("--std", type=float, nargs=3, default=IMAGENET_STD, metavar="S")
    p.add_argument("--channel-order", choices=("rgb", "bgr"), default="rgb")
    p.add_argument("--name", help="display name (default: the file name)")
    a = p.parse_args(argv)
    if a.size is not None and not 1 <= a.size <= 4096:
        p.error("--size must be in 1..4096")
    if any(s == 0 for s in a.std):
        p.error("--std must not be 0")
    try:
        convert(a.onnx, a.out, a.output, a.l2norm, a.size, a.mean, a.std, a.channel_order,
                a.name)
    except Unsupported as e:
        print(f"onnx2ns: {a.onnx}: {e}", file=sys.stderr)
        return 2
    except ConvertError as e:
        print(f"onnx2ns: {a.onnx}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"onnx2ns: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
