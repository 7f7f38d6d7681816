// srplug.ops CUDA kernels: the same three operators as ops.cpp, registered for the CUDA
// dispatch key. float32, float64, float16 and bfloat16; accumulation in float (double for
// float64). Any strides are accepted (NCHW and channels_last alike) through explicit strides.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>

#include "common.h"

namespace srplug_ops {
namespace {

constexpr int kThreads = 256;

inline int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

struct Strides4 {
  int64_t n, c, h, w;
};

inline Strides4 strides_of(const at::Tensor& t) {
  return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)};
}

template <typename acc_t>
__device__ __forceinline__ acc_t dev_exp(acc_t x) {
  return exp(x);
}
template <>
__device__ __forceinline__ float dev_exp<float>(float x) {
  return __expf(x);
}

// ------------------------------------------------------------------------------------- edge-SR
// One thread per low-resolution pixel and phase: C (or 2C, 3C) dot products of length
// cin*k*k read straight from x, reduced in registers (online softmax), one output pixel
// written. Weights are read through the read-only cache.
template <typename scalar_t, typename acc_t>
__global__ void esr_kernel(const scalar_t* __restrict__ x, Strides4 xs,
                           const scalar_t* __restrict__ weight, scalar_t* __restrict__ out,
                           int64_t N, int cin, int64_t h, int64_t w, int k, int s, int C,
                           int mode) {
  const int64_t s2 = int64_t(s) * s;
  const int64_t total = N * h * w * s2;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int64_t xx = idx % w;
  const int64_t p = (idx / w) % s2;
  const int64_t y = (idx / (w * s2)) % h;
  const int64_t n = idx / (w * s2 * h);
  const int pad = k / 2;
  const int64_t taps = int64_t(cin) * k * k;

  auto dot = [&](int64_t filter) -> acc_t {
    const scalar_t* wf = weight + filter * taps;
    acc_t acc = 0;
    for (int ci = 0; ci < cin; ++ci) {
      for (int ky = 0; ky < k; ++ky) {
        const int64_t iy = y + ky - pad;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < k; ++kx) {
          const int64_t ix = xx + kx - pad;
          if (ix < 0 || ix >= w) continue;
          const acc_t v = static_cast<acc_t>(x[n * xs.n + ci * xs.c + iy * xs.h + ix * xs.w]);
          acc += v * static_cast<acc_t>(__ldg(wf + (ci * k + ky) * k + kx));
        }
      }
    }
    return acc;
  };

  acc_t result;
  if (mode == kMax) {
    result = dot(p);
    for (int c = 1; c < C; ++c) result = max(result, dot(int64_t(c) * s2 + p));
  } else {
    acc_t m = -INFINITY, se = 0, sv = 0;
    for (int c = 0; c < C; ++c) {
      const acc_t value = dot(int64_t(c) * s2 + p);
      acc_t z = dot(int64_t(C + c) * s2 + p);
      if (mode == kTR) z *= dot(int64_t(2 * C + c) * s2 + p);
      if (mode == kCNN) z *= z;
      if (z > m) {  // online softmax: rescale what was summed so far
        const acc_t r = dev_exp<acc_t>(m - z);
        se *= r;
        sv *= r;
        m = z;
      }
      const acc_t e = dev_exp<acc_t>(z - m);
      se += e;
      sv += e * value;
    }
    result = sv / se;
  }
  const int64_t i = p / s, j = p % s;
  const int64_t ow = w * s;
  out[((n * h + y) * s + i) * ow + xx * s + j] = static_cast<scalar_t>(result);
}

at::Tensor esr_upscale_cuda(const at::Tensor& x, const at::Tensor& weight_in, int64_t scale,
                            int64_t mode) {
  check_esr_args(x, weight_in, scale, mode);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor weight = weight_in.to(x.scalar_type()).contiguous();
  const int64_t N = x.size(0), cin = x.size(1), h = x.size(2), w = x.size(3);
  const int k = static_cast<int>(weight.size(2));
  const int C = static_cast<int>(weight.size(0) / (groups_of(mode) * scale * scale));
  at::Tensor out = at::empty({N, 1, h * scale, w * scale}, x.options());
  const int64_t total = N * h * w * scale * scale;
  if (total == 0) return out;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "esr_upscale_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    esr_kernel<scalar_t, acc_t><<<blocks_for(total), kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), strides_of(x), weight.data_ptr<scalar_t>(),
        out.data_ptr<scalar_t>(), N, static_cast<int>(cin), h, w, k, static_cast<int>(scale), C,
        static_cast<int>(mode));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out.contiguous(x.suggest_memory_format());
}

