#!/usr/bin/env python3
"""Writes a PyTorch reference fixture for the in-context alignment transformer.

A tiny GPT-2-style model (same architecture and token layout as torch_reference.py)
with fixed random weights, one fixed batch, the Plackett-Luce loss, and the
gradient of every parameter, all in float64. An implementation that reproduces
these numbers has the same forward pass, loss and backward pass.

  python3 make_fixture_variants.py SEED d n D H B BLOCKS > FILE.json   (see below)
"""
import json, math
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
import sys
# Variant of make_fixture.py (next to this file): other sizes and per-block attention kind / FFN flag.
#   python3 make_fixture_variants.py SEED d n D H B BLOCKS   (BLOCKS e.g. "sf,lf,sn,ln": s/l = softmax/linear, f/n = ffn on/off)
seed, d, n, D, H, B = (int(x) for x in sys.argv[1:7])
BLOCKS = [{"attention": "softmax" if b[0] == "s" else "linear", "ffn": b[1] == "f"} for b in sys.argv[7].split(",")]
L = len(BLOCKS)
torch.manual_seed(seed)
T = 3 * n


def ln(x, g, b):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5) * g + b


names, tensors = [], []


def param(name, shape, scale=0.3, init=None):
    t = (init if init is not None else torch.randn(*shape) * scale).clone().requires_grad_(True)
    names.append(name); tensors.append(t)
    return t


P = {"read_in.weight": param("read_in.weight", (D, d)), "read_in.bias": param("read_in.bias", (D,)),
     "wpe": param("wpe", (T, D))}
for l in range(L):
    pre = f"h.{l}."
    for nm, shp in [("ln_1.weight", (D,)), ("ln_1.bias", (D,)), ("attn.c_attn.weight", (3 * D, D)),
                    ("attn.c_attn.bias", (3 * D,)), ("attn.c_proj.weight", (D, D)), ("attn.c_proj.bias", (D,))] + ([
                    ("ln_2.weight", (D,)), ("ln_2.bias", (D,)), ("mlp.c_fc.weight", (4 * D, D)),
                    ("mlp.c_fc.bias", (4 * D,)), ("mlp.c_proj.weight", (D, 4 * D)), ("mlp.c_proj.bias", (D,))] if BLOCKS[l]["ffn"] else []):
        init = None
        if nm.endswith("ln_1.weight") or nm.endswith("ln_2.weight"):
            init = 1 + 0.1 * torch.randn(*shp)
        P[pre + nm] = param(pre + nm, shp, init=init)
P["ln_f.weight"] = param("ln_f.weight", (D,), init=1 + 0.1 * torch.randn(D))
P["ln_f.bias"] = param("ln_f.bias", (D,))
P["read_out.weight"] = param("read_out.weight", (d, D))
P["read_out.bias"] = param("read_out.bias", (d,))

x = torch.randn(B, 1, d).expand(B, n, d).contiguous()
w, we = torch.randn(B, d, d), torch.randn(B, d, d)
ystar, eps = x @ w, x @ we
r = torch.rand(B, n, 1)
ys = r * ystar + (1 - r) * eps

r_wide = torch.cat([r, torch.zeros(B, n, d - 1)], dim=2)
z = torch.stack([x, ys, r_wide], dim=2).view(B, T, d)
h = z @ P["read_in.weight"].T + P["read_in.bias"] + P["wpe"]
mask = torch.tril(torch.ones(T, T)).bool()
for l in range(L):
    pre = f"h.{l}."
    a_in = ln(h, P[pre + "ln_1.weight"], P[pre + "ln_1.bias"])
    qkv = a_in @ P[pre + "attn.c_attn.weight"].T + P[pre + "attn.c_attn.bias"]
    q, k, v = qkv.view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
    if BLOCKS[l]["attention"] == "softmax":
        att = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    else:
        att = scores.masked_fill(~mask, 0.0)
    h = h + (att @ v).transpose(1, 2).reshape(B, T, D) @ P[pre + "attn.c_proj.weight"].T + P[pre + "attn.c_proj.bias"]
    if not BLOCKS[l]["ffn"]:
        continue
    m_in = ln(h, P[pre + "ln_2.weight"], P[pre + "ln_2.bias"])
    f = F.gelu(m_in @ P[pre + "mlp.c_fc.weight"].T + P[pre + "mlp.c_fc.bias"], approximate="tanh")
    h = h + f @ P[pre + "mlp.c_proj.weight"].T + P[pre + "mlp.c_proj.bias"]
out = ln(h, P["ln_f.weight"], P["ln_f.bias"]) @ P["read_out.weight"].T + P["read_out.bias"]
pred = out[:, ::3, :]

total = 0.0
for m in range(2, n):
    order = torch.argsort(r[:, :m, 0], dim=1, descending=True)
    ranked = torch.gather(ys[:, :m], 1, order.unsqueeze(-1).expand(B, m, d))
    s = F.cosine_similarity(pred[:, m:m + 1], ranked, dim=2)
    tail = torch.logcumsumexp(s.flip(1), dim=1).flip(1)
    total = total + (tail - s).sum(1)
loss = (total / (n - 2)).mean()
loss.backward()

flat = lambda t: [round(v, 12) for v in t.detach().reshape(-1).tolist()]
print(json.dumps({
    "description": "GPT-2-style ICA model, float64, PyTorch reference. Linear weights are [out, in] (torch.nn.Linear layout); y = x W^T + b. Attention: causal, pre-LN, LayerNorm eps 1e-5, GELU tanh approximation, heads split c_attn output as [q | k | v] each [H, D/H]. Tokens interleaved (x, y, r) with r padded by zeros to d dims; prediction read at x tokens. Loss: mean over batch of mean over positions m=2..n-1 of the Plackett-Luce loss of pred[m] against ys[:m] ranked by r descending, score = cosine similarity.",
    "config": {"dims": d, "points": n, "embd": D, "heads": H, "layers": L, "batch": B, "blocks": BLOCKS},
    "inputs": {"xs": flat(x), "ys": flat(ys), "rs": flat(r), "ystar": flat(ystar)},
    "params": {nm: {"shape": list(t.shape), "data": flat(t)} for nm, t in zip(names, tensors)},
    "pred": flat(pred),
    "loss": loss.item(),
    "grads": {nm: flat(t.grad) for nm, t in zip(names, tensors)},
}))
