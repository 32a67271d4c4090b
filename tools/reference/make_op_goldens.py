#!/usr/bin/env python3
"""Writes tests/data/golden/ops/ops.safetensors: inputs and PyTorch outputs for every CPU op.

Each case is a group of tensors named "<case>.<role>" (x, w, b, out, ...). The scalar parameters
of a case (stride, eps, groups, ...) are fixed here and repeated in tests/parity/ops_test.cpp;
the comment above each case says which. All maths is torch float32 on the CPU with a fixed seed.

Run: tools/reference/.venv/bin/python tools/reference/make_op_goldens.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers.models.t5.modeling_t5 import T5LayerNorm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "golden", "ops", "ops.safetensors")

torch.manual_seed(1234)
torch.set_num_threads(1)
T: dict = {}


def put(case, **tensors):
    for role, t in tensors.items():
        T[f"{case}.{role}"] = t.detach().contiguous().clone()


def rnd(*shape, scale=1.0):
    return (torch.rand(*shape) * 2 - 1) * scale


# ---- linear: x[37, 129] . w[67, 129]^T + b; half cases store the rounded weights as F16/BF16 and
# torch computes in f32 after upcasting them. M <= 4 exercises the decode-step GEMV path, M=5 and
# M=37 the sgemm path (for half weights: converted blocks).
x = rnd(37, 129)
w = rnd(67, 129, scale=0.2)
b = rnd(67)
put("linear_f32", x=x, w=w, b=b, out=F.linear(x, w, b))
put("linear_f32_nobias", x=x[:5], w=w, out=F.linear(x[:5], w))
put("linear_f32_m2", x=x[:2], w=w, b=b, out=F.linear(x[:2], w, b))
for name, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
    wh = w.to(dt)
    put(f"linear_{name}", x=x, w=wh, b=b, out=F.linear(x, wh.float(), b))
    put(f"linear_{name}_m3", x=x[:3], w=wh, b=b, out=F.linear(x[:3], wh.float(), b))
    put(f"linear_{name}_m1", x=x[:1], w=wh, out=F.linear(x[:1], wh.float()))

# ---- matmul: a[3, 37, 24]; b[3, 24, 29] or, with trans_b, b[3, 29, 24]; alpha 1 and 0.125.
a = rnd(3, 37, 24)
bm = rnd(3, 24, 29)
bt = rnd(3, 29, 24)
put("matmul", a=a, b=bm, out=torch.bmm(a, bm))
put("matmul_trans_b", a=a, b=bt, out=torch.bmm(a, bt.transpose(1, 2)) * 0.125)

# ---- elementwise: add/mul with equal shapes and suffix broadcasts; elu (alpha 1), gelu (erf), relu.
a = rnd(2, 5, 37, scale=3)
b_same = rnd(2, 5, 37)
b_row = rnd(37)
b_mat = rnd(5, 37)
put("add_same", a=a, b=b_same, out=a + b_same)
put("add_row", a=a, b=b_row, out=a + b_row)
put("mul_mat", a=a, b=b_mat, out=a * b_mat)
put("mul_same", a=a, b=b_same, out=a * b_same)
put("scale", x=a, out=a * -0.37)
put("elu", x=a, out=F.elu(a, alpha=1.0))
put("gelu", x=a, out=F.gelu(a))
put("relu", x=a, out=F.relu(a))

# ---- norms: layer_norm eps 1e-5 (with and without beta), T5 rms norm eps 1e-6, group_norm
# eps 1e-5 with 4 groups and with 1 group (EnCodec's time_group_norm).
x = rnd(7, 129, scale=2) + 0.5
g = rnd(129) + 1.0
be = rnd(129)
put("layer_norm", x=x, gamma=g, beta=be, out=F.layer_norm(x, (129,), g, be, 1e-5))
put("layer_norm_nobeta", x=x, gamma=g, out=F.layer_norm(x, (129,), g, None, 1e-5))
t5 = T5LayerNorm(129, eps=1e-6)
with torch.no_grad():
    t5.weight.copy_(g)
put("rms_norm", x=x, gamma=g, out=t5(x))
x = rnd(2, 12, 37, scale=2) + 0.3
gc = rnd(12) + 1.0
bc = rnd(12)
put("group_norm4", x=x, gamma=gc, beta=bc, out=F.group_norm(x, 4, gc, bc, 1e-5))
put("group_norm1", x=x, gamma=gc, beta=bc, out=F.group_norm(x, 1, gc, bc, 1e-5))

# ---- softmax over the last dim; row 2 has some -inf entries (a causal mask).
x = rnd(5, 37, scale=8)
x[2, 20:] = float("-inf")
x[4, :3] = float("-inf")
put("softmax", x=x, out=F.softmax(x, dim=-1))

# ---- conv1d: x[2, 8, 129], w[12, 8, 5], bias; strides 1/2/4 x dilations 1/3; plus a 1x1 conv.
x = rnd(2, 8, 129)
w = rnd(12, 8, 5, scale=0.3)
b = rnd(12)
put("conv1d_in", x=x, w=w, b=b)
for s in (1, 2, 4):
    for d in (1, 3):
        T[f"conv1d_s{s}_d{d}.out"] = F.conv1d(x, w, b, stride=s, dilation=d).contiguous()
w1 = rnd(12, 8, 1)
put("conv1d_k1", w=w1, out=F.conv1d(x, w1, b))

# ---- conv_transpose1d: x[2, 8, 37], w[8, 6, 2*stride], bias, strides 2/4/8, untrimmed output.
x = rnd(2, 8, 37)
for s in (2, 4, 8):
    w = rnd(8, 6, 2 * s, scale=0.3)
    b = rnd(6)
    put(f"convtr_s{s}", x=x, w=w, b=b, out=F.conv_transpose1d(x, w, b, stride=s))

# ---- pad1d on x[2, 3, 37]: reflect (5, 7), reflect (36, 36) (the largest allowed), replicate (4, 9),
# constant (3, 2) with value 0.5.
x = rnd(2, 3, 37)
put("pad_in", x=x)
T["pad_reflect.out"] = F.pad(x, (5, 7), mode="reflect").contiguous()
T["pad_reflect_max.out"] = F.pad(x, (36, 36), mode="reflect").contiguous()
T["pad_replicate.out"] = F.pad(x, (4, 9), mode="replicate").contiguous()
T["pad_constant.out"] = F.pad(x, (3, 2), mode="constant", value=0.5).contiguous()

# ---- transpose of the last two dims.
x = rnd(3, 37, 129)
put("transpose", x=x, out=x.transpose(-1, -2))

# ---- embedding: table[53, 24], ids[37] (i64); summed embedding of 4 tables, ids[4, 37] (i64).
tables = [rnd(53, 24) for _ in range(4)]
ids = torch.randint(0, 53, (4, 37), dtype=torch.int64)
put("embedding", table=tables[0], ids=ids[0], out=F.embedding(ids[0], tables[0]))
out = sum(F.embedding(ids[k], tables[k]) for k in range(4))
put("embedding_sum", ids=ids, out=out, **{f"table{k}": tables[k] for k in range(4)})

# ---- LSTM: nn.LSTM(16, 24, num_layers=2) over x[T=37, 16]; the test applies the op twice.
lstm = torch.nn.LSTM(16, 24, num_layers=2)
x = rnd(37, 16)
with torch.no_grad():
    y, _ = lstm(x.unsqueeze(1))
put("lstm", x=x, out=y.squeeze(1))
for layer in range(2):
    for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        T[f"lstm.{p}_l{layer}"] = getattr(lstm, f"{p}_l{layer}").detach().contiguous().clone()

# ---- casts: f32 -> f16 -> f32 and f32 -> bf16 -> f32, with values that exercise rounding ties,
# subnormals, overflow, inf and nan.
vals = torch.cat([
    rnd(200, scale=10),
    rnd(20, scale=1e-5),          # f16 subnormals
    torch.tensor([0.0, -0.0, 65504.0, 65519.0, 65520.0, 1e6, -1e6, 5.96e-8, 2.98e-8, 2.99e-8,
                  1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 1e-40,
                  float("inf"), float("-inf"), float("nan")]),
])
put("cast", x=vals, f16=vals.half(), f16_back=vals.half().float(), bf16=vals.bfloat16(),
    bf16_back=vals.bfloat16().float())

os.makedirs(os.path.dirname(OUT), exist_ok=True)
save_file(T, OUT, metadata={"generator": "tools/reference/make_op_goldens.py", "torch": torch.__version__})
print(f"wrote {len(T)} tensors, {os.path.getsize(OUT)} bytes to {OUT}")
