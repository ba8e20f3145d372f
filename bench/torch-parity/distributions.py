#!/usr/bin/env python3
"""What differs when each side samples its own init and data (the parity check fixes both).

Reads a dump.ts directory (the TypeScript init and batches; `--no-train` is enough) and compares:
  - the initial weights, per kind of parameter (all layers pooled): mean, std, min, max on each
    side, the bound of PyTorch's default init, and the two-sample Kolmogorov-Smirnov statistic D
    with its asymptotic p-value (TypeScript init vs torch_reference.py's Model() after
    torch.manual_seed(seed));
  - the task data: the same summaries of x, y*, the responses, the rewards, |y*|, |e| and
    cos(y*, e), TypeScript batches vs torch_reference.sample() of the same size;
  - the initial loss: the PL loss of each init on the same batches.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch-parity/distributions.py DIR \
      [--seed 0] [--json-out FILE]
"""
import argparse, json, math, os, re
import torch
from ref_model import load_engine_params, make_model, pl_loss, read_safetensors, sample, torch_name

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the PyTorch init and data")
ap.add_argument("--loss-batches", type=int, default=4, help="batches the initial loss is averaged over")
ap.add_argument("--json-out")
a = ap.parse_args()
torch.set_num_threads(1)

spec = json.load(open(os.path.join(a.dir, "losses.json")))["spec"]
d, n = spec["d"], spec["n"]
D, H, L = spec["model"]["nEmbd"], spec["model"]["nHead"], spec["model"]["nLayer"]
ts_init = read_safetensors(os.path.join(a.dir, "init.safetensors"))
torch.manual_seed(a.seed)
pt_model = make_model(d, n, D, H, L)  # first draws after manual_seed, as in torch_reference.py
pt_init = {name: p.detach().clone() for name, p in pt_model.named_parameters()}


