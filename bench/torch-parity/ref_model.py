"""shared/bench/torch_reference.py's model, loss and task sampler, importable.

torch_reference.py parses its command line and trains at import, so it cannot be imported; Block,
Model, pl_loss and sample below are that file's code, with the sizes passed in instead of read from
its argparse globals. Keep them in step with it. Also: safetensors reading (the engine writes F32
only) and the engine -> torch_reference parameter-name map.
"""
import json, math, struct
import torch
import torch.nn.functional as F


def make_model(d, n, D, H, L):
    """torch_reference.Model() for d-wide tokens, n examples, width D, H heads, L layers."""
    T = 3 * n

    class Block(torch.nn.Module):
        def __init__(s):
            super().__init__()
            s.ln_1, s.ln_2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
            s.c_attn, s.c_proj = torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)
            s.c_fc, s.mlp_proj = torch.nn.Linear(D, 4 * D), torch.nn.Linear(4 * D, D)
            s.register_buffer("mask", torch.tril(torch.ones(T, T)).bool())

        def forward(s, x):
            B = x.shape[0]
            q, k, v = s.c_attn(s.ln_1(x)).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
            att = att.masked_fill(~s.mask, float("-inf")).softmax(-1)
            x = x + s.c_proj((att @ v).transpose(1, 2).reshape(B, T, D))
            return x + s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))

    class Model(torch.nn.Module):
        def __init__(s):
            super().__init__()
            s.read_in, s.read_out = torch.nn.Linear(d, D), torch.nn.Linear(D, d)
            s.wpe = torch.nn.Parameter(torch.randn(T, D) * 0.02)
            s.h = torch.nn.Sequential(*[Block() for _ in range(L)])
            s.ln_f = torch.nn.LayerNorm(D)

        def forward(s, xs, ys, rs):
            B = xs.shape[0]
            r_wide = torch.cat([rs, torch.zeros(B, n, d - 1, dtype=rs.dtype)], dim=2)
            z = torch.stack([xs, ys, r_wide], dim=2).view(B, T, d)
            out = s.read_out(s.ln_f(s.h(s.read_in(z) + s.wpe)))
            return out[:, ::3, :]

    return Model()


def pl_loss(pred, ys, rs):
    """torch_reference.pl_loss; rs is [B, n, 1]."""
    B, n, d = ys.shape
    total = 0.0
    for m in range(2, n):
        order = torch.argsort(rs[:, :m, 0], dim=1, descending=True)
        ranked = torch.gather(ys[:, :m], 1, order.unsqueeze(-1).expand(B, m, d))
        s = F.cosine_similarity(pred[:, m : m + 1], ranked, dim=2)
        tail = torch.logcumsumexp(s.flip(1), dim=1).flip(1)
        total = total + (tail - s).sum(1)
    return (total / (n - 2)).mean()


def sample(B, n, d):
    """torch_reference.sample: xs, ystar, ys [B, n, d] and rs [B, n, 1]."""
    x = torch.randn(B, 1, d).expand(B, n, d)
    w, we = torch.randn(B, d, d), torch.randn(B, d, d)
    ystar, eps = x @ w, x @ we
    r = torch.rand(B, n, 1)
    return x.contiguous(), ystar, r * ystar + (1 - r) * eps, r


def read_safetensors(path):
    """{name: float32 tensor} from a safetensors file of F32 tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hlen])
    base = 8 + hlen
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", f"{path}: {name} is {t['dtype']}, expected F32"
        lo, hi = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[base + lo : base + hi]), dtype=torch.float32).reshape(t["shape"]).clone()
    return out


def torch_name(engine_name):
    """Engine (HF GPT-2) parameter name -> torch_reference.py's."""
    return (engine_name.replace(".attn.c_attn.", ".c_attn.").replace(".attn.c_proj.", ".c_proj.")
            .replace(".mlp.c_fc.", ".c_fc.").replace(".mlp.c_proj.", ".mlp_proj."))


def load_engine_params(model, params):
    """Copies engine-named tensors into a make_model() model (every name must match)."""
    own = dict(model.named_parameters())
    names = set(map(torch_name, params))
    assert names == set(own), f"parameter names differ: {sorted(names ^ set(own))}"
    with torch.no_grad():
        for name, t in params.items():
            p = own[torch_name(name)]
            p.copy_(t.to(p.dtype))
    return own
