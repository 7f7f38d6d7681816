// srplug.ops CPU kernels and operator schemas (namespace ``srplug_ops``).
//
//   esr_upscale(x, weight, scale, mode)       conv k x k -> pixel shuffle -> reduction over C,
//                                            without materialising the G*s*s*C feature maps
//   pixel_shuffle_act(x, scale, bias, act, slope, prelu)
//                                            bias + pixel shuffle + activation in one pass
//   channel_attention(x, w_down, b_down, w_up, b_up, residual)
//                                            x * sigmoid(up(relu(down(mean(x))))) + residual
//                                            in two passes over x
//
// Every kernel accepts NCHW-contiguous and channels_last inputs, float32, float64 (for
// gradcheck), bfloat16 and float16 (computed in float32). Arguments are validated in Python;
// the TORCH_CHECKs here only guard memory safety.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace srplug_ops {
namespace {

template <typename acc_t>
inline acc_t sigmoid(acc_t x) {
  return acc_t(1) / (acc_t(1) + std::exp(-x));
}

// ------------------------------------------------------------------------------------- edge-SR
// A block of CB filters (each `taps` = cin*k*k weights, filter stride `taps`) applied to
// NV * L consecutive output columns (L lanes of a 64-byte vector); `in` points at the top-left
// tap of the first column. K > 0 fixes the filter size at compile time (fully unrolled taps).
// GCC vector extensions: lowered to AVX-512, AVX2, SSE or NEON by the target flags.
typedef float vf32x16 __attribute__((vector_size(64)));
typedef double vf64x8 __attribute__((vector_size(64)));
template <typename acc_t>
struct Vec64;
template <>
struct Vec64<float> {
  using type = vf32x16;
};
template <>
struct Vec64<double> {
  using type = vf64x8;
};
template <typename acc_t>
using vec64 = typename Vec64<acc_t>::type;

template <typename acc_t, int K, int CB, int NV>
inline void conv_block(const acc_t* __restrict in, int64_t row_stride, int64_t ch_stride,
                       int cin, int k_runtime, const acc_t* __restrict w, int64_t taps,
                       acc_t* __restrict out) {
  using vec = vec64<acc_t>;
  constexpr int L = 64 / sizeof(acc_t);
  const int k = K > 0 ? K : k_runtime;
  vec acc[CB][NV];
  for (int cb = 0; cb < CB; ++cb)
    for (int nv = 0; nv < NV; ++nv) acc[cb][nv] = vec{} ;
  for (int ci = 0; ci < cin; ++ci) {
    for (int ky = 0; ky < k; ++ky) {
      const acc_t* src = in + ci * ch_stride + ky * row_stride;
      const acc_t* wr = w + (ci * k + ky) * k;
      for (int kx = 0; kx < k; ++kx) {
        vec xin[NV];
        for (int nv = 0; nv < NV; ++nv) std::memcpy(&xin[nv], src + kx + nv * L, sizeof(vec));
        for (int cb = 0; cb < CB; ++cb) {
          const acc_t wv = wr[cb * taps + kx];
          for (int nv = 0; nv < NV; ++nv) acc[cb][nv] += xin[nv] * wv;
        }
      }
    }
  }
  for (int cb = 0; cb < CB; ++cb)
    for (int nv = 0; nv < NV; ++nv) std::memcpy(out + cb * NV * L + nv * L, &acc[cb][nv], sizeof(vec));
}

template <typename acc_t, int CB, int NV>
inline void conv_block_any(const acc_t* in, int64_t row_stride, int64_t ch_stride, int cin, int k,
                           const acc_t* w, int64_t taps, acc_t* out) {
  switch (k) {
    case 3:
      return conv_block<acc_t, 3, CB, NV>(in, row_stride, ch_stride, cin, k, w, taps, out);
    case 5:
      return conv_block<acc_t, 5, CB, NV>(in, row_stride, ch_stride, cin, k, w, taps, out);
    case 7:
      return conv_block<acc_t, 7, CB, NV>(in, row_stride, ch_stride, cin, k, w, taps, out);
    default:
      return conv_block<acc_t, 0, CB, NV>(in, row_stride, ch_stride, cin, k, w, taps, out);
  }
}

// exp(x) for x <= 0 on a whole vector (float lanes); same polynomial as exp_nonpos.
inline vec64<float> exp_nonpos(vec64<float> x) {
  using vec = vec64<float>;
  using ivec = int32_t __attribute__((vector_size(64)));
  const vec lo = vec{} - 87.0f;
  x = x < lo ? lo : x;
  const vec t = x * 1.44269504088896341f + 0.5f;
  vec n = (t + 12582912.0f) - 12582912.0f;  // round to nearest
  n = n > t ? n - 1.0f : n;                 // floor
  vec r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  vec p = vec{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const ivec bits = (__builtin_convertvector(n, ivec) + 127) << 23;
  vec scale;
  std::memcpy(&scale, &bits, sizeof(vec));
  return p * scale;
}
inline vec64<double> exp_nonpos(vec64<double> x) {
  vec64<double> y;
  for (int i = 0; i < 8; ++i) y[i] = std::exp(x[i]);
  return y;
}

// Reduce the features of one phase, f[(g*C + c)*V + v] (V = NV * L), to r[v].
template <typename acc_t, int NV>
inline void esr_reduce(int mode, int C, const acc_t* __restrict f, acc_t* __restrict r) {
  using vec = vec64<acc_t>;
  constexpr int L = 64 / sizeof(acc_t);
  constexpr int V = NV * L;
  auto load = [](const acc_t* p) {
    vec v;
    std::memcpy(&v, p, sizeof(vec));
    return v;
  };
  for (int nv = 0; nv < NV; ++nv) {
    const acc_t* fv = f + nv * L;
    vec out;
    if (mode == kMax) {
      out = load(fv);
      for (int c = 1; c < C; ++c) {
        const vec a = load(fv + c * V);
        out = a > out ? a : out;
      }
    } else {
      auto logit = [&](int c) {
        const vec q = load(fv + (C + c) * V);
        if (mode == kTR) return q * load(fv + (2 * C + c) * V);
        if (mode == kCNN) return q * q;
        return q;
      };
      vec m = logit(0);
      for (int c = 1; c < C; ++c) {
        const vec z = logit(c);
        m = z > m ? z : m;
      }
      vec se = vec{}, sv = vec{};
      for (int c = 0; c < C; ++c) {
        const vec e = exp_nonpos(logit(c) - m);
        se += e;
        sv += e * load(fv + c * V);
      }
      out = sv / se;
    }
    std::memcpy(r + nv * L, &out, sizeof(vec));
  }
}

template <typename scalar_t, typename acc_t>
at::Tensor esr_cpu_impl(const at::Tensor& x, const at::Tensor& weight, int64_t s, int64_t mode) {
#ifndef SRPLUG_NV
#define SRPLUG_NV 2
#endif
#ifndef SRPLUG_CB
#define SRPLUG_CB 6
#endif
  constexpr int NV = SRPLUG_NV;               // 64-byte vectors per column block
  constexpr int V = NV * 64 / sizeof(acc_t);  // output columns per block
  constexpr int CB = SRPLUG_CB;               // filters per register block
  const int64_t N = x.size(0), cin = x.size(1), h = x.size(2), w = x.size(3);
  const int k = static_cast<int>(weight.size(2));
  const int pad = k / 2;
  const int G = groups_of(mode);
  const int64_t s2 = s * s;
  const int C = static_cast<int>(weight.size(0) / (G * s2));
  const int64_t GC = int64_t(G) * C;
  const int64_t taps = cin * k * k;
  const auto acc_dtype = sizeof(acc_t) == 4 ? at::kFloat : at::kDouble;

  // weights reordered to [phase][g*C + c (padded)][taps]
  at::Tensor wsrc = weight.to(acc_dtype).reshape({G * C, s2, taps}).transpose(0, 1);
  at::Tensor wr = at::zeros({s2, GC, taps}, weight.options().dtype(acc_dtype));
  wr.narrow(1, 0, GC).copy_(wsrc);
  // zero-padded input; V extra columns so the last column block reads inside the buffer
  const int64_t hp = h + 2 * pad, wp = w + 2 * pad + V;
  at::Tensor xp = at::zeros({N, cin, hp, wp}, x.options().dtype(acc_dtype));
  xp.narrow(2, pad, h).narrow(3, pad, w).copy_(x);

  at::Tensor out = at::empty({N, 1, h * s, w * s}, x.options());
  const acc_t* wp_ = wr.data_ptr<acc_t>();
  const acc_t* xp_ = xp.data_ptr<acc_t>();
  scalar_t* out_ = out.data_ptr<scalar_t>();
  const int64_t ow = w * s;

  at::parallel_for(0, N * h, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> feats(GC * V);
    acc_t r[V];
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / h, y = row % h;
      const acc_t* base = xp_ + (n * cin * hp + y) * wp;
      scalar_t* orow = out_ + (n * h * s + y * s) * ow;
      for (int64_t x0 = 0; x0 < w; x0 += V) {
        const int64_t valid = std::min<int64_t>(V, w - x0);
        for (int64_t p = 0; p < s2; ++p) {
          const acc_t* wph = wp_ + p * GC * taps;
          int64_t fb = 0;
          for (; fb + CB <= GC; fb += CB)
            conv_block_any<acc_t, CB, NV>(base + x0, wp, hp * wp, static_cast<int>(cin), k,
                                          wph + fb * taps, taps, feats.data() + fb * V);
          for (; fb < GC; ++fb)  // the last GC % CB filters, one at a time
            conv_block_any<acc_t, 1, NV>(base + x0, wp, hp * wp, static_cast<int>(cin), k,
                                         wph + fb * taps, taps, feats.data() + fb * V);
          esr_reduce<acc_t, NV>(static_cast<int>(mode), C, feats.data(), r);
          const int64_t i = p / s, j = p % s;
          scalar_t* o = orow + i * ow + x0 * s + j;
          for (int64_t v = 0; v < valid; ++v) o[v * s] = static_cast<scalar_t>(r[v]);
        }
      }
    }
  });
  return out;
}