def ks(x, y):
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value."""
    x, y = x.flatten().double().sort().values, y.flatten().double().sort().values
    allv = torch.cat([x, y])
    fx = torch.searchsorted(x, allv, right=True).double() / len(x)
    fy = torch.searchsorted(y, allv, right=True).double() / len(y)
    dstat = (fx - fy).abs().max().item()
    ne = len(x) * len(y) / (len(x) + len(y))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * dstat
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101)) if lam > 0 else 1.0
    return dstat, min(1.0, max(0.0, p))


def summary(t):
    t = t.flatten().double()
    return {"mean": t.mean().item(), "std": t.std().item(), "min": t.min().item(), "max": t.max().item(), "count": t.numel()}


def kind(torch_param_name):
    return re.sub(r"^h\.\d+\.", "h.*.", torch_param_name)


groups = {}
for name, t in ts_init.items():
    tn = torch_name(name)
    g = groups.setdefault(kind(tn), {"ts": [], "pt": [], "shape": list(t.shape)})
    g["ts"].append(t.flatten())
    g["pt"].append(pt_init[tn].flatten())

report = {"dir": a.dir, "seed": a.seed, "init": {}, "data": {}}
print(f"initial weights, {L} layers pooled: TypeScript ({a.dir}) vs torch_reference.py Model() after manual_seed({a.seed})")
print("| parameter | shape | default-init bound | TS mean | TS std | TS min | TS max | torch mean | torch std | torch min | torch max | KS D | KS p |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for k, g in groups.items():
    ts, pt = torch.cat(g["ts"]), torch.cat(g["pt"])
    s, p = summary(ts), summary(pt)
    dstat, pval = ks(ts, pt)
    # nn.Linear's default (kaiming_uniform with a = sqrt(5), and the bias rule) is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    fan_in = g["shape"][-1] if k.endswith(".weight") and len(g["shape"]) == 2 and k != "wpe" else None
    if k.endswith(".bias") and "ln" not in k:
        fan_in = dict(((kk, gg["shape"][-1]) for kk, gg in groups.items()))[k.replace(".bias", ".weight")]
    bound = f"{1 / math.sqrt(fan_in):.4f}" if fan_in and "ln" not in k else ("N(0, 0.02)" if k == "wpe" else "constant")
    report["init"][k] = {"ts": s, "torch": p, "ks_d": dstat, "ks_p": pval, "bound": bound}
    print(f"| {k} | {g['shape']} | {bound} | {s['mean']:+.5f} | {s['std']:.5f} | {s['min']:+.4f} | {s['max']:+.4f} | "
          f"{p['mean']:+.5f} | {p['std']:.5f} | {p['min']:+.4f} | {p['max']:+.4f} | {dstat:.4f} | {pval:.3f} |")

bt = read_safetensors(os.path.join(a.dir, "batches.safetensors"))
S, B = bt["xs"].shape[0], bt["xs"].shape[1]
ts_x, ts_ys, ts_ystar, ts_rs = (bt[k].reshape(S * B, n, -1) for k in ("xs", "ys", "ystar", "rs"))
pt_x, pt_ystar, pt_ys, pt_rs = sample(S * B, n, d)


def derived(x, ystar, ys, rs):
    """{quantity: (all values, one value per task)}: the summaries pool every value, but the KS test
    takes one per task, because values within a task are dependent (shared x, y*, e) and pooling them
    would make its p-value far too small."""
    # e from one response: y_i = r_i y* + (1 - r_i) e, so e = (y_i - r_i y*) / (1 - r_i)
    e = (ys[:, 0] - rs[:, 0] * ystar[:, 0]) / (1 - rs[:, 0])
    return {
        "x": (x[:, 0], x[:, 0, 0]), "y*": (ystar[:, 0], ystar[:, 0, 0]), "responses y_i": (ys, ys[:, 0, 0]),
        "rewards r_i": (rs, rs[:, 0, 0]), "|x|": (x[:, 0].norm(dim=1),) * 2, "|y*|": (ystar[:, 0].norm(dim=1),) * 2,
        "|e|": (e.norm(dim=1),) * 2, "cos(y*, e)": (torch.nn.functional.cosine_similarity(ystar[:, 0], e, dim=1),) * 2,
    }


ts_d = derived(ts_x, ts_ystar, ts_ys, ts_rs)
pt_d = derived(pt_x, pt_ystar, pt_ys, pt_rs)
print(f"\ntask data, {S * B} tasks per side: TypeScript batches vs torch_reference.sample()")
print("(summaries over all values; KS on one value per task: the first coordinate of the first response)")
print("| quantity | TS mean | TS std | TS min | TS max | torch mean | torch std | torch min | torch max | KS D | KS p |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k in ts_d:
    s, p = summary(ts_d[k][0]), summary(pt_d[k][0])
    dstat, pval = ks(ts_d[k][1], pt_d[k][1])
    report["data"][k] = {"ts": s, "torch": p, "ks_d": dstat, "ks_p": pval}
    print(f"| {k} | {s['mean']:+.4f} | {s['std']:.4f} | {s['min']:+.3f} | {s['max']:+.3f} | "
          f"{p['mean']:+.4f} | {p['std']:.4f} | {p['min']:+.3f} | {p['max']:+.3f} | {dstat:.4f} | {pval:.3f} |")

ts_model = make_model(d, n, D, H, L)
load_engine_params(ts_model, ts_init)
with torch.no_grad():
    res = {}
    for label, m in (("TypeScript init", ts_model), ("torch init", pt_model)):
        vals = []
        for i in range(min(a.loss_batches, S)):
            xs, ys, rs = bt["xs"][i], bt["ys"][i], bt["rs"][i].unsqueeze(-1)
            vals.append(pl_loss(m(xs, ys, rs), ys, rs).item())
        res[label] = sum(vals) / len(vals)
report["initial_loss"] = res
print(f"\ninitial PL loss on the first {min(a.loss_batches, S)} TypeScript batches: " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()))
if a.json_out:
    with open(a.json_out, "w") as f:
        json.dump(report, f)
