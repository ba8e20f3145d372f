#!/usr/bin/env python3
"""Writes a PyTorch reference fixture for the engine's token language model (src/engine/lm).

A tiny GPT-2 (HF names and [out, in] Linear weights; wte tied as the LM head, no head bias) with
fixed random weights, one batch of token ids, targets and a 0/1 loss mask, the masked mean
cross-entropy, the logits and the gradient of every parameter, all in float64. Written without
the transformers library so the maths is on the page.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 make_lm_fixture.py > lm_gpt_tiny.json
"""
import json, math
import torch
import torch.nn.functional as F

torch.manual_seed(4321)
torch.set_default_dtype(torch.float64)
V, C, H, L, NPOS, B, T = 19, 8, 2, 2, 9, 2, 7

names, tensors = [], []


def param(name, shape, kind="w"):
    # Scale 0.3 and LayerNorm weights around 1: GPT-2 init (tiny weights, unit LN) hides mistakes.
    t = 1 + 0.1 * torch.randn(*shape) if kind == "ln" else 0.3 * torch.randn(*shape)
    t = t.clone().requires_grad_(True)
    names.append(name); tensors.append(t)
    return t


def ln(x, g, b):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5) * g + b


P = {"wte": param("wte", (V, C)), "wpe": param("wpe", (NPOS, C))}
for l in range(L):
    pre = f"h.{l}."
    for nm, shp in [("ln_1.weight", (C,)), ("ln_1.bias", (C,)), ("attn.c_attn.weight", (3 * C, C)),
                    ("attn.c_attn.bias", (3 * C,)), ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                    ("ln_2.weight", (C,)), ("ln_2.bias", (C,)), ("mlp.c_fc.weight", (4 * C, C)),
                    ("mlp.c_fc.bias", (4 * C,)), ("mlp.c_proj.weight", (C, 4 * C)), ("mlp.c_proj.bias", (C,))]:
        P[pre + nm] = param(pre + nm, shp, "ln" if nm.endswith("ln_1.weight") or nm.endswith("ln_2.weight") else "w")
P["ln_f.weight"] = param("ln_f.weight", (C,), "ln")
P["ln_f.bias"] = param("ln_f.bias", (C,))

tokens = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B, T))
mask = (torch.rand(B, T) < 0.6).double()
mask[0, 0] = 1.0
mask[1, T - 1] = 0.0

h = P["wte"][tokens] + P["wpe"][:T]
causal = torch.tril(torch.ones(T, T)).bool()
for l in range(L):
    pre = f"h.{l}."
    a_in = ln(h, P[pre + "ln_1.weight"], P[pre + "ln_1.bias"])
    qkv = a_in @ P[pre + "attn.c_attn.weight"].T + P[pre + "attn.c_attn.bias"]
    q, k, v = qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
    att = ((q @ k.transpose(-1, -2)) / math.sqrt(C // H)).masked_fill(~causal, float("-inf")).softmax(-1)
    h = h + (att @ v).transpose(1, 2).reshape(B, T, C) @ P[pre + "attn.c_proj.weight"].T + P[pre + "attn.c_proj.bias"]
    m_in = ln(h, P[pre + "ln_2.weight"], P[pre + "ln_2.bias"])
    f = F.gelu(m_in @ P[pre + "mlp.c_fc.weight"].T + P[pre + "mlp.c_fc.bias"], approximate="tanh")
    h = h + f @ P[pre + "mlp.c_proj.weight"].T + P[pre + "mlp.c_proj.bias"]
logits = ln(h, P["ln_f.weight"], P["ln_f.bias"]) @ P["wte"].T
nll = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(-1), reduction="none")
loss = (nll * mask.reshape(-1)).sum() / mask.sum()
loss.backward()

flat = lambda t: [float(f"{v:.12g}") for v in t.detach().reshape(-1).tolist()]
print(json.dumps({
    "description": "GPT-2 token LM, float64, PyTorch reference. Linear weights [out, in]; pre-LN blocks, causal attention with c_attn split [q | k | v] each [H, C/H], LayerNorm eps 1e-5, GELU tanh; logits = ln_f(h) @ wte^T (tied head, no bias); loss = sum(mask * cross_entropy(logits, targets)) / sum(mask). tokens, targets and mask are [batch, seqLen] row-major.",
    "config": {"vocabSize": V, "nEmbd": C, "nHead": H, "nLayer": L, "nPositions": NPOS, "batch": B, "seqLen": T},
    "tokens": tokens.reshape(-1).tolist(),
    "targets": targets.reshape(-1).tolist(),
    "mask": [int(x) for x in mask.reshape(-1).tolist()],
    "params": {nm: {"shape": list(t.shape), "data": flat(t)} for nm, t in zip(names, tensors)},
    "logits": flat(logits),
    "loss": loss.item(),
    "grads": {nm: flat(t.grad) for nm, t in zip(names, tensors)},
}, separators=(",", ":")))