at::Tensor esr_upscale_cpu(const at::Tensor& x, const at::Tensor& weight, int64_t scale,
                           int64_t mode) {
  check_esr_args(x, weight, scale, mode);
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "esr_upscale", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    out = esr_cpu_impl<scalar_t, acc_t>(x, weight, scale, mode);
  });
  return out.contiguous(x.suggest_memory_format());
}

// -------------------------------------------------------------------------------- pixel shuffle
template <typename acc_t>
inline acc_t activate(acc_t v, int64_t act, acc_t slope) {
  switch (act) {
    case kReLU:
      return v > 0 ? v : acc_t(0);
    case kLeakyReLU:
    case kPReLU:
      return v > 0 ? v : v * slope;
    case kTanh:
      return std::tanh(v);
    case kSigmoid:
      return sigmoid(v);
    default:
      return v;
  }
}

at::Tensor pixel_shuffle_act_cpu(const at::Tensor& x_in, int64_t r,
                                 const std::optional<at::Tensor>& bias_in, int64_t act,
                                 double slope, const std::optional<at::Tensor>& prelu_in) {
  check_shuffle_args(x_in, r, bias_in, act, prelu_in);
  const auto fmt = x_in.suggest_memory_format();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  at::Tensor x = x_in.contiguous(fmt);
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t r2 = r * r, C = Cin / r2, Ho = H * r, Wo = W * r;
  at::Tensor out = at::empty({N, C, Ho, Wo}, x.options().memory_format(fmt));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "pixel_shuffle_act", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const auto acc_dtype = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
    at::Tensor bias = bias_in.has_value() ? bias_in->to(acc_dtype).contiguous()
                                          : at::zeros({Cin}, x.options().dtype(acc_dtype));
    at::Tensor slopes = at::full({C}, slope, x.options().dtype(acc_dtype));
    if (act == kPReLU) slopes.copy_(prelu_in->to(acc_dtype).reshape({-1}).expand({C}));
    const acc_t* b = bias.data_ptr<acc_t>();
    const acc_t* sl = slopes.data_ptr<acc_t>();
    const scalar_t* in = x.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    if (!cl) {
      at::parallel_for(0, N * C * Ho, 16, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const int64_t oy = row % Ho, c = (row / Ho) % C, n = row / (Ho * C);
          const int64_t i = oy % r, y = oy / r;
          scalar_t* orow = o + row * Wo;
          for (int64_t j = 0; j < r; ++j) {
            const int64_t ch = c * r2 + i * r + j;
            const scalar_t* src = in + ((n * Cin + ch) * H + y) * W;
            const acc_t bb = b[ch], s_ = sl[c];
            for (int64_t xx = 0; xx < W; ++xx)
              orow[xx * r + j] = static_cast<scalar_t>(
                  activate<acc_t>(static_cast<acc_t>(src[xx]) + bb, act, s_));
          }
        }
      });
    } else {
      at::parallel_for(0, N * Ho, 1, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const int64_t oy = row % Ho, n = row / Ho, i = oy % r, y = oy / r;
          for (int64_t ox = 0; ox < Wo; ++ox) {
            const int64_t j = ox % r, xx = ox / r, ph = i * r + j;
            const scalar_t* src = in + ((n * H + y) * W + xx) * Cin + ph;
            scalar_t* dst = o + ((n * Ho + oy) * Wo + ox) * C;
            for (int64_t c = 0; c < C; ++c)
              dst[c] = static_cast<scalar_t>(
                  activate<acc_t>(static_cast<acc_t>(src[c * r2]) + b[c * r2 + ph], act, sl[c]));
          }
        }
      });
    }
  });
  return out;
}

