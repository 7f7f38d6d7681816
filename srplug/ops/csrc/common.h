// Shared constants and argument checks of the srplug.ops kernels (CPU and CUDA).
// The Python wrappers validate arguments with readable messages first; these checks only keep
// a direct call through torch.ops from reading out of bounds.
#pragma once

#include <ATen/ATen.h>

#include <optional>

// `#pragma` cannot appear inside the AT_DISPATCH macro arguments; _Pragma can.
#define SRPLUG_SIMD _Pragma("omp simd")

namespace srplug_ops {

// edge-SR reductions (the `mode` argument of esr_upscale)
constexpr int kMax = 0;  // max_c value
constexpr int kTM = 1;   // sum_c value * softmax_c(match)
constexpr int kTR = 2;   // sum_c value * softmax_c(query * key)
constexpr int kCNN = 3;  // sum_c value * softmax_c(key * key)

// activations of pixel_shuffle_act
constexpr int kNone = 0;
constexpr int kReLU = 1;
constexpr int kLeakyReLU = 2;
constexpr int kTanh = 3;
constexpr int kSigmoid = 4;
constexpr int kPReLU = 5;

inline int groups_of(int64_t mode) { return mode == kMax ? 1 : (mode == kTR ? 3 : 2); }

inline void check_esr_args(const at::Tensor& x, const at::Tensor& weight, int64_t scale,
                           int64_t mode) {
  TORCH_CHECK(x.dim() == 4 && weight.dim() == 4, "esr_upscale: x and weight must be 4-D");
  TORCH_CHECK(mode >= kMax && mode <= kCNN, "esr_upscale: unknown mode ", mode);
  TORCH_CHECK(scale >= 1, "esr_upscale: scale must be >= 1");
  TORCH_CHECK(weight.size(1) == x.size(1), "esr_upscale: weight.size(1) != x.size(1)");
  TORCH_CHECK(weight.size(2) == weight.size(3) && weight.size(2) % 2 == 1,
              "esr_upscale: filters must be square with an odd size");
  const int64_t per = groups_of(mode) * scale * scale;
  TORCH_CHECK(weight.size(0) % per == 0 && weight.size(0) > 0,
              "esr_upscale: weight.size(0) must be a multiple of groups * scale^2");
  TORCH_CHECK(x.device() == weight.device(), "esr_upscale: x and weight on different devices");
}

inline void check_shuffle_args(const at::Tensor& x, int64_t r,
                               const std::optional<at::Tensor>& bias, int64_t act,
                               const std::optional<at::Tensor>& prelu) {
  TORCH_CHECK(x.dim() == 4, "pixel_shuffle_act: x must be 4-D");
  TORCH_CHECK(r >= 1 && x.size(1) % (r * r) == 0,
              "pixel_shuffle_act: channels must be a multiple of scale^2");
  TORCH_CHECK(act >= kNone && act <= kPReLU, "pixel_shuffle_act: unknown activation ", act);
  if (bias.has_value()) {
    TORCH_CHECK(bias->numel() == x.size(1), "pixel_shuffle_act: bias needs one value per channel");
  }
  if (act == kPReLU) {
    TORCH_CHECK(prelu.has_value(), "pixel_shuffle_act: prelu weight missing");
    const int64_t n = prelu->numel();
    TORCH_CHECK(n == 1 || n == x.size(1) / (r * r),
                "pixel_shuffle_act: prelu weight needs 1 or C values");
  }
}

inline void check_ca_args(const at::Tensor& x, const at::Tensor& w_down, const at::Tensor& b_down,
                          const at::Tensor& w_up, const at::Tensor& b_up,
                          const std::optional<at::Tensor>& residual) {
  TORCH_CHECK(x.dim() == 4, "channel_attention: x must be 4-D");
  const int64_t C = x.size(1);
  TORCH_CHECK(w_down.dim() == 2 && w_down.size(1) == C, "channel_attention: w_down must be (R, C)");
  const int64_t R = w_down.size(0);
  TORCH_CHECK(b_down.numel() == R, "channel_attention: b_down must have R values");
  TORCH_CHECK(w_up.dim() == 2 && w_up.size(0) == C && w_up.size(1) == R,
              "channel_attention: w_up must be (C, R)");
  TORCH_CHECK(b_up.numel() == C, "channel_attention: b_up must have C values");
  if (residual.has_value()) {
    TORCH_CHECK(residual->sizes() == x.sizes() && residual->scalar_type() == x.scalar_type(),
                "channel_attention: residual must match x in shape and dtype");
  }
}

}  // namespace srplug_ops
