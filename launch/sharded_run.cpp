#include "launch/sharded_run.hpp"

#include "collectives/collective_matmul.hpp"
#include "kernels/backend.hpp"

namespace tori::launch {

ShardedRun::ShardedRun(const std::string& torus_flag, const GlobalOptions& g) : torus(MPI_COMM_WORLD, torus_flag) {
  collectives::CollectivesOptions copt;
  copt.algorithm = collectives::parse_algorithm(g.collectives);
  copt.link = {g.link_gbps, g.link_latency_us};
  copt.shm_ppermute = collectives::parse_ppermute_transport(g.ppermute, "--ppermute");
  coll = std::make_unique<collectives::Collectives>(torus, copt);
  shard.backend = kernels::parse_matmul_backend(g.matmul);
  shard.overlap = collectives::parse_overlap(g.overlap, "--overlap");
}

double max_over_ranks(double v) {
  double out = v;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

}  // namespace tori::launch
