#pragma once
// RMSNorm / LayerNorm of a residual stream whose E dimension is split over `e_axes`: each rank
// sums its E slice, the statistics (one or two floats per row) are all-reduced over e_axes, and
// each rank normalises its slice with its slice of the weights. x: [M, E_local].
#include "collectives/collectives.hpp"
#include "kernels/tensor.hpp"
#include "models/config.hpp"

namespace tori::runtime {

kernels::Tensor sharded_norm(collectives::Collectives& coll, collectives::Axes e_axes,
                             const models::ModelConfig& c, const kernels::Tensor& x, int64_t e_offset,
                             const kernels::Tensor& w, const kernels::Tensor& b);

}  // namespace tori::runtime
