#!/usr/bin/env bash
# One-call check of srplug.ops on a CUDA machine: build (CPU + CUDA kernels), CUDA parity
# against the references (fp32, bf16, fp16, both memory formats), gradcheck in float64 on the
# GPU, and timings of fused vs eager on the GPU. Run from the repository root:
#
#   bash scripts/device_check.sh   # results + build log in $OUT (default /tmp/srplug-ops-device-check)
#
# Needs a CUDA build of torch and nvcc (CUDA_HOME or PATH), plus srplug's dependencies.
#
# Exit code 0 when the build and every parity/gradcheck passed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/srplug-ops-device-check}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export SRPLUG_OPS_CACHE="${SRPLUG_OPS_CACHE:-$OUT/cache}"
export SRPLUG_OPS_CUDA=1

echo "== nvidia-smi"; nvidia-smi --query-gpu=name,compute_cap,memory.total --format=csv || true
echo "== build"
"$PY" -m srplug.ops build 2>&1 | tee "$OUT/build.log"

echo "== parity, gradcheck, timings"
"$PY" - "$OUT" <<'PYEOF' 2>&1 | tee "$OUT/check.log"
import json, sys, time
import torch
import srplug.ops
from srplug.ops import reference

out_dir = sys.argv[1]
assert torch.cuda.is_available(), "no CUDA device visible to torch"
st = srplug.ops.load()
assert st.loaded and st.with_cuda, st.reason
dev = torch.device("cuda")
torch.manual_seed(0)
failures, results = [], {"device": torch.cuda.get_device_name(), "build": st.info}

def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()

def check(name, got, want, tol):
    err = rel(got, want)
    results[name] = err
    print(f"{'ok  ' if err <= tol else 'FAIL'} {name}: rel err {err:.2e} (tol {tol})")
    if err > tol:
        failures.append(name)

tols = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}
for dtype, tol in tols.items():
    for fmt in (torch.contiguous_format, torch.channels_last):
        f = "cl" if fmt == torch.channels_last else "nchw"
        for red, G in reference.REDUCTIONS.items():
            for s, cin, k in ((2, 1, 7), (3, 3, 3), (4, 1, 5)):
                x = torch.randn(2, cin, 13, 37, device=dev).contiguous(memory_format=fmt)
                w = torch.randn(G * 5 * s * s, cin, k, k, device=dev) * 0.3
                got = srplug.ops.esr_upscale(x.to(dtype), w.to(dtype), s, red, impl="cuda")
                want = reference.esr_upscale(x.to(dtype).float(), w.to(dtype).float(), s, red)
                check(f"esr {red} s{s} cin{cin} k{k} {f} {dtype}", got, want, tol)
        x = torch.randn(3, 64, 19, 23, device=dev).contiguous(memory_format=fmt)
        p = [torch.randn(4, 64, 1, 1, device=dev) * .2, torch.randn(4, device=dev),
             torch.randn(64, 4, 1, 1, device=dev) * .2, torch.randn(64, device=dev)]
        r = torch.randn_like(x)
        cast = [t.to(dtype) for t in p]
        got = srplug.ops.channel_attention(x.to(dtype), *cast, r.to(dtype), impl="cuda")
        want = reference.channel_attention(x.to(dtype).float(), *[t.float() for t in cast], r.to(dtype).float())
        check(f"channel_attention {f} {dtype}", got, want, tol)
        for act in reference.ACTIVATIONS:
            x = torch.randn(2, 27, 7, 11, device=dev).contiguous(memory_format=fmt)
            b, pw = torch.randn(27, device=dev), torch.rand(3, device=dev)
            got = srplug.ops.pixel_shuffle(x.to(dtype), 3, b, act, negative_slope=.1, prelu_weight=pw, impl="cuda")
            want = reference.pixel_shuffle(x.to(dtype).float(), 3, b.to(dtype).float(), act, .1, pw.to(dtype).float())
            check(f"pixel_shuffle {act} {f} {dtype}", got, want, tol)

def gc(name, fn, *args):
    ok = torch.autograd.gradcheck(fn, args, raise_exception=False)
    print(f"{'ok  ' if ok else 'FAIL'} gradcheck {name}")
    if not ok:
        failures.append("gradcheck " + name)

d = dict(device=dev, dtype=torch.float64)
for red, G in reference.REDUCTIONS.items():
    gc(f"esr {red}", lambda a, b, red=red: srplug.ops.esr_upscale(a, b, 2, red, impl="cuda"),
       torch.randn(2, 2, 4, 5, **d, requires_grad=True), torch.randn(G * 8, 2, 3, 3, **d, requires_grad=True))
gc("channel_attention", lambda *a: srplug.ops.channel_attention(*a, impl="cuda"),
   *[t.requires_grad_() for t in (torch.randn(2, 6, 3, 4, **d), torch.randn(2, 6, **d), torch.randn(2, **d),
                                   torch.randn(6, 2, **d), torch.randn(6, **d), torch.randn(2, 6, 3, 4, **d))])
gc("pixel_shuffle", lambda a, b: srplug.ops.pixel_shuffle(a, 2, b, "tanh", impl="cuda"),
   torch.randn(2, 8, 3, 5, **d, requires_grad=True), torch.randn(8, **d, requires_grad=True))

def cuda_time(fn, n=20):
    fn(); torch.cuda.synchronize()
    times = []
    for _ in range(n):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[n // 2]

timings = {}
with torch.inference_mode():
    x = torch.rand(1, 1, 1080, 1920, device=dev)
    for red, C in (("max", 13), ("tm", 16), ("tr", 13)):
        G = reference.REDUCTIONS[red]
        w = torch.randn(G * C * 4, 1, 7, 7, device=dev) * .1
        ref_ms = cuda_time(lambda: reference.esr_upscale(x, w, 2, red))
        fused_ms = cuda_time(lambda: srplug.ops.esr_upscale(x, w, 2, red, impl="cuda"))
        timings[f"esr {red} x2 1080p"] = (ref_ms, fused_ms)
    for h in (48, 192):
        f = torch.randn(1, 64, h, h, device=dev)
        ca = srplug.ops.ChannelAttention(64, 16, impl="cuda").to(dev)
        dn, up = ca.conv_du[0], ca.conv_du[2]
        eager = lambda: f * torch.sigmoid(up(torch.relu(dn(f.mean((2, 3), keepdim=True))))) + f
        timings[f"channel attention + skip (1,64,{h},{h})"] = (cuda_time(eager), cuda_time(lambda: ca(f, f)))
for k, (r, fz) in timings.items():
    print(f"time {k}: eager/reference {r:.3f} ms, fused {fz:.3f} ms, ratio {r / fz:.2f}x")
results["timings_ms"] = timings
results["failures"] = failures
json.dump(results, open(f"{out_dir}/device_check.json", "w"), indent=2)
print("FAILURES:", failures if failures else "none")
sys.exit(1 if failures else 0)
PYEOF
