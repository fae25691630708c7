"""minirl.nn MLP forward and forward+backward against PyTorch (optional peer), one thread.

Networks: tanh MLPs ``4->64->64->2`` (classic control) and ``17->256->256->6`` (MuJoCo-sized),
at batch 1, 64 and 2048, float32 and float64. minirl runs with an opt-in ``Workspace``
(preallocated buffers) and ``need_dx=False`` (the input is data), i.e. what an agent's update
loop does; torch runs ``y = net(x); y.backward(dy)`` with a random upstream gradient and
parameter gradients zeroed by ``set_to_none`` (its idiomatic loop). ``ratio`` is
minirl time / torch time (< 1: minirl is faster), the median of per-round paired ratios.

A second table times the float32 tanh alone: ``np.tanh`` against the Numba kernel the Tanh
layer uses for float32 (``kernels/activations.py``).

    python -m benchmarks --only nn [--quick]
"""
from __future__ import annotations

import numpy as np

from benchmarks._harness import Table, emit, interleaved, optional_import, paired_ratio
from kernels.activations import tanh_f32
from minirl.nn import MLP, Tanh

NETS = ([4, 64, 64, 2], [17, 256, 256, 6])
BATCHES = (1, 64, 2048)
TARGETS = {  # (sizes, batch) -> max ratio minirl/torch, forward+backward
    (4, 1): 0.4, (4, 64): 0.4, (4, 2048): 1.0, (17, 1): 1.0, (17, 64): 1.0, (17, 2048): 1.0,
}


def _torch_net(torch, sizes, params, net, dtype):
    """The same network in torch with the same weights (torch stores W as [out, in])."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = torch.nn.Linear(a, b)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers).to(dtype)
    views = net.views(params)
    with torch.no_grad():
        for i, layer in enumerate(model):
            if isinstance(layer, torch.nn.Linear):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(views[f"{i}.weight"].T)))
                layer.bias.copy_(torch.from_numpy(views[f"{i}.bias"]))
    return model


def main(quick: bool = False) -> None:
    torch = optional_import("torch")
    if torch is not None:
        torch.set_num_threads(1)
    rounds = 2 if quick else 7
    min_time = 0.01 if quick else 0.03
    batches = (1, 64) if quick else BATCHES
    table = Table("minirl.nn tanh MLP vs torch (1 thread); ratio = minirl / torch")
    rng = np.random.default_rng(0)
    for sizes in NETS:
        for dtype in (np.float32, np.float64):
            net = MLP(sizes, activation=Tanh, dtype=dtype)
            params = net.init(rng)
            ws = net.workspace()
            grad = net.zeros()
            tnet = None
            if torch is not None:
                tdt = torch.float32 if dtype == np.float32 else torch.float64
                tnet = _torch_net(torch, sizes, params, net, tdt)
            for batch in batches:
                x = rng.standard_normal((batch, sizes[0])).astype(dtype)
                dy = rng.standard_normal((batch, sizes[-1])).astype(dtype)

                def fwd():
                    return net.forward(params, x, workspace=ws)

                def fwd_bwd():
                    y, cache = net.forward(params, x, workspace=ws)
                    return net.backward(params, cache, dy, need_dx=False, out=grad)

                fns = {"fwd": fwd, "fwd_bwd": fwd_bwd}
                if tnet is not None:
                    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

                    def tfwd():
                        with torch.no_grad():
                            return tnet(tx)

                    def tfwd_bwd():
                        tnet.zero_grad(set_to_none=True)
                        tnet(tx).backward(tdy)

                    fns.update(torch_fwd=tfwd, torch_fwd_bwd=tfwd_bwd)
                t, samples = interleaved(fns, rounds, min_time)
                row = dict(net="->".join(map(str, sizes)), dtype=np.dtype(dtype).name,
                           batch=batch, fwd_s=t["fwd"], fwd_bwd_s=t["fwd_bwd"])
                if tnet is not None:
                    target = TARGETS[(sizes[0], batch)]
                    ratio = paired_ratio(samples, "fwd_bwd", "torch_fwd_bwd")
                    row.update(torch_fwd_s=t["torch_fwd"], torch_fwd_bwd_s=t["torch_fwd_bwd"],
                               ratio_fwd=paired_ratio(samples, "fwd", "torch_fwd"), ratio_fwd_bwd=ratio,
                               target=f"<= {target}", met="yes" if ratio <= target else "NO")
                table.add(**row)
    emit(table, "nn_quick" if quick else "nn", quick)
    emit(tanh_table(rounds, min_time), "nn_tanh_quick" if quick else "nn_tanh", quick)


def tanh_table(rounds: int, min_time: float) -> Table:
    """float32 tanh of a hidden-layer activation ``[B, 64]``: NumPy's ``np.tanh`` against
    ``kernels.activations.tanh_f32`` (what the Tanh layer uses for float32), out of place and
    in place (the layer's case). ratio = kernel / NumPy."""
    table = Table("float32 tanh [B, 64]: kernels.activations.tanh_f32 vs np.tanh; "
                  "ratio = kernel / numpy")
    rng = np.random.default_rng(1)
    for batch in (8, 256, 2048):
        x = (2 * rng.standard_normal((batch, 64))).astype(np.float32)
        out, buf = np.empty_like(x), x.copy()
        fns = {"numpy": lambda: np.tanh(x, out=out), "kernel": lambda: tanh_f32(x, out),
               "numpy_inplace": lambda: np.tanh(buf, out=buf),
               "kernel_inplace": lambda: tanh_f32(buf, buf)}
        t, samples = interleaved(fns, rounds, min_time)
        table.add(batch=batch, numpy_s=t["numpy"], kernel_s=t["kernel"],
                  ratio=paired_ratio(samples, "kernel", "numpy"),
                  numpy_inplace_s=t["numpy_inplace"], kernel_inplace_s=t["kernel_inplace"],
                  ratio_inplace=paired_ratio(samples, "kernel_inplace", "numpy_inplace"))
    return table


if __name__ == "__main__":
    import sys
    main(quick="--quick" in sys.argv)
