#pragma once
// The driver shared by the one-way ring (algo_ring.cpp) and the bidirectional ring
// (algo_bidir.cpp): plans a collective axis by axis (ring_plan.hpp) and runs each stage with the
// ring stage executors (ring_stage.hpp). The two algorithms differ only in how a stage's blocks
// are split into lanes.
#include "collectives/algorithm.hpp"

namespace tori::collectives {

class RingFamilyAlgorithm : public AlgorithmImpl {
 public:
  explicit RingFamilyAlgorithm(LaneSplit split) : split_(split) {}
  void all_gather(const Group& g, std::byte* buf, int64_t chunk, size_t elem_bytes,
                  const CallContext& ctx) const override;
  void reduce_scatter(const Group& g, const float* in, float* out, int64_t chunk,
                      const CallContext& ctx) const override;
  void all_reduce(const Group& g, const float* in, float* out, int64_t n,
                  const CallContext& ctx) const override;
  void all_to_all(const Group& g, const std::byte* in, std::byte* out, size_t piece_bytes,
                  const CallContext& ctx) const override;
  void ppermute(const RingLink& ring, const std::byte* in, std::byte* out, size_t bytes, int shift,
                const CallContext& ctx) const override;

 private:
  LaneSplit split_;
};

}  // namespace tori::collectives
