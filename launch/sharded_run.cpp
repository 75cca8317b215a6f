#include "launch/sharded_run.hpp"

#include "collectives/collective_matmul.hpp"
#include "kernels/backend.hpp"

namespace tori::launch {

collectives::CollectivesOptions collectives_options(const GlobalOptions& g) {
  collectives::CollectivesOptions copt;
  copt.algorithm = collectives::parse_algorithm(g.collectives);
  copt.link = {g.link_gbps, g.link_latency_us};
  copt.shm_ppermute = collectives::parse_ppermute_transport(g.ppermute, "--ppermute");
  return copt;
}

runtime::ShardOptions shard_options(const GlobalOptions& g) {
  runtime::ShardOptions shard;
  shard.backend = kernels::parse_matmul_backend(g.matmul);
  shard.overlap = collectives::parse_overlap(g.overlap, "--overlap");
  shard.attention_kernel = runtime::parse_attention_kernel(g.attention_kernel, "--attention-kernel");
  return shard;
}

ShardedRun::ShardedRun(const std::string& torus_flag, const GlobalOptions& g)
    : torus(MPI_COMM_WORLD, torus_flag),
      coll(std::make_unique<collectives::Collectives>(torus, collectives_options(g))),
      shard(shard_options(g)) {}

}  // namespace tori::launch
