// srplug.ops CPU kernel: 3x3 convolution (stride 1, zero padding 1) by Winograd F(4x4, 3x3),
// with the bias, a ReLU and a residual add fused into the output transform.
//
//   winograd_conv3x3(x, u, bias, act, residual, chunk)
//     x         (N, C, H, W) channels_last (physically N, H, W, C), float32 or float64
//     u         (36, C, K) the transformed filters G g G^T (srplug.ops.conv.winograd_filters)
//     bias      (K,) or None;  act: 0 none, 1 ReLU;  residual (N, K, H, W) channels_last or None
//     chunk     tiles per pass (<= 0: automatic)
//     returns   act(conv3x3(x, g) + bias) + residual, (N, K, H, W) channels_last
//
// The output is cut into 4x4 tiles, each read from a 6x6 input patch. Per chunk of tiles:
//   1. input transform   V[p, t, :] = (B^T d_t B)[p]            36 x T x C
//   2. 36 matrix products M[p] = V[p] @ u[p]   (float32: the register-blocked kernel of
//                                                direct_block.h; float64: at::bmm)
//   3. output transform  y_t = A^T M[:, t, :] A (+ bias, act, residual), written in place
// The products do 36 * C * K multiply-adds per 16 output pixels instead of 9 * 16 * C * K,
// 4x fewer. Chunks keep V and M in cache and bound the scratch memory.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "common.h"
#include "direct_block.h"