// ---------------------------------------------------------------------------- channel attention
at::Tensor channel_attention_cpu(const at::Tensor& x_in, const at::Tensor& w_down,
                                 const at::Tensor& b_down, const at::Tensor& w_up,
                                 const at::Tensor& b_up,
                                 const std::optional<at::Tensor>& residual_in) {
  check_ca_args(x_in, w_down, b_down, w_up, b_up, residual_in);
  const auto fmt = x_in.suggest_memory_format();
  const bool cl = fmt == at::MemoryFormat::ChannelsLast;
  at::Tensor x = x_in.contiguous(fmt);
  at::Tensor res;
  if (residual_in.has_value()) res = residual_in->contiguous(fmt);
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const int64_t R = w_down.size(0);
  at::Tensor out = at::empty_like(x, x.options().memory_format(fmt));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "channel_attention", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const auto acc_dtype = std::is_same_v<acc_t, double> ? at::kDouble : at::kFloat;
    const scalar_t* in = x.data_ptr<scalar_t>();
    const scalar_t* rs = res.defined() ? res.data_ptr<scalar_t>() : nullptr;
    scalar_t* o = out.data_ptr<scalar_t>();
    // pass 1: global average pool, accumulated in double
    std::vector<double> mean(N * C, 0.0);
    if (!cl) {
      at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
        for (int64_t plane = begin; plane < end; ++plane) {
          const scalar_t* src = in + plane * HW;
          double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int64_t i = 0;
          for (; i + 8 <= HW; i += 8)
            for (int u = 0; u < 8; ++u) acc[u] += static_cast<double>(src[i + u]);
          for (; i < HW; ++i) acc[0] += static_cast<double>(src[i]);
          double sum = 0;
          for (int u = 0; u < 8; ++u) sum += acc[u];
          mean[plane] = sum / static_cast<double>(HW);
        }
      });
    } else {
      const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(HW / 1024, 64));
      std::vector<double> partial(N * chunks * C, 0.0);
      at::parallel_for(0, N * chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t n = t / chunks, ch = t % chunks;
          const int64_t p0 = HW * ch / chunks, p1 = HW * (ch + 1) / chunks;
          double* acc = partial.data() + t * C;
          for (int64_t p = p0; p < p1; ++p) {
            const scalar_t* src = in + (n * HW + p) * C;
SRPLUG_SIMD
            for (int64_t c = 0; c < C; ++c) acc[c] += static_cast<double>(src[c]);
          }
        }
      });
      for (int64_t n = 0; n < N; ++n)
        for (int64_t ch = 0; ch < chunks; ++ch)
          for (int64_t c = 0; c < C; ++c)
            mean[n * C + c] += partial[(n * chunks + ch) * C + c];
      for (auto& m : mean) m /= static_cast<double>(HW);
    }
    // the squeeze-excitation MLP, N x (C -> R -> C)
    at::Tensor wd = w_down.to(acc_dtype).contiguous(), bd = b_down.to(acc_dtype).contiguous();
    at::Tensor wu = w_up.to(acc_dtype).contiguous(), bu = b_up.to(acc_dtype).contiguous();
    const acc_t *wd_ = wd.data_ptr<acc_t>(), *bd_ = bd.data_ptr<acc_t>();
    const acc_t *wu_ = wu.data_ptr<acc_t>(), *bu_ = bu.data_ptr<acc_t>();
    std::vector<acc_t> scale(N * C), hidden(R);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t q = 0; q < R; ++q) {
        acc_t a = bd_[q];
        for (int64_t c = 0; c < C; ++c) a += wd_[q * C + c] * static_cast<acc_t>(mean[n * C + c]);
        hidden[q] = a > 0 ? a : acc_t(0);
      }
      for (int64_t c = 0; c < C; ++c) {
        acc_t a = bu_[c];
        for (int64_t q = 0; q < R; ++q) a += wu_[c * R + q] * hidden[q];
        scale[n * C + c] = sigmoid(a);
      }
    }
    // pass 2: scale (+ residual)
    const acc_t* sc = scale.data();
    if (!cl) {
      at::parallel_for(0, N * C, 1, [&](int64_t begin, int64_t end) {
        for (int64_t plane = begin; plane < end; ++plane) {
          const acc_t s_ = sc[plane];
          const scalar_t* src = in + plane * HW;
          scalar_t* dst = o + plane * HW;
          if (rs) {
            const scalar_t* rr = rs + plane * HW;
SRPLUG_SIMD
            for (int64_t i = 0; i < HW; ++i)
              dst[i] = static_cast<scalar_t>(static_cast<acc_t>(src[i]) * s_ +
                                             static_cast<acc_t>(rr[i]));
          } else {
SRPLUG_SIMD
            for (int64_t i = 0; i < HW; ++i)
              dst[i] = static_cast<scalar_t>(static_cast<acc_t>(src[i]) * s_);
          }
        }
      });
    } else {
      at::parallel_for(0, N * HW, 256, [&](int64_t begin, int64_t end) {
        for (int64_t px = begin; px < end; ++px) {
          const acc_t* s_ = sc + (px / HW) * C;
          const scalar_t* src = in + px * C;
          scalar_t* dst = o + px * C;
          if (rs) {
            const scalar_t* rr = rs + px * C;
SRPLUG_SIMD
            for (int64_t c = 0; c < C; ++c)
              dst[c] = static_cast<scalar_t>(static_cast<acc_t>(src[c]) * s_[c] +
                                             static_cast<acc_t>(rr[c]));
          } else {
SRPLUG_SIMD
            for (int64_t c = 0; c < C; ++c)
              dst[c] = static_cast<scalar_t>(static_cast<acc_t>(src[c]) * s_[c]);
          }
        }
      });
    }
  });
  return out;
}

