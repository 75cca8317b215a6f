#pragma once
// What every command that runs the sharded model sets up from its flags: the torus (--torus), the
// collectives with the --collectives algorithm, and the kernels' --matmul backend.
#include <memory>
#include <string>

#include "collectives/collectives.hpp"
#include "collectives/max_over_ranks.hpp"
#include "collectives/watchdog.hpp"
#include "launch/command.hpp"
#include "runtime/layer_shards.hpp"

namespace tori::launch {

struct ShardedRun {
  collectives::Torus torus;
  std::unique_ptr<collectives::Collectives> coll;  // refers to torus: keep ShardedRun in place
  runtime::ShardOptions shard;

  ShardedRun(const std::string& torus_flag, const GlobalOptions& g);
};

// The collectives' options from the global flags: --collectives, --link-gbps / --link-latency-us,
// --ppermute.
collectives::CollectivesOptions collectives_options(const GlobalOptions& g);

// The shards' options from the global flags: --matmul, --overlap, --attention-kernel.
runtime::ShardOptions shard_options(const GlobalOptions& g);

using collectives::max_over_ranks;  // collectives/max_over_ranks.hpp

using collectives::watchdog::barrier_asleep;  // collectives/watchdog.hpp

}  // namespace tori::launch
