#include "runtime/active_batch.hpp"

#include <algorithm>
#include <string>

#include "kernels/error.hpp"

namespace tori::runtime {

ActiveBatch active_batch(int64_t batch, int64_t shards, const std::vector<bool>& active) {
  if (shards <= 0 || batch % shards != 0 || int64_t(active.size()) != batch)
    throw Error("active_batch: batch " + std::to_string(batch) + " in " + std::to_string(shards) +
                " shards, " + std::to_string(active.size()) + " flags");
  const int64_t per = batch / shards;
  std::vector<std::vector<int64_t>> by_shard(static_cast<size_t>(shards));
  for (int64_t b = 0; b < batch; ++b)
    if (active[size_t(b)]) by_shard[size_t(b / per)].push_back(b);
  size_t m = 0;
  for (const auto& s : by_shard) m = std::max(m, s.size());
  if (m == 0) throw Error("active_batch: no sequence is active");
  ActiveBatch a;
  a.rows = shards * int64_t(m);
  a.sequence.assign(size_t(a.rows), -1);
  for (size_t j = 0; j < by_shard.size(); ++j)
    std::copy(by_shard[j].begin(), by_shard[j].end(), a.sequence.begin() + long(j * m));
  return a;
}

}  // namespace tori::runtime
