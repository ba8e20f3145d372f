#!/usr/bin/env python3
"""The PyTorch half of the step-by-step parity check (dump.ts is the other).

Loads what dump.ts wrote (initial weights, batches, the TypeScript losses, gradients at step 0 and
parameters after the first Adam update), builds shared/bench/torch_reference.py's model, loads the
same weights, trains on the same batches with the same optimiser (torch.optim.Adam, defaults, the
same constant lr) and prints, step by step, both losses and their relative difference. Then the
bisection data: forward loss at step 0, every parameter's gradient at step 0, the first Adam update.

--dtype float64 replays in double precision: the float32 replay's distance from it is the float32
noise floor that the TypeScript difference is judged against (run both; --compare-to takes the
other run's --json-out).

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch-parity/replay.py DIR \
      [--dtype float32|float64] [--threads 1] [--json-out FILE] [--compare-to FILE]

The model and the loss are torch_reference.py's, copied into ref_model.py (next to this file).
"""
import argparse, json, os, time
import torch
from ref_model import load_engine_params, make_model, pl_loss, read_safetensors, torch_name

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--steps", type=int, default=0, help="replay only this many steps (0 = all dumped)")
ap.add_argument("--json-out")
ap.add_argument("--compare-to", help="another replay's --json-out (e.g. the float64 one) to compare the losses with")
ap.add_argument("--quiet", action="store_true", help="print only the summary, not every step")
ap.add_argument("--save-step0", help="torch.save this replay's step-0 gradients and first Adam update here")
ap.add_argument("--compare-step0", help="another replay's --save-step0 file (e.g. float64): compare this replay's step 0 with it too")
ap.add_argument("--replayed", help="a finished replay's --json-out: summarise it (e.g. with --compare-to) without replaying")
a = ap.parse_args()
torch.set_num_threads(a.threads)
DT = torch.float64 if a.dtype == "float64" else torch.float32


meta = json.load(open(os.path.join(a.dir, "losses.json")))
spec = meta["spec"]
d, n = spec["d"], spec["n"]
D, H, L = spec["model"]["nEmbd"], spec["model"]["nHead"], spec["model"]["nLayer"]
ts_losses = meta["losses"]
steps = len(ts_losses) if a.steps == 0 else min(a.steps, len(ts_losses))


model = make_model(d, n, D, H, L).to(DT)
init = read_safetensors(os.path.join(a.dir, "init.safetensors"))
own = load_engine_params(model, init)
opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])

batches = read_safetensors(os.path.join(a.dir, "batches.safetensors"))
grads0 = read_safetensors(os.path.join(a.dir, "grads0.safetensors"))
params1 = read_safetensors(os.path.join(a.dir, "params1.safetensors"))


def rel(x, y):
    """max |x - y| / max |y| over a tensor (relative to the tensor's scale, not per element)."""
    den = y.abs().max().item()
    return (x - y).abs().max().item() / den if den > 0 else (x - y).abs().max().item()


report = {"dir": a.dir, "dtype": a.dtype, "torch": torch.__version__, "steps": steps, "losses": [], "grads0": {}, "update0": {}}
if a.replayed:
    report = json.load(open(a.replayed))
    steps = report["steps"]
step0 = {}
t0 = time.time()
if not a.quiet and not a.replayed:
    print(f"{'step':>5} {'typescript':>12} {'pytorch':>12} {'rel diff':>10}")
for step in range(0 if a.replayed else steps):
    xs, ys = batches["xs"][step].to(DT), batches["ys"][step].to(DT)
    rs = batches["rs"][step].to(DT).unsqueeze(-1)
    opt.zero_grad()
    loss = pl_loss(model(xs, ys, rs), ys, rs)
    loss.backward()
    if step == 0:
        for name, g in grads0.items():
            pg = own[torch_name(name)].grad.to(torch.float64)
            report["grads0"][name] = {"rel": rel(g.to(torch.float64), pg), "scale": pg.abs().max().item()}
            if name.endswith("c_attn.bias"):
                # The key bias adds q.b_k to every score of a row, which the softmax cancels: its true
                # gradient is 0 and both sides hold rounding noise there, so it is reported apart.
                report["grads0"][name]["rel"] = rel(torch.cat([g[:D], g[2 * D :]]).to(torch.float64), torch.cat([pg[:D], pg[2 * D :]]))
                report["grads0"][name]["key_bias_max_abs"] = [g[D : 2 * D].abs().max().item(), pg[D : 2 * D].abs().max().item()]
    opt.step()
    if step == 0:
        for name, p1 in params1.items():
            p = own[torch_name(name)].detach().to(torch.float64)
            p0 = init[name].to(torch.float64)
            # the Adam update itself (p1 - p0) compared; step 0's update is about lr * sign(g)
            du_ts, du_pt = p1.to(torch.float64) - p0, p - p0
            if name.endswith("c_attn.bias"):  # without the key bias (see above): Adam turns its noise into lr-sized steps
                du_ts, du_pt = torch.cat([du_ts[:D], du_ts[2 * D :]]), torch.cat([du_pt[:D], du_pt[2 * D :]])
            report["update0"][name] = rel(du_ts, du_pt)
            # Where the update differs most: Adam's first step is lr * g / (|g| + eps), so an element whose
            # |g| is near eps = 1e-8 turns a small absolute gradient difference into a large update one.
            i = (du_ts - du_pt).abs().flatten().argmax().item()
            g_ts, g_pt = grads0[name].flatten()[i].item(), own[torch_name(name)].grad.flatten()[i].item()
            report.setdefault("update0_worst", {})[name] = {"g_ts": g_ts, "g_torch": g_pt, "du_ts": du_ts.flatten()[i].item(), "du_torch": du_pt.flatten()[i].item()}
            g_own = own[torch_name(name)].grad.detach().to(torch.float64)
            if name.endswith("c_attn.bias"):
                g_own = torch.cat([g_own[:D], g_own[2 * D :]])
            step0[name] = {"grad": g_own.clone(), "update": du_pt.clone()}
    lt = loss.item()
    report["losses"].append(lt)
    if not a.quiet:
        print(f"{step:5d} {ts_losses[step]:12.6f} {lt:12.6f} {abs(ts_losses[step] - lt) / abs(lt):10.2e}", flush=True)
