// srplug.ops CPU kernel: direct convolution for narrow layers (a few to 64 output channels,
// any kernel size and stride, explicit zero padding), bias and a ReLU / PReLU fused.
//
//   direct_conv2d(x, weight, bias, stride, pad_top, pad_bottom, pad_left, pad_right, act, prelu)
//     x        (N, C, H, W) float32, channels_last (physically N, H, W, C)
//     weight   (K, C, kh, kw) float32;  bias (K,) or None
//     act      0 none, 1 ReLU, 5 PReLU (prelu: 1 or K slopes)
//     returns  act(conv2d(pad(x), weight) + bias), (N, K, Ho, Wo) channels_last,
//              Ho = (H + pad_top + pad_bottom - kh) / stride + 1 (likewise Wo)
//
// Output channels go in vector blocks of 16 (up to 4 blocks, 64 channels, per pass); a
// register block holds P output pixels x those blocks. Per filter tap and input channel the
// kernel loads the block's weights once and multiplies them by one broadcast input value per
// pixel, so a layer with few input channels (the 5x5 1->64 first layer of ESPCN, FSRCNN's
// 12-channel layers) runs at the rate of a wide one, where im2col + GEMM or oneDNN's blocked
// kernels lose most of theirs. Padding is never materialised: rows outside the image are
// skipped by narrowing the filter rows, the few border pixels of a row take a per-pixel path
// with narrowed filter columns.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "common.h"

namespace srplug_ops {
namespace {

typedef float vfloat __attribute__((vector_size(64)));  // 16 floats; GCC/Clang lower it to
                                                        // AVX-512, AVX2 or SSE as available
constexpr int kLanes = 16;
constexpr int kMaxBlocks = 4;  // output channel blocks per pass

inline vfloat vload(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }

// the first n (< 16) lanes of v to p
inline void vstore_first(float* p, vfloat v, int64_t n) {
#ifdef __AVX512F__
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), reinterpret_cast<__m512>(v));
#else
  std::memcpy(p, &v, n * sizeof(float));
#endif
}

struct Geometry {
  const float* x;  // one image, (H, W, C)
  int64_t H, W, C, kh, kw, stride;
  const float* w;      // packed (kh, kw, C, Cp) for this pass's channel group
  int64_t cp;          // packed row length (all groups)
  const float* bias;   // Cp values, this group
  const float* alpha;  // Cp values, this group (PReLU) or nullptr
  int act;
  int64_t out_channels;  // channels of this group to store
  int64_t out_stride;    // values between output pixels (K)
};

// P output pixels (consecutive columns) x CB channel blocks. (r0, c0): input coordinates of
// the first pixel's top-left tap; filter rows [ky0, ky1) and columns [kx0, kx1) are in bounds.
template <int CB, int P>
inline void conv_block(const Geometry& g, int64_t r0, int64_t c0, int64_t ky0, int64_t ky1,
                       int64_t kx0, int64_t kx1, float* __restrict dst, int np) {
  vfloat acc[P][CB];
  for (int b = 0; b < CB; ++b) {
    const vfloat bias = vload(g.bias + b * kLanes);
    for (int p = 0; p < P; ++p) acc[p][b] = bias;
  }
  const int64_t C = g.C, step = g.stride * C;
  for (int64_t ky = ky0; ky < ky1; ++ky) {
    for (int64_t kx = kx0; kx < kx1; ++kx) {
      const float* __restrict src = g.x + ((r0 + ky) * g.W + c0 + kx) * C;
      const float* __restrict wk = g.w + (ky * g.kw + kx) * C * g.cp;
      for (int64_t ci = 0; ci < C; ++ci) {
        vfloat wv[CB];
        for (int b = 0; b < CB; ++b) wv[b] = vload(wk + ci * g.cp + b * kLanes);
        for (int p = 0; p < P; ++p) {
          const float v = src[p * step + ci];
          for (int b = 0; b < CB; ++b) acc[p][b] += v * wv[b];
        }
      }
    }
  }
  const vfloat zero = {};
  const int64_t last = g.out_channels - (CB - 1) * kLanes;  // channels in the last block
  for (int p = 0; p < np; ++p) {
    float* out = dst + p * g.out_stride;
    for (int b = 0; b < CB; ++b) {
      vfloat v = acc[p][b];
      if (g.act == kReLU) {
        v = v > zero ? v : zero;
      } else if (g.act == kPReLU) {
        v = v > zero ? v : v * vload(g.alpha + b * kLanes);
      }
      if (b < CB - 1 || last == kLanes) {
        vstore(out + b * kLanes, v);
      } else {
        vstore_first(out + b * kLanes, v, last);
      }
    }
  }
}

// Pixels per register block: P * CB accumulators + CB weights + a broadcast fit 32 registers.
template <int CB>
constexpr int pixels_per_block() {
  return CB == 1 ? 16 : (CB == 2 ? 12 : (CB == 3 ? 8 : 6));
}