std::string build_info() {
  std::string info = "cpu";
#ifdef _OPENMP
  info += " openmp=" + std::to_string(_OPENMP);
#else
  info += " openmp=no";
#endif
#if defined(__AVX512F__)
  info += " simd=avx512";
#elif defined(__AVX2__)
  info += " simd=avx2";
#elif defined(__ARM_NEON)
  info += " simd=neon";
#else
  info += " simd=baseline";
#endif
#ifdef SRPLUG_WITH_CUDA
  info += " cuda=yes";
#else
  info += " cuda=no";
#endif
  return info;
}

}  // namespace

TORCH_LIBRARY(srplug_ops, m) {
  m.def("esr_upscale(Tensor x, Tensor weight, int scale, int mode) -> Tensor");
  m.def(
      "pixel_shuffle_act(Tensor x, int scale, Tensor? bias, int act, float slope, "
      "Tensor? prelu) -> Tensor");
  m.def(
      "channel_attention(Tensor x, Tensor w_down, Tensor b_down, Tensor w_up, Tensor b_up, "
      "Tensor? residual) -> Tensor");
  m.def("build_info() -> str", &build_info);
}

TORCH_LIBRARY_IMPL(srplug_ops, CPU, m) {
  m.impl("esr_upscale", &esr_upscale_cpu);
  m.impl("pixel_shuffle_act", &pixel_shuffle_act_cpu);
  m.impl("channel_attention", &channel_attention_cpu);
}

}  // namespace srplug_ops