// -------------------------------------------------------------------------------- pixel shuffle
template <typename acc_t>
__device__ __forceinline__ acc_t dev_activate(acc_t v, int act, acc_t slope) {
  switch (act) {
    case kReLU:
      return v > acc_t(0) ? v : acc_t(0);
    case kLeakyReLU:
    case kPReLU:
      return v > acc_t(0) ? v : v * slope;
    case kTanh:
      return tanh(v);
    case kSigmoid:
      return acc_t(1) / (acc_t(1) + exp(-v));
    default:
      return v;
  }
}

template <typename scalar_t, typename acc_t>
__global__ void shuffle_kernel(const scalar_t* __restrict__ x, Strides4 xs,
                               scalar_t* __restrict__ out, Strides4 os,
                               const acc_t* __restrict__ bias, const acc_t* __restrict__ slopes,
                               int64_t N, int64_t C, int64_t H, int64_t W, int r, int act) {
  const int64_t Ho = H * r, Wo = W * r;
  const int64_t total = N * C * Ho * Wo;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int64_t ox = idx % Wo, oy = (idx / Wo) % Ho, c = (idx / (Wo * Ho)) % C;
  const int64_t n = idx / (Wo * Ho * C);
  const int64_t ch = (c * r + oy % r) * r + ox % r;
  const acc_t v = static_cast<acc_t>(x[n * xs.n + ch * xs.c + (oy / r) * xs.h + (ox / r) * xs.w]);
  out[n * os.n + c * os.c + oy * os.h + ox * os.w] =
      static_cast<scalar_t>(dev_activate<acc_t>(v + bias[ch], act, slopes[c]));
}

at::Tensor pixel_shuffle_act_cuda(const at::Tensor& x, int64_t r,
                                  const std::optional<at::Tensor>& bias_in, int64_t act,
                                  double slope, const std::optional<at::Tensor>& prelu_in) {
  check_shuffle_args(x, r, bias_in, act, prelu_in);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t C = Cin / (r * r);
  at::Tensor out =
      at::empty({N, C, H * r, W * r}, x.options().memory_format(x.suggest_memory_format()));
  const int64_t total = out.numel();
  if (total == 0) return out;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "pixel_shuffle_act_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
    at::Tensor bias = bias_in.has_value() ? bias_in->to(acc_dtype).contiguous()
                                          : at::zeros({Cin}, x.options().dtype(acc_dtype));
    at::Tensor slopes = at::full({C}, slope, x.options().dtype(acc_dtype));
    if (act == kPReLU) slopes.copy_(prelu_in->to(acc_dtype).reshape({-1}).expand({C}));
    shuffle_kernel<scalar_t, acc_t><<<blocks_for(total), kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), strides_of(x), out.data_ptr<scalar_t>(), strides_of(out),
        bias.data_ptr<acc_t>(), slopes.data_ptr<acc_t>(), N, C, H, W, static_cast<int>(r),
        static_cast<int>(act));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// ---------------------------------------------------------------------------- channel attention
// Pass 1: one block per (n, c) plane sums it (tree reduction in shared memory).
template <typename scalar_t, typename acc_t>
__global__ void pool_kernel(const scalar_t* __restrict__ x, Strides4 xs, acc_t* __restrict__ mean,
                            int64_t C, int64_t H, int64_t W) {
  __shared__ acc_t partial[kThreads];
  const int64_t plane = blockIdx.x;
  const int64_t n = plane / C, c = plane % C;
  const int64_t HW = H * W;
  acc_t acc = 0;
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x)
    acc += static_cast<acc_t>(x[n * xs.n + c * xs.c + (i / W) * xs.h + (i % W) * xs.w]);
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int step = blockDim.x / 2; step > 0; step /= 2) {
    if (threadIdx.x < step) partial[threadIdx.x] += partial[threadIdx.x + step];
    __syncthreads();
  }
  if (threadIdx.x == 0) mean[plane] = partial[0] / static_cast<acc_t>(HW);
}