template <int CB>
void conv_rows(const Geometry& g, int64_t pad_top, int64_t pad_left, int64_t Wo, int64_t r_begin,
               int64_t r_end, float* y_img) {
  constexpr int P = pixels_per_block<CB>();
  // columns whose whole filter footprint is inside the image: c * stride - pad_left >= 0 and
  // c * stride - pad_left + kw <= W
  const int64_t c_lo = std::min<int64_t>(Wo, (pad_left + g.stride - 1) / g.stride);
  const int64_t c_hi_raw = g.W + pad_left - g.kw;
  const int64_t c_hi = c_hi_raw < 0 ? c_lo : std::max(c_lo, std::min(Wo, c_hi_raw / g.stride + 1));
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t r0 = r * g.stride - pad_top;
    const int64_t ky0 = std::max<int64_t>(0, -r0), ky1 = std::min<int64_t>(g.kh, g.H - r0);
    float* drow = y_img + r * Wo * g.out_stride;
    auto single = [&](int64_t c) {
      const int64_t c0 = c * g.stride - pad_left;
      const int64_t kx0 = std::max<int64_t>(0, -c0), kx1 = std::min<int64_t>(g.kw, g.W - c0);
      conv_block<CB, 1>(g, r0, c0, ky0, std::max(ky0, ky1), kx0, std::max(kx0, kx1),
                        drow + c * g.out_stride, 1);
    };
    int64_t c = 0;
    for (; c < c_lo; ++c) single(c);
    for (; c + P <= c_hi; c += P) {
      conv_block<CB, P>(g, r0, c * g.stride - pad_left, ky0, std::max(ky0, ky1), 0, g.kw,
                        drow + c * g.out_stride, P);
    }
    for (; c < Wo; ++c) single(c);
  }
}

at::Tensor direct_conv2d_cpu(const at::Tensor& x_in, const at::Tensor& weight,
                             const std::optional<at::Tensor>& bias_in, int64_t stride,
                             int64_t pad_top, int64_t pad_bottom, int64_t pad_left,
                             int64_t pad_right, int64_t act,
                             const std::optional<at::Tensor>& prelu_in) {
  TORCH_CHECK(x_in.dim() == 4 && weight.dim() == 4, "direct_conv2d: x and weight must be 4-D");
  TORCH_CHECK(x_in.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat,
              "direct_conv2d: float32 only");
  TORCH_CHECK(weight.size(1) == x_in.size(1), "direct_conv2d: weight.size(1) != channels");
  TORCH_CHECK(stride >= 1, "direct_conv2d: stride must be >= 1");
  TORCH_CHECK(pad_top >= 0 && pad_bottom >= 0 && pad_left >= 0 && pad_right >= 0,
              "direct_conv2d: negative padding");
  TORCH_CHECK(act == kNone || act == kReLU || act == kPReLU,
              "direct_conv2d: act must be none, relu or prelu");
  const int64_t N = x_in.size(0), C = x_in.size(1), H = x_in.size(2), W = x_in.size(3);
  const int64_t K = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  const int64_t Hp = H + pad_top + pad_bottom, Wp = W + pad_left + pad_right;
  TORCH_CHECK(Hp >= kh && Wp >= kw, "direct_conv2d: padded input smaller than the filter");
  const int64_t Ho = (Hp - kh) / stride + 1, Wo = (Wp - kw) / stride + 1;
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor y = at::empty({N, K, Ho, Wo}, x_in.options().memory_format(cl));
  if (N == 0 || K == 0) return y;

  // packed weights (kh, kw, C, Cp), bias and slopes (Cp), zero past K
  const int64_t cp = (K + kLanes - 1) / kLanes * kLanes;
  at::Tensor wp = at::zeros({kh, kw, C, cp}, weight.options());
  wp.narrow(3, 0, K).copy_(weight.permute({2, 3, 1, 0}));
  at::Tensor bp = at::zeros({cp}, weight.options());
  if (bias_in.has_value()) {
    TORCH_CHECK(bias_in->numel() == K, "direct_conv2d: bias needs K values");
    bp.narrow(0, 0, K).copy_(bias_in->reshape({K}));
  }
  at::Tensor ap;
  if (act == kPReLU) {
    TORCH_CHECK(prelu_in.has_value() && (prelu_in->numel() == 1 || prelu_in->numel() == K),
                "direct_conv2d: prelu needs 1 or K slopes");
    ap = at::zeros({cp}, weight.options());
    ap.narrow(0, 0, K).copy_(prelu_in->reshape({-1}).expand({K}));
  }
  const at::Tensor x = x_in.contiguous(cl);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t rows = N * Ho;
  // at least a few rows per task: a row of a small layer is only microseconds of work
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(1, Wo * C * kh * kw * cp));
  for (int64_t k0 = 0; k0 < K; k0 += kMaxBlocks * kLanes) {
    const int64_t nk = std::min<int64_t>(K - k0, kMaxBlocks * kLanes);
    const int blocks = static_cast<int>((nk + kLanes - 1) / kLanes);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      while (begin < end) {
        const int64_t n = begin / Ho, r_begin = begin % Ho;
        const int64_t r_end = std::min(Ho, r_begin + (end - begin));
        Geometry g{xp + n * H * W * C, H, W, C, kh, kw, stride, wp.data_ptr<float>() + k0, cp,
                   bp.data_ptr<float>() + k0, ap.defined() ? ap.data_ptr<float>() + k0 : nullptr,
                   static_cast<int>(act), nk, K};
        float* y_img = yp + n * Ho * Wo * K + k0;
        switch (blocks) {
          case 1: conv_rows<1>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
          case 2: conv_rows<2>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
          case 3: conv_rows<3>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
          default: conv_rows<4>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
        }
        begin += r_end - r_begin;
      }
    });
  }
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(srplug_ops, m) {
  m.def(
      "direct_conv2d(Tensor x, Tensor weight, Tensor? bias, int stride, int pad_top, "
      "int pad_bottom, int pad_left, int pad_right, int act, Tensor? prelu) -> Tensor");
}

TORCH_LIBRARY_IMPL(srplug_ops, CPU, m) { m.impl("direct_conv2d", &direct_conv2d_cpu); }

}  // namespace srplug_ops
