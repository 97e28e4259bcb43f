"""Latency of one datacube prediction on CPU.

Builds the U-Net for the store's grid (default 20 x 32 x 64; weights do not
change the cost), then times ``predict_physical`` for one parameter vector:
forward pass, de-normalisation and the below-ground mask. The baseline in the
same run is reading and decoding that run's seven fields from the store
(the cost of looking the answer up if it had been simulated). Target: under
100 ms per datacube on CPU (the seed system quoted 5 s).

With ``--members N`` (N >= 2) it also times a deep ensemble's answer with its
uncertainty, as ``exocube.surrogate`` makes it: N networks (independently initialised;
weights do not change the cost) stacked into one (``ml.StackedMembers``: one batched
pass), then the members' mean and sample std of every field (``ml.mean_and_std``).
The baseline in the same run is the same members run one after another. Target: under
100 ms per datacube with its uncertainty.

With ``--std-head`` it also times one network trained with a std head
(``--model.predict_std true``): the datacube and its standard deviation from one pass,
as ``exocube.surrogate`` serves it. The baseline in the same run is the plain network
above (the datacube alone). Target: under 100 ms per datacube with its uncertainty.

The model defaults to ``configs/surrogate_default.yaml``'s (hard constraints, v2
inputs, depth 3, width 16).

    .venv/bin/python benchmarks/predict.py --store STORE [--repeats 20] [--members 5]
        [--std-head] [--threads 2] [--base-features 16] [--constraints hard] [--inputs v2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import median_time

from exocube.cubes import open_store
from exocube.ml import StackedMembers, mean_and_std
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.task import SurrogateTask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--base-features", type=int, default=16)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--constraints", default="hard", choices=["hard", "soft"])
    ap.add_argument("--inputs", default="v2")
    ap.add_argument("--members", type=int, default=0, help="also time an ensemble (>= 2)")
    ap.add_argument("--std-head", action="store_true",
                    help="also time a network with a std head (datacube + std, one pass)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dm = CubeDataModule(args.store, database_url=args.database_url, inputs=args.inputs)

    def network(predict_std: bool = False) -> SurrogateTask:
        return SurrogateTask(depth=args.depth, base_features=args.base_features,
                             data_spec=dm.spec, constraints=args.constraints,
                             predict_std=predict_std).eval()

    model = network()
    spec = dm.spec
    params = torch.tensor([spec.params.values[0]], dtype=torch.float32)
    locked = torch.tensor([spec.params.tidally_locked[0]])
    t_pred = median_time(lambda: model.predict_physical(params, locked), args.repeats)

    ds = open_store(args.store)
    fields = spec.variables
    run = ds.isel(run=0)

    def read() -> None:
        for v in fields:
            np.asarray(run[v].values)

    t_read = median_time(read, args.repeats)
    n = sum(p.numel() for p in model.parameters())
    print(f"grid {spec.shape}, U-Net depth {args.depth} width {args.base_features} "
          f"({n / 1e6:.2f} M parameters), {len(spec.params.names)} inputs ({args.inputs}), "
          f"constraints {args.constraints}, torch threads {torch.get_num_threads()}")
    print(f"predict one datacube (U-Net, CPU)        : {1e3 * t_pred:8.1f} ms  (target < 100 ms)")
    print(f"read + decode one run from store (baseline): {1e3 * t_read:8.1f} ms")
    print(f"prediction / store read                   : {t_pred / t_read:8.2f} x")
    if args.std_head:
        head = network(predict_std=True)

        def one_pass() -> None:
            with torch.inference_mode():
                out = head.predict_physical(params, locked)
            assert "ta_std" in out
            for v in out.values():
                v.numpy()

        t_head = median_time(one_pass, args.repeats)
        print(f"datacube + std, std head (one pass)       : {1e3 * t_head:8.1f} ms  "
              "(target < 100 ms)")
        print(f"std head / one network (baseline)         : {t_head / t_pred:8.2f} x")
    if args.members >= 2:
        members = [network() for _ in range(args.members)]
        stacked = StackedMembers(members)

        def spread(outs: dict[str, np.ndarray]) -> None:
            for stack in outs.values():
                mean_and_std(stack)

        def sequential() -> None:
            with torch.inference_mode():
                outs = [m.predict_physical(params, locked) for m in members]
            spread({k: np.stack([o[k].numpy() for o in outs]) for k in outs[0]})

        def batched() -> None:
            with torch.inference_mode():
                outs = stacked.predict_physical(params, locked)
            spread({k: v.numpy() for k, v in outs.items()})

        t_seq = median_time(sequential, args.repeats)
        t_ens = median_time(batched, args.repeats)
        m = args.members
        print(f"datacube + std, {m} members one by one (baseline): {1e3 * t_seq:8.1f} ms")
        print(f"datacube + std, {m} members stacked          : {1e3 * t_ens:8.1f} ms  "
              "(target < 100 ms)")
        print(f"stacked / one by one                      : {t_ens / t_seq:8.2f} x")
        print(f"stacked / one network                     : {t_ens / t_pred:8.2f} x")
        print(f"stacked / store read                      : {t_ens / t_read:8.2f} x")


if __name__ == "__main__":
    main()