if not a.replayed:
    report["seconds"] = time.time() - t0


def first_above(diffs, tol):
    return next((i for i, x in enumerate(diffs) if x > tol), None)


diffs = [abs(t - p) / abs(p) for t, p in zip(ts_losses, report["losses"])]
report["loss_rel_diff"] = diffs
g = sorted(report["grads0"].items(), key=lambda kv: -kv[1]["rel"])
u = sorted(report["update0"].items(), key=lambda kv: -kv[1])
print(f"\n{a.dir}: {L} layers, {D} dims, {H} heads, batch {batches['xs'].shape[1]}, lr {spec['lr']}, {steps} steps, torch {report['dtype']}")
print(f"step 0 loss: typescript {ts_losses[0]:.8f}, pytorch {report['losses'][0]:.8f}, rel diff {diffs[0]:.2e}")
print(f"step 0 gradients, max |ts - torch| / max |torch| per parameter (key bias apart): median {g[len(g) // 2][1]['rel']:.2e}, worst "
      + ", ".join(f"{k} {v['rel']:.2e}" for k, v in g[:3]))
kb = [v["key_bias_max_abs"] for v in report["grads0"].values() if "key_bias_max_abs" in v]
print(f"step 0 key-bias gradient (exactly 0 in exact arithmetic), max |g|: typescript {max(x[0] for x in kb):.1e}, pytorch {max(x[1] for x in kb):.1e}")
print(f"step 0 Adam update p1 - p0, same measure (key bias apart): median {u[len(u) // 2][1]:.2e}, worst "
      + ", ".join(f"{k} {v:.2e}" for k, v in u[:3]))
for name, w in sorted(report.get("update0_worst", {}).items(), key=lambda kv: -report["update0"][kv[0]])[:3]:
    print(f"  {name} at its worst element: g typescript {w['g_ts']:+.2e}, pytorch {w['g_torch']:+.2e}; "
          f"update typescript {w['du_ts']:+.3e}, pytorch {w['du_torch']:+.3e} (lr {spec['lr']:g})")
if a.save_step0 and step0:
    torch.save(step0, a.save_step0)
if a.compare_step0 and step0:
    other = torch.load(a.compare_step0)
    gg = sorted(((k, rel(v["grad"], other[k]["grad"])) for k, v in step0.items()), key=lambda kv: -kv[1])
    uu = sorted(((k, rel(v["update"], other[k]["update"])) for k, v in step0.items()), key=lambda kv: -kv[1])
    print(f"step 0, this pytorch ({a.dtype}) vs {a.compare_step0} (key bias apart): gradients median {gg[len(gg) // 2][1]:.2e}, worst {gg[0][0]} {gg[0][1]:.2e}; "
          f"Adam update median {uu[len(uu) // 2][1]:.2e}, worst " + ", ".join(f"{k} {v:.2e}" for k, v in uu[:3]))
for k in (1, 10, 50, 100, steps):
    if k <= steps:
        print(f"loss rel diff, max over steps 0..{k - 1}: {max(diffs[:k]):.2e}")
for tol in (1e-6, 1e-5, 1e-4, 1e-3):
    print(f"first step with rel diff > {tol:g}: {first_above(diffs, tol)}")
if a.compare_to:
    other = json.load(open(a.compare_to))
    od = [abs(x - y) / abs(y) for x, y in zip(report["losses"], other["losses"])]
    tsd = [abs(x - y) / abs(y) for x, y in zip(ts_losses, other["losses"])]
    print(f"vs {other['dtype']} pytorch ({a.compare_to}):")
    for k in (1, 10, 50, 100, steps):
        if k <= min(steps, len(od)):
            print(f"  max over steps 0..{k - 1}: pytorch {report['dtype']} {max(od[:k]):.2e}, typescript {max(tsd[:k]):.2e}")
    report["vs_other"] = {"dtype": other["dtype"], "pytorch": od, "typescript": tsd}
print(f"replay: {report['seconds']:.0f} s")
if a.json_out and not a.replayed:
    with open(a.json_out, "w") as f:
        json.dump(report, f)
