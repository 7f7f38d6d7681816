// The register-blocked direct convolution shared by direct_conv.cpp (narrow layers) and
// winograd.cpp (its 36 matrix products are 1x1 convolutions over the tiles).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "common.h"

namespace srplug_ops {
namespace direct {

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
  const float* w;      // packed (kh, kw, C, cp), from the first channel of this pass
  int64_t cp;          // packed row length (all channels, zero-padded to whole vectors)
  const float* bias;   // cp values, from the first channel of this pass
  const float* alpha;  // cp values, likewise (PReLU), or nullptr
  int act;
  int64_t out_channels;  // channels to store (conv_rows_all: all K; one pass: at most 64)
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

// conv_rows for `blocks` (1 to kMaxBlocks) vectors of output channels
inline void conv_rows_n(int blocks, const Geometry& g, int64_t pad_top, int64_t pad_left,
                        int64_t Wo, int64_t r_begin, int64_t r_end, float* y_img) {
  switch (blocks) {
    case 1: conv_rows<1>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
    case 2: conv_rows<2>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
    case 3: conv_rows<3>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
    default: conv_rows<4>(g, pad_top, pad_left, Wo, r_begin, r_end, y_img); break;
  }
}

// Output rows [r_begin, r_end) of all g.out_channels channels, in passes of up to kMaxBlocks
// vectors of channels (g's pointers at channel 0; y_img at channel 0 of the image).
inline void conv_rows_all(Geometry g, int64_t pad_top, int64_t pad_left, int64_t Wo,
                          int64_t r_begin, int64_t r_end, float* y_img) {
  const int64_t K = g.out_channels;
  const float *w = g.w, *bias = g.bias, *alpha = g.alpha;
  for (int64_t k0 = 0; k0 < K; k0 += kMaxBlocks * kLanes) {
    g.out_channels = std::min<int64_t>(K - k0, kMaxBlocks * kLanes);
    g.w = w + k0;
    g.bias = bias + k0;
    g.alpha = alpha ? alpha + k0 : nullptr;
    conv_rows_n(static_cast<int>((g.out_channels + kLanes - 1) / kLanes), g, pad_top, pad_left,
                Wo, r_begin, r_end, y_img + k0);
  }
}

}  // namespace direct
}  // namespace srplug_ops