namespace srplug_ops {
namespace {

constexpr int kVec = 16;   // channels per inner block (one AVX-512 float vector)
constexpr int64_t kPad = 16;  // values between the 36 scratch matrices (see below)

// B^T d for one 6-vector of channel blocks (strided by `s` blocks); out may alias nothing.
template <typename acc_t>
inline void bt_apply(const acc_t (*__restrict d)[kVec], int s, acc_t (*__restrict o)[kVec],
                     int os) {
SRPLUG_SIMD
  for (int c = 0; c < kVec; ++c) {
    const acc_t d0 = d[0][c], d1 = d[s][c], d2 = d[2 * s][c], d3 = d[3 * s][c],
                d4 = d[4 * s][c], d5 = d[5 * s][c];
    o[0][c] = 4 * d0 - 5 * d2 + d4;
    o[os][c] = -4 * (d1 + d2) + d3 + d4;
    o[2 * os][c] = 4 * (d1 - d2) - d3 + d4;
    o[3 * os][c] = 2 * (d3 - d1) - d2 + d4;
    o[4 * os][c] = 2 * (d1 - d3) - d2 + d4;
    o[5 * os][c] = 4 * d1 - 5 * d3 + d5;
  }
}

// A^T m: 6 -> 4 for one vector of channel blocks.
template <typename acc_t>
inline void at_apply(const acc_t (*__restrict m)[kVec], int s, acc_t (*__restrict o)[kVec],
                     int os) {
SRPLUG_SIMD
  for (int c = 0; c < kVec; ++c) {
    const acc_t m0 = m[0][c], m1 = m[s][c], m2 = m[2 * s][c], m3 = m[3 * s][c],
                m4 = m[4 * s][c], m5 = m[5 * s][c];
    const acc_t a = m1 + m2, b = m1 - m2, e = m3 + m4, f = m3 - m4;
    o[0][c] = m0 + a + e;
    o[os][c] = b + 2 * f;
    o[2 * os][c] = a + 4 * e;
    o[3 * os][c] = b + 8 * f + m5;
  }
}

// One block of kVec channels from `src` (n <= kVec valid values), zero-filled past n.
template <typename scalar_t>
inline void load_block(const scalar_t* __restrict src, int n, scalar_t* __restrict dst) {
  if (n == kVec) {
SRPLUG_SIMD
    for (int c = 0; c < kVec; ++c) dst[c] = src[c];
  } else {
    for (int c = 0; c < kVec; ++c) dst[c] = c < n ? src[c] : scalar_t(0);
  }
}

template <typename scalar_t>
void input_transform(const scalar_t* x, int64_t H, int64_t W, int64_t C, int64_t tiles_h,
                     int64_t tiles_w, int64_t t0, int64_t t1, scalar_t* V, int64_t vs) {
  at::parallel_for(t0, t1, 8, [&](int64_t begin, int64_t end) {
    alignas(64) scalar_t d[36][kVec];
    alignas(64) scalar_t tmp[36][kVec];
    alignas(64) scalar_t v[36][kVec];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / (tiles_h * tiles_w), r = t % (tiles_h * tiles_w);
      const int64_t y0 = (r / tiles_w) * 4 - 1, x0 = (r % tiles_w) * 4 - 1;
      const scalar_t* img = x + n * H * W * C;
      for (int64_t c0 = 0; c0 < C; c0 += kVec) {
        const int nc = static_cast<int>(std::min<int64_t>(kVec, C - c0));
        for (int i = 0; i < 6; ++i) {
          const int64_t yy = y0 + i;
          for (int j = 0; j < 6; ++j) {
            const int64_t xx = x0 + j;
            scalar_t* dst = d[i * 6 + j];
            if (yy < 0 || yy >= H || xx < 0 || xx >= W) {
              for (int c = 0; c < kVec; ++c) dst[c] = 0;
            } else {
              load_block(img + (yy * W + xx) * C + c0, nc, dst);
            }
          }
        }
        for (int j = 0; j < 6; ++j) bt_apply(d + j, 6, tmp + j, 6);      // columns
        for (int i = 0; i < 6; ++i) bt_apply(tmp + i * 6, 1, v + i * 6, 1);  // rows
        const int64_t tl = t - t0;
        for (int p = 0; p < 36; ++p) {
          scalar_t* dst = V + p * vs + tl * C + c0;
SRPLUG_SIMD
          for (int c = 0; c < nc; ++c) dst[c] = v[p][c];
        }
      }
    }
  });
}

template <typename scalar_t>
void output_transform(const scalar_t* M, int64_t ms, int64_t H, int64_t W, int64_t K,
                      int64_t tiles_h, int64_t tiles_w, int64_t t0, int64_t t1,
                      const scalar_t* bias, int64_t act, const scalar_t* res, scalar_t* y) {
  at::parallel_for(t0, t1, 8, [&](int64_t begin, int64_t end) {
    alignas(64) scalar_t m[36][kVec];
    alignas(64) scalar_t tmp[24][kVec];
    alignas(64) scalar_t o[16][kVec];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / (tiles_h * tiles_w), r = t % (tiles_h * tiles_w);
      const int64_t y0 = (r / tiles_w) * 4, x0 = (r % tiles_w) * 4;
      const int64_t tl = t - t0;
      for (int64_t k0 = 0; k0 < K; k0 += kVec) {
        const int nk = static_cast<int>(std::min<int64_t>(kVec, K - k0));
        for (int p = 0; p < 36; ++p) load_block(M + p * ms + tl * K + k0, nk, m[p]);
        for (int j = 0; j < 6; ++j) at_apply(m + j, 6, tmp + j, 6);     // 6x6 -> 4x6
        for (int i = 0; i < 4; ++i) at_apply(tmp + i * 6, 1, o + i * 4, 1);  // -> 4x4
        for (int i = 0; i < 4; ++i) {
          const int64_t yy = y0 + i;
          if (yy >= H) break;
          for (int j = 0; j < 4; ++j) {
            const int64_t xx = x0 + j;
            if (xx >= W) break;
            const int64_t off = ((n * H + yy) * W + xx) * K + k0;
            scalar_t* dst = y + off;
            const scalar_t* ov = o[i * 4 + j];
            const scalar_t* rr = res ? res + off : nullptr;
SRPLUG_SIMD
            for (int c = 0; c < nk; ++c) {
              scalar_t v = ov[c] + (bias ? bias[k0 + c] : scalar_t(0));
              if (act == kReLU) v = v > 0 ? v : scalar_t(0);
              dst[c] = rr ? v + rr[c] : v;
            }
          }
        }
      }
    }
  });
}

// M[p] = V[p] @ u[p] for the 36 points p, float32: each product is a 1x1 convolution of a
// 1 x T "image" of C channels (direct_block.h), without at::bmm's per-matrix dispatch.
// up: u zero-padded to (36, C, cp), cp a multiple of 16; zeros: cp zeros (no bias).
void winograd_products(const float* V, int64_t vs, const float* up, int64_t cp,
                       const float* zeros, int64_t T, int64_t C, int64_t K, float* M, int64_t ms) {
  at::parallel_for(0, 36, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const direct::Geometry g{V + p * vs, 1, T, C, 1, 1, 1, up + p * C * cp, cp, zeros,
                               nullptr, kNone, K, K};
      direct::conv_rows_all(g, 0, 0, T, 0, 1, M + p * ms);
    }
  });
}