// The squeeze-excitation MLP: one block per image, hidden units in shared memory.
template <typename acc_t>
__global__ void mlp_kernel(const acc_t* __restrict__ mean, const acc_t* __restrict__ wd,
                           const acc_t* __restrict__ bd, const acc_t* __restrict__ wu,
                           const acc_t* __restrict__ bu, acc_t* __restrict__ gate, int64_t C,
                           int64_t R) {
  extern __shared__ unsigned char smem[];
  acc_t* hidden = reinterpret_cast<acc_t*>(smem);
  const int64_t n = blockIdx.x;
  for (int64_t q = threadIdx.x; q < R; q += blockDim.x) {
    acc_t a = bd[q];
    for (int64_t c = 0; c < C; ++c) a += wd[q * C + c] * mean[n * C + c];
    hidden[q] = a > acc_t(0) ? a : acc_t(0);
  }
  __syncthreads();
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    acc_t a = bu[c];
    for (int64_t q = 0; q < R; ++q) a += wu[c * R + q] * hidden[q];
    gate[n * C + c] = acc_t(1) / (acc_t(1) + exp(-a));
  }
}

// Pass 2: out = x * gate (+ residual), elementwise.
template <typename scalar_t, typename acc_t>
__global__ void scale_kernel(const scalar_t* __restrict__ x, Strides4 xs,
                             const scalar_t* __restrict__ res, Strides4 rs,
                             scalar_t* __restrict__ out, Strides4 os,
                             const acc_t* __restrict__ gate, int64_t N, int64_t C, int64_t H,
                             int64_t W) {
  const int64_t total = N * C * H * W;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  // walk the output in its own memory order so reads and writes coalesce for both formats
  int64_t n, c, y, xx;
  if (os.c == 1) {  // channels_last
    c = idx % C;
    xx = (idx / C) % W;
    y = (idx / (C * W)) % H;
    n = idx / (C * W * H);
  } else {
    xx = idx % W;
    y = (idx / W) % H;
    c = (idx / (W * H)) % C;
    n = idx / (W * H * C);
  }
  acc_t v = static_cast<acc_t>(x[n * xs.n + c * xs.c + y * xs.h + xx * xs.w]) * gate[n * C + c];
  if (res != nullptr) v += static_cast<acc_t>(res[n * rs.n + c * rs.c + y * rs.h + xx * rs.w]);
  out[n * os.n + c * os.c + y * os.h + xx * os.w] = static_cast<scalar_t>(v);
}

at::Tensor channel_attention_cuda(const at::Tensor& x, const at::Tensor& w_down,
                                  const at::Tensor& b_down, const at::Tensor& w_up,
                                  const at::Tensor& b_up,
                                  const std::optional<at::Tensor>& residual) {
  check_ca_args(x, w_down, b_down, w_up, b_up, residual);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t R = w_down.size(0);
  at::Tensor out = at::empty_like(x, x.options().memory_format(x.suggest_memory_format()));
  if (out.numel() == 0) return out;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "channel_attention_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
    auto opts = x.options().dtype(acc_dtype);
    at::Tensor mean = at::empty({N, C}, opts), gate = at::empty({N, C}, opts);
    at::Tensor wd = w_down.to(acc_dtype).contiguous(), bd = b_down.to(acc_dtype).contiguous();
    at::Tensor wu = w_up.to(acc_dtype).contiguous(), bu = b_up.to(acc_dtype).contiguous();
    pool_kernel<scalar_t, acc_t><<<N * C, kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), strides_of(x), mean.data_ptr<acc_t>(), C, H, W);
    mlp_kernel<acc_t><<<N, kThreads, R * sizeof(acc_t), stream>>>(
        mean.data_ptr<acc_t>(), wd.data_ptr<acc_t>(), bd.data_ptr<acc_t>(), wu.data_ptr<acc_t>(),
        bu.data_ptr<acc_t>(), gate.data_ptr<acc_t>(), C, R);
    const scalar_t* res = residual.has_value() ? residual->data_ptr<scalar_t>() : nullptr;
    const Strides4 rs = residual.has_value() ? strides_of(*residual) : Strides4{0, 0, 0, 0};
    scale_kernel<scalar_t, acc_t><<<blocks_for(out.numel()), kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), strides_of(x), res, rs, out.data_ptr<scalar_t>(),
        strides_of(out), gate.data_ptr<acc_t>(), N, C, H, W);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(srplug_ops, CUDA, m) {
  m.impl("esr_upscale", &esr_upscale_cuda);
  m.impl("pixel_shuffle_act", &pixel_shuffle_act_cuda);
  m.impl("channel_attention", &channel_attention_cuda);
}

}  // namespace srplug_ops
