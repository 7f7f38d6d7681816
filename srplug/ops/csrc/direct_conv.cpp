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
#include <optional>

#include "common.h"
#include "direct_block.h"

namespace srplug_ops {
namespace {

using direct::Geometry;
using direct::kLanes;

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
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    while (begin < end) {
      const int64_t n = begin / Ho, r_begin = begin % Ho;
      const int64_t r_end = std::min(Ho, r_begin + (end - begin));
      const Geometry g{xp + n * H * W * C, H, W, C, kh, kw, stride, wp.data_ptr<float>(), cp,
                       bp.data_ptr<float>(), ap.defined() ? ap.data_ptr<float>() : nullptr,
                       static_cast<int>(act), K, K};
      direct::conv_rows_all(g, pad_top, pad_left, Wo, r_begin, r_end, yp + n * Ho * Wo * K);
      begin += r_end - r_begin;
    }
  });
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