at::Tensor winograd_conv3x3_cpu(const at::Tensor& x_in, const at::Tensor& u_in,
                                const std::optional<at::Tensor>& bias_in, int64_t act,
                                const std::optional<at::Tensor>& residual_in, int64_t chunk) {
  TORCH_CHECK(x_in.dim() == 4, "winograd_conv3x3: x must be 4-D");
  TORCH_CHECK(u_in.dim() == 3 && u_in.size(0) == 36 && u_in.size(1) == x_in.size(1),
              "winograd_conv3x3: u must be (36, C, K)");
  TORCH_CHECK(u_in.scalar_type() == x_in.scalar_type(), "winograd_conv3x3: dtype mismatch");
  TORCH_CHECK(act == kNone || act == kReLU, "winograd_conv3x3: act must be none or relu");
  const int64_t N = x_in.size(0), C = x_in.size(1), H = x_in.size(2), W = x_in.size(3);
  const int64_t K = u_in.size(2);
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor x = x_in.contiguous(cl);
  at::Tensor u = u_in.contiguous();
  at::Tensor bias, res;
  if (bias_in.has_value()) {
    TORCH_CHECK(bias_in->numel() == K, "winograd_conv3x3: bias needs K values");
    bias = bias_in->to(x.scalar_type()).contiguous();
  }
  if (residual_in.has_value()) {
    TORCH_CHECK(residual_in->dim() == 4 && residual_in->size(0) == N &&
                    residual_in->size(1) == K && residual_in->size(2) == H &&
                    residual_in->size(3) == W && residual_in->scalar_type() == x.scalar_type(),
                "winograd_conv3x3: residual must be (N, K, H, W) in the dtype of x");
    res = residual_in->contiguous(cl);
  }
  at::Tensor y = at::empty({N, K, H, W}, x.options().memory_format(cl));
  if (N == 0 || H == 0 || W == 0 || K == 0) return y;
  const int64_t tiles_h = (H + 3) / 4, tiles_w = (W + 3) / 4, tiles = N * tiles_h * tiles_w;
  // 2 x 36 x chunk x max(C, K) scratch values, sized for L2: 128 tiles of 64 channels (2.4 MB
  // in float32) measured fastest on a Zen 4 core, 32 to 384 within 15%
  if (chunk <= 0) chunk = std::max<int64_t>(16, (int64_t(1) << 13) / std::max<int64_t>(C, K));
  chunk = std::min(chunk, tiles);
  at::Tensor scratch_v = at::empty({36 * (chunk * C + kPad)}, x.options().memory_format(
                                                                  at::MemoryFormat::Contiguous));
  at::Tensor scratch_m = at::empty({36 * (chunk * K + kPad)}, scratch_v.options());
  // float32 products: u zero-padded to whole vectors of output channels
  const int64_t cp = (K + direct::kLanes - 1) / direct::kLanes * direct::kLanes;
  at::Tensor u_packed, zeros;
  if (x.scalar_type() == at::kFloat) {
    u_packed = at::zeros({36, C, cp}, u.options());
    u_packed.narrow(2, 0, K).copy_(u);
    zeros = at::zeros({cp}, u.options());
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_conv3x3", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.data_ptr<scalar_t>() : nullptr;
    const scalar_t* rp = res.defined() ? res.data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.data_ptr<scalar_t>();
    for (int64_t t0 = 0; t0 < tiles; t0 += chunk) {
      const int64_t t1 = std::min(tiles, t0 + chunk), T = t1 - t0;
      // The 36 matrices of one chunk lie `T * C + kPad` values apart: with a stride that is a
      // multiple of 4 KiB the 36 rows a transform touches per tile would share one L1 set.
      const int64_t vs = T * C + kPad, ms = T * K + kPad;
      at::Tensor v = scratch_v.narrow(0, 0, 36 * vs).as_strided({36, T, C}, {vs, C, 1});
      at::Tensor m = scratch_m.narrow(0, 0, 36 * ms).as_strided({36, T, K}, {ms, K, 1});
      input_transform(xp, H, W, C, tiles_h, tiles_w, t0, t1, v.data_ptr<scalar_t>(), vs);
      if constexpr (std::is_same_v<scalar_t, float>) {
        winograd_products(v.data_ptr<float>(), vs, u_packed.data_ptr<float>(), cp,
                          zeros.data_ptr<float>(), T, C, K, m.data_ptr<float>(), ms);
      } else {
        at::bmm_out(m, v, u);
      }
      output_transform(m.data_ptr<scalar_t>(), ms, H, W, K, tiles_h, tiles_w, t0, t1, bp, act,
                       rp, yp);
    }
  });
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(srplug_ops, m) {
  m.def(
      "winograd_conv3x3(Tensor x, Tensor u, Tensor? bias, int act, Tensor? residual, "
      "int chunk) -> Tensor");
}

TORCH_LIBRARY_IMPL(srplug_ops, CPU, m) { m.impl("winograd_conv3x3", &winograd_conv3x3_cpu); }

}  // namespace srplug_ops
