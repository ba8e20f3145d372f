#!/usr/bin/env python3
"""Whole-run swaps between a TypeScript run and torch_reference.py: which ingredient makes the difference?

Trains torch_reference.py's model (ref_model.py) for all the steps of a dump.ts directory written with
--no-train, taking the initial weights and the batches each from either side:

  --init ts     the dump's init.safetensors (the TypeScript run's initial weights)
  --init torch  torch_reference.py's Model() right after torch.manual_seed(--seed)
  --data ts     the dump's batches (the TypeScript run's data stream, step by step)
  --data torch  torch_reference.sample() drawn after the model, as torch_reference.py draws them
                (--data-seed S2: the batches of torch_reference.py's seed S2, with the init of --seed)

The torch random stream is consumed exactly as in torch_reference.py whatever is swapped (the model is
built before any batch is drawn, even when its weights are then replaced), so `--init torch --data torch`
is torch_reference.py's own run for --seed, and each swap changes one ingredient of a known run. Every
model is scored on one fixed set of tasks (torch.manual_seed(--eval-seed)) at each reward-noise level,
exactly as torch_reference.py scores: 1 - cos(prediction, y*) at 2..15 examples. `--score FILE` scores a
finished model's weights (a TypeScript model.safetensors) on that same set without training.

  node dist/bench/torch-parity/dump.js --steps 3000 --seed 0 --no-train --out runs/torch-parity/full-s0
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch-parity/swap.py \
      runs/torch-parity/full-s0 --init ts --data ts --json-out runs/torch-parity/full-s0/ts-ts.json
"""
import argparse, json, os, time
import torch
import torch.nn.functional as F
from ref_model import load_engine_params, make_model, pl_loss, read_safetensors, sample

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--init", choices=["ts", "torch"], default="ts")
ap.add_argument("--data", choices=["ts", "torch"], default="ts")
ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed before the model is built (torch_reference.py's --seed)")
ap.add_argument("--data-seed", type=int, help="with --data torch: the batches of torch_reference.py's run for this seed instead of --seed's")
ap.add_argument("--steps", type=int, default=0, help="train this many steps (0 = every dumped batch)")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--eval-tasks", type=int, default=2048)
ap.add_argument("--eval-seed", type=int, default=12345)
ap.add_argument("--p", type=float, nargs="*", default=[0.0, 0.25, 0.5, 0.75, 1.0])
ap.add_argument("--score", help="score these weights (engine-named safetensors) instead of training")
ap.add_argument("--json-out")
a = ap.parse_args()
if a.data_seed is not None and a.data != "torch":
    ap.error("--data-seed picks torch_reference.py's batches: it needs --data torch")
torch.set_num_threads(a.threads)

spec = json.load(open(os.path.join(a.dir, "losses.json")))["spec"]
d, n = spec["d"], spec["n"]
D, H, L = spec["model"]["nEmbd"], spec["model"]["nHead"], spec["model"]["nLayer"]
B = spec["batch"]

torch.manual_seed(a.seed)
model = make_model(d, n, D, H, L)
if a.score:
    # a checkpoint also holds the optimizer's moments (optimizer.m.*, optimizer.v.*)
    load_engine_params(model, {k: v for k, v in read_safetensors(a.score).items() if not k.startswith("optimizer.")})
elif a.init == "ts":
    load_engine_params(model, read_safetensors(os.path.join(a.dir, "init.safetensors")))

if a.data_seed is not None:
    # torch_reference.py builds its model before it draws a batch: build (and drop) one to reach that seed's batches
    torch.manual_seed(a.data_seed)
    make_model(d, n, D, H, L)

losses = []
t0 = time.time()
if not a.score:
    batches = read_safetensors(os.path.join(a.dir, "batches.safetensors")) if a.data == "ts" else None
    steps = a.steps or spec["steps"]
    if batches is not None:
        assert batches["xs"].shape[0] >= steps, f"{a.dir} holds {batches['xs'].shape[0]} batches, fewer than {steps} steps"
        assert batches["xs"].shape[1] == B
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    for step in range(steps):
        if batches is not None:
            xs, ys, rs = batches["xs"][step], batches["ys"][step], batches["rs"][step].unsqueeze(-1)
        else:
            xs, _, ys, rs = sample(B, n, d)
        opt.zero_grad()
        loss = pl_loss(model(xs, ys, rs), ys, rs)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step} loss {losses[-1]:.4f} {time.time() - t0:.0f}s", flush=True)

model.eval()
torch.manual_seed(a.eval_seed)
curves = {}
with torch.no_grad():
    xs, ystar, ys, rs = sample(a.eval_tasks, n, d)
    for p in a.p:
        r_obs = rs.clone()
        mask = torch.rand_like(r_obs) < p
        r_obs[mask] = torch.rand_like(r_obs)[mask]
        err = 1 - F.cosine_similarity(model(xs, ys, r_obs), ystar, dim=2)
        curves[str(p)] = {"mean": [err[:, k].mean().item() for k in range(2, 16)], "se": [(err[:, k].std() / err.shape[0] ** 0.5).item() for k in range(2, 16)]}
result = {"dir": a.dir, "init": None if a.score else a.init, "data": None if a.score else a.data, "seed": a.seed,
          "data_seed": a.data_seed, "ts_seed": spec["seed"],
          "score": a.score, "eval_tasks": a.eval_tasks, "eval_seed": a.eval_seed, "seconds": time.time() - t0,
          "losses": losses, "curves": curves}
print("error at 15 examples: " + ", ".join(f"p {p} {c['mean'][-1]:.4f} ± {c['se'][-1]:.4f}" for p, c in curves.items()))
if a.json_out:
    with open(a.json_out, "w") as f:
        json.dump(result, f)
